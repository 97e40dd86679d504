package controllers

import (
	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/cronjob"
	"github.com/skiff-dev/skiff/pkg/controllers/job"
	"github.com/skiff-dev/skiff/pkg/controllers/podgc"
	"github.com/skiff-dev/skiff/pkg/controllers/ttlafterfinished"
)

// The batch controllers and their pod garbage collector, as upstream's.
func init() {
	register(Descriptor{Name: "job-controller", Identity: "job-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-job-syncs", Default: 5,
			Usage: "The number of job objects that are allowed to sync concurrently. Larger number = more responsive jobs, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&job.Reconciler{Client: c.Client, Core: c.Core, APIReader: mgr.GetAPIReader(),
				Recorder: eventRecorder(mgr, c.Core, job.Name), Workers: opts.Workers("job-controller", 5)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "cronjob-controller", Identity: "cronjob-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-cron-job-syncs", Default: 5,
			Usage: "The number of cron job objects that are allowed to sync concurrently. Larger number = more responsive jobs, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&cronjob.Reconciler{Client: c.Client, Core: c.Core,
				Recorder: eventRecorder(mgr, c.Core, cronjob.Name), Workers: opts.Workers("cronjob-controller", 5)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "ttl-after-finished-controller", Identity: "ttl-after-finished-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-ttl-after-finished-syncs", Default: 5,
			Usage: "The number of ttl-after-finished-controller workers that are allowed to sync concurrently."},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&ttlafterfinished.Reconciler{Client: c.Client, Core: c.Core,
				Workers: opts.Workers("ttl-after-finished-controller", 5)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "pod-garbage-collector-controller", Identity: "pod-garbage-collector",
		Flags: []IntFlag{{Flag: "terminated-pod-gc-threshold", Default: podgc.DefaultTerminatedPodThreshold,
			Usage: "Number of terminated pods that can exist before the terminated pod garbage collector starts deleting terminated pods. If <= 0, the terminated pod garbage collector is disabled."}},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&podgc.Controller{Client: c.Client, Core: c.Core,
				TerminatedPodThreshold: opts.Int("terminated-pod-gc-threshold", podgc.DefaultTerminatedPodThreshold)}).SetupWithManager(mgr)
		}})
}

// eventRecorder records events as component through core while mgr runs.
func eventRecorder(mgr manager.Manager, core kubernetes.Interface, component string) record.EventRecorder {
	// Adding a runnable fails only once the manager has started, which
	// Setup never sees.
	rec, _ := eventrecorder.New(mgr, core, component)
	return rec
}
