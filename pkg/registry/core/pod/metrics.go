package pod

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Upstream's pods/log metrics (kube_apiserver_pod_logs_*).
var (
	podLogsUsage = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kube_apiserver", Subsystem: "pod_logs", Name: "insecure_backend_total",
		Help:           "Total number of requests for pods/logs sliced by usage type: enforce_tls, skip_tls_allowed, skip_tls_denied",
		StabilityLevel: metrics.ALPHA,
	}, []string{"usage"})
	podLogsTLSFailure = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "kube_apiserver", Subsystem: "pod_logs", Name: "backend_tls_failure_total",
		Help:           "Total number of requests for pods/logs that failed due to kubelet server TLS verification",
		StabilityLevel: metrics.ALPHA,
	})
	registerMetrics sync.Once
)

func countInsecureBackend(skip bool) {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(podLogsUsage, podLogsTLSFailure)
	})
	usage := "enforce_tls"
	if skip {
		usage = "skip_tls_allowed"
	}
	podLogsUsage.WithLabelValues(usage).Inc()
}
