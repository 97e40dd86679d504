package cronjob

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Upstream's cronjob_controller metric.
var creationSkew = metrics.NewHistogram(&metrics.HistogramOpts{
	Subsystem: "cronjob_controller", Name: "job_creation_skew_duration_seconds",
	Help:           "Time between when a cronjob is scheduled to be run, and when the corresponding job is created",
	StabilityLevel: metrics.STABLE,
	Buckets:        metrics.ExponentialBuckets(1, 2, 10),
})

var registerMetrics sync.Once

func registerAll() {
	registerMetrics.Do(func() { legacyregistry.MustRegister(creationSkew) })
}
