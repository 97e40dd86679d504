package replicaset

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Upstream's replicaset_controller metrics, served on the controllers'
// /metrics (the ReplicationController's deletions count here too, as
// upstream's).
var sortingDeletionAgeRatio = metrics.NewHistogram(&metrics.HistogramOpts{
	Subsystem: "replicaset_controller",
	Name:      "sorting_deletion_age_ratio",
	Help: "The ratio of chosen deleted pod's ages to the current youngest pod's age (at the time). Should be <2. " +
		"The intent of this metric is to measure the rough efficacy of the sorting (and deletion) of pods when " +
		"a replicaset scales down. This only considers Ready pods when calculating and reporting.",
	Buckets:        metrics.ExponentialBuckets(0.25, 2, 6),
	StabilityLevel: metrics.ALPHA,
})

var registerMetrics sync.Once

func registerAll() {
	registerMetrics.Do(func() { legacyregistry.MustRegister(sortingDeletionAgeRatio) })
}
