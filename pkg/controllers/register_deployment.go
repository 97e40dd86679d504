package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/deployment"
)

func init() {
	register(Descriptor{Name: deployment.Name, Identity: "deployment-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-deployment-syncs", Default: deployment.DefaultWorkers,
			Usage: "The number of deployment objects that are allowed to sync concurrently. Larger number = more responsive deployments, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&deployment.Reconciler{Client: c.Client, Core: c.Core,
				Workers: opts.Workers(deployment.Name, deployment.DefaultWorkers)}).SetupWithManager(mgr)
		}})
}
