package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/replicaset"
)

// The ReplicaSet and ReplicationController controllers: one implementation
// (pkg/controllers/replicaset), two instances, as upstream's.
func init() {
	register(Descriptor{Name: "replicaset-controller", Identity: "replicaset-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-replicaset-syncs", Default: 5,
			Usage: "The number of replica sets that are allowed to sync concurrently. Larger number = more responsive replica management, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&replicaset.Reconciler{Kind: replicaset.ReplicaSets, Client: c.Client, Core: c.Core,
				Workers: opts.Workers("replicaset-controller", 5)}).SetupWithManager(mgr)
		}})
	// Upstream's flag is concurrent_rc_syncs, which its flag set normalises
	// to this.
	register(Descriptor{Name: "replicationcontroller-controller", Identity: "replication-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-rc-syncs", Default: 5,
			Usage: "The number of replication controllers that are allowed to sync concurrently. Larger number = more responsive replica management, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&replicaset.Reconciler{Kind: replicaset.ReplicationControllers, Client: c.Client, Core: c.Core,
				Workers: opts.Workers("replicationcontroller-controller", 5)}).SetupWithManager(mgr)
		}})
}
