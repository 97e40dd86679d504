package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/csrcleaner"
)

func init() {
	// Upstream runs the cleaner as certificate-controller too.
	register(Descriptor{Name: "certificatesigningrequest-cleaner-controller", Identity: "certificate-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&csrcleaner.Reconciler{Client: c.Client}).SetupWithManager(mgr)
		}})
}
