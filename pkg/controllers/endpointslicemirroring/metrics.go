package endpointslicemirroring

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Upstream's endpoint_slice_mirroring_controller metrics, served on the
// controllers' /metrics (not yet: the endpoints_desired,
// num_endpoint_slices and desired_endpoint_slices gauges).
var (
	perSync = func(name, help string) *metrics.HistogramVec {
		return metrics.NewHistogramVec(&metrics.HistogramOpts{
			Subsystem: subsystem, Name: name, Help: help, StabilityLevel: metrics.ALPHA,
			Buckets: metrics.ExponentialBuckets(2, 2, 15),
		}, []string{})
	}
	endpointsAddedPerSync   = perSync("endpoints_added_per_sync", "Number of endpoints added on each Endpoints sync")
	endpointsUpdatedPerSync = perSync("endpoints_updated_per_sync", "Number of endpoints updated on each Endpoints sync")
	endpointsRemovedPerSync = perSync("endpoints_removed_per_sync", "Number of endpoints removed on each Endpoints sync")
	addressesSkippedPerSync = perSync("addresses_skipped_per_sync", "Number of addresses skipped on each Endpoints sync due to being invalid or exceeding MaxEndpointsPerSubset")
	endpointsSyncDuration   = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem: subsystem, Name: "endpoints_sync_duration", Help: "Duration of syncEndpoints() in seconds",
		StabilityLevel: metrics.ALPHA, Buckets: metrics.ExponentialBuckets(0.001, 2, 15),
	}, []string{})
	sliceChanges = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "changes", Help: "Number of EndpointSlice changes", StabilityLevel: metrics.ALPHA,
	}, []string{"operation"})
)

const subsystem = "endpoint_slice_mirroring_controller"

var registerMetrics sync.Once

func registerAll() {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(endpointsAddedPerSync, endpointsUpdatedPerSync, endpointsRemovedPerSync,
			addressesSkippedPerSync, endpointsSyncDuration, sliceChanges)
	})
}
