package nodelifecycle

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Upstream's node_collector metrics, served on the controllers' /metrics.
var (
	zoneHealth = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "node_collector", Name: "zone_health",
		Help:           "Gauge measuring percentage of healthy nodes per zone.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"zone"})
	zoneSize = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "node_collector", Name: "zone_size",
		Help:           "Gauge measuring number of registered Nodes per zones.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"zone"})
	unhealthyNodes = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "node_collector", Name: "unhealthy_nodes_in_zone",
		Help:           "Gauge measuring number of not Ready Nodes per zones.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"zone"})
	evictionsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "node_collector", Name: "evictions_total",
		Help:           "Number of Node evictions that happened since current instance of NodeController started.",
		StabilityLevel: metrics.STABLE,
	}, []string{"zone"})
	updateNodeHealthDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem: "node_collector", Name: "update_node_health_duration_seconds",
		Help:           "Duration in seconds for NodeController to update the health of a single node.",
		Buckets:        metrics.ExponentialBuckets(0.001, 4, 8),
		StabilityLevel: metrics.ALPHA,
	})
	updateAllNodesHealthDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem: "node_collector", Name: "update_all_nodes_health_duration_seconds",
		Help:           "Duration in seconds for NodeController to update the health of all nodes.",
		Buckets:        metrics.ExponentialBuckets(0.01, 4, 8),
		StabilityLevel: metrics.ALPHA,
	})
)

var registerMetrics sync.Once

func registerAll() {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(zoneHealth, zoneSize, unhealthyNodes, evictionsTotal, updateNodeHealthDuration, updateAllNodesHealthDuration)
	})
}
