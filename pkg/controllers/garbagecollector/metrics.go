package garbagecollector

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// resourcesSyncError is upstream's
// garbagecollector_controller_resources_sync_error_total.
var resourcesSyncError = metrics.NewCounter(&metrics.CounterOpts{
	Subsystem:      "garbagecollector_controller",
	Name:           "resources_sync_error_total",
	Help:           "Number of garbage collector resources sync errors",
	StabilityLevel: metrics.ALPHA,
})

var registerOnce sync.Once

func registerMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(resourcesSyncError) })
}
