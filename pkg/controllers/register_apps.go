package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/daemonset"
	"github.com/skiff-dev/skiff/pkg/controllers/statefulset"
)

// The StatefulSet and DaemonSet controllers, with upstream's names,
// identities and flags.
func init() {
	register(Descriptor{Name: statefulset.Name, Identity: "statefulset-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-statefulset-syncs", Default: statefulset.DefaultWorkers,
			Usage: "The number of statefulset objects that are allowed to sync concurrently. Larger number = more responsive statefulsets, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&statefulset.Reconciler{Client: c.Client, Core: c.Core, Recorder: eventRecorder(mgr, c.Core, statefulset.Name),
				Workers: opts.Workers(statefulset.Name, statefulset.DefaultWorkers)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: daemonset.Name, Identity: "daemon-set-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-daemonset-syncs", Default: daemonset.DefaultWorkers,
			Usage: "The number of daemonset objects that are allowed to sync concurrently. Larger number = more responsive daemonsets, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&daemonset.Reconciler{Client: c.Client, Core: c.Core, Recorder: eventRecorder(mgr, c.Core, daemonset.Name),
				Workers: opts.Workers(daemonset.Name, daemonset.DefaultWorkers)}).SetupWithManager(mgr)
		}})
}
