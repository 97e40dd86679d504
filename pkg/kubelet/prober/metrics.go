package prober

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Upstream kubelet's prober metrics (served by upstream on /metrics/probes).
var (
	probeTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "prober",
		Name:           "probe_total",
		Help:           "Cumulative number of a liveness, readiness or startup probe for a container by result.",
		StabilityLevel: metrics.BETA,
	}, []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"})
	probeDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      "prober",
		Name:           "probe_duration_seconds",
		Help:           "Duration in seconds for a probe response.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"probe_type", "container", "pod", "namespace"})
)

// Upstream's values of the result label.
const (
	resultSuccessful = "successful"
	resultFailed     = "failed"
	resultUnknown    = "unknown"
)

// Collectors are the prober's metrics, for a registry of their own (as
// upstream's /metrics/probes); they are in legacyregistry too.
func Collectors() []metrics.Registerable {
	return []metrics.Registerable{probeTotal, probeDuration}
}

var registerOnce sync.Once

func registerMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(probeTotal, probeDuration) })
}
