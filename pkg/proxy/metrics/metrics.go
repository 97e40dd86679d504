// Package metrics holds kube-proxy's metrics under their upstream names,
// registered in component-base's legacyregistry.
package metrics

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const subsystem = "kubeproxy"

var (
	// SyncProxyRulesLatency is the time of one syncProxyRules.
	SyncProxyRulesLatency = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      subsystem,
		Name:           "sync_proxy_rules_duration_seconds",
		Help:           "SyncProxyRules latency in seconds",
		Buckets:        metrics.ExponentialBuckets(0.001, 2, 15),
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})

	// SyncProxyRulesLastTimestamp is when rules were last synced.
	SyncProxyRulesLastTimestamp = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      subsystem,
		Name:           "sync_proxy_rules_last_timestamp_seconds",
		Help:           "The last time proxy rules were successfully synced",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})

	// SyncProxyRulesLastQueuedTimestamp is when a sync was last asked for.
	SyncProxyRulesLastQueuedTimestamp = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      subsystem,
		Name:           "sync_proxy_rules_last_queued_timestamp_seconds",
		Help:           "The last time a sync of proxy rules was queued",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})

	// NetworkProgrammingLatency is from an endpoints change (the slice's
	// last-change-trigger-time) to the rules that apply it.
	NetworkProgrammingLatency = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem: subsystem,
		Name:      "network_programming_duration_seconds",
		Help:      "In Cluster Network Programming Latency in seconds",
		Buckets: metrics.MergeBuckets(
			metrics.LinearBuckets(0.25, 0.25, 2),
			metrics.LinearBuckets(1, 1, 59),
			metrics.LinearBuckets(60, 5, 12),
			metrics.LinearBuckets(120, 30, 7),
		),
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})

	// IPTablesRestoreFailuresTotal counts failed iptables-restore runs.
	IPTablesRestoreFailuresTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "sync_proxy_rules_iptables_restore_failures_total",
		Help:           "Cumulative proxy iptables restore failures",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})

	// IPTablesRulesTotal is the rules kube-proxy has in a table.
	IPTablesRulesTotal = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      subsystem,
		Name:           "sync_proxy_rules_iptables_total",
		Help:           "Total number of iptables rules owned by kube-proxy",
		StabilityLevel: metrics.ALPHA,
	}, []string{"table", "ip_family"})

	// SyncProxyRulesNoLocalEndpointsTotal counts services with Local policy
	// and no local endpoint.
	SyncProxyRulesNoLocalEndpointsTotal = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      subsystem,
		Name:           "sync_proxy_rules_no_local_endpoints_total",
		Help:           "Number of services with a Local traffic policy and no endpoints",
		StabilityLevel: metrics.ALPHA,
	}, []string{"traffic_policy", "ip_family"})

	// ProxyHealthzTotal and ProxyLivezTotal count /healthz and /livez answers.
	ProxyHealthzTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "proxy_healthz_total",
		Help:           "Cumulative proxy healthz HTTP status",
		StabilityLevel: metrics.ALPHA,
	}, []string{"code"})
	ProxyLivezTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "proxy_livez_total",
		Help:           "Cumulative proxy livez HTTP status",
		StabilityLevel: metrics.ALPHA,
	}, []string{"code"})
)

var once sync.Once

// Register registers the metrics once per process.
func Register() {
	once.Do(func() {
		legacyregistry.MustRegister(SyncProxyRulesLatency, SyncProxyRulesLastTimestamp, SyncProxyRulesLastQueuedTimestamp,
			NetworkProgrammingLatency, IPTablesRestoreFailuresTotal, IPTablesRulesTotal, SyncProxyRulesNoLocalEndpointsTotal,
			ProxyHealthzTotal, ProxyLivezTotal)
	})
}

// SinceInSeconds is the time since start in seconds.
func SinceInSeconds(start time.Time) float64 {
	return time.Since(start).Seconds()
}
