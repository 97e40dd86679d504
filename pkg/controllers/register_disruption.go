package controllers

import (
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/scale"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/disruption"
)

// The disruption controller: PodDisruptionBudgets' status (what the
// eviction subresource checks) and stale DisruptionTarget conditions.
func init() {
	register(Descriptor{Name: disruption.Name, Identity: "disruption-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-disruption-syncs", Default: 1,
			Usage: "The number of PDB objects that are allowed to sync concurrently. Larger number = more responsive PDB updates, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			disco, err := discovery.NewDiscoveryClientForConfig(c.Config)
			if err != nil {
				return err
			}
			scales, err := scale.NewForConfig(c.Config, mgr.GetRESTMapper(), dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(disco))
			if err != nil {
				return err
			}
			rec, err := disruption.NewRecorder(mgr, c.Core)
			if err != nil {
				return err
			}
			r := &disruption.Reconciler{Client: c.Client, Scales: scales, Mapper: mgr.GetRESTMapper(), Discovery: disco, Recorder: rec}
			if err := r.SetupWithManager(mgr, opts.Workers(disruption.Name, 1)); err != nil {
				return err
			}
			return (&disruption.StalePodReconciler{Client: c.Client}).SetupWithManager(mgr)
		}})
}
