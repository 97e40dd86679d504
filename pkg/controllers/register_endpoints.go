package controllers

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/endpoints"
	"github.com/skiff-dev/skiff/pkg/controllers/endpointslice"
	"github.com/skiff-dev/skiff/pkg/controllers/endpointslicemirroring"
)

// The endpoints, EndpointSlice and EndpointSlice mirroring controllers,
// with upstream's names, identities and flags.
func init() {
	register(Descriptor{Name: "endpoints-controller", Identity: "endpoint-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-endpoint-syncs", Default: 5,
			Usage: "The number of endpoint syncing operations that will be done concurrently. Larger number = faster endpoint updating, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&endpoints.Reconciler{Client: c.Client, Core: c.Core,
				Workers: opts.Workers("endpoints-controller", 5)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "endpointslice-controller", Identity: "endpointslice-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-service-endpoint-syncs", Default: 5, Max: 50,
			Usage: "The number of service endpoint syncing operations that will be done concurrently. Larger number = faster endpoint slice updating, but more CPU (and network) load. Defaults to 5."},
		Flags: []IntFlag{{Flag: "max-endpoints-per-slice", Default: endpointslice.DefaultMaxEndpointsPerSlice, Min: 1, Max: 1000,
			Usage: "The maximum number of endpoints that will be added to an EndpointSlice. More endpoints per slice will result in less endpoint slices, but larger resources. Defaults to 100."}},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&endpointslice.Reconciler{Client: c.Client, Core: c.Core,
				Workers:              opts.Workers("endpointslice-controller", 5),
				MaxEndpointsPerSlice: int32(opts.Int("max-endpoints-per-slice", endpointslice.DefaultMaxEndpointsPerSlice))}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "endpointslice-mirroring-controller", Identity: "endpointslicemirroring-controller",
		Concurrency: &ConcurrencyFlag{Flag: "mirroring-concurrent-service-endpoint-syncs", Default: 5, Max: 50,
			Usage: "The number of service endpoint syncing operations that will be done concurrently by the endpointslice-mirroring-controller. Larger number = faster endpoint slice updating, but more CPU (and network) load. Defaults to 5."},
		Flags: []IntFlag{{Flag: "mirroring-max-endpoints-per-subset", Default: endpointslicemirroring.DefaultMaxEndpointsPerSubset, Min: 1, Max: 1000,
			Usage: fmt.Sprintf("The maximum number of endpoints that will be added to an EndpointSlice by the %s. More endpoints per slice will result in less endpoint slices, but larger resources. Defaults to 100.", "endpointslice-mirroring-controller")}},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&endpointslicemirroring.Reconciler{Client: c.Client, Core: c.Core,
				Workers:               opts.Workers("endpointslice-mirroring-controller", 5),
				MaxEndpointsPerSubset: int32(opts.Int("mirroring-max-endpoints-per-subset", endpointslicemirroring.DefaultMaxEndpointsPerSubset))}).SetupWithManager(mgr)
		}})
}
