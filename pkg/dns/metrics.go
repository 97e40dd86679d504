package dns

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are CoreDNS's names, so that its dashboards and alerts work;
// each server has its own registry (skiff server embeds one).
type metrics struct {
	registry         *prometheus.Registry
	requests         *prometheus.CounterVec
	responses        *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	cacheHits        prometheus.Counter
	cacheMisses      prometheus.Counter
	forwardRequests  *prometheus.CounterVec
	forwardResponses *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "requests_total",
			Help: "Counter of DNS requests made per zone, protocol and family.",
		}, []string{"server", "zone", "proto", "family", "type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "responses_total",
			Help: "Counter of response status codes.",
		}, []string{"server", "zone", "rcode", "plugin"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "request_duration_seconds",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
			Help:    "Histogram of the time (in seconds) each request took.",
		}, []string{"server", "zone", "type"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "hits_total",
			Help: "The count of cache hits (forwarded names).",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "misses_total",
			Help: "The count of cache misses (forwarded names).",
		}),
		forwardRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "requests_total",
			Help: "Counter of requests made per upstream.",
		}, []string{"to"}),
		forwardResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "responses_total",
			Help: "Counter of responses received per upstream.",
		}, []string{"to", "rcode"}),
	}
	m.registry.MustRegister(m.requests, m.responses, m.duration, m.cacheHits, m.cacheMisses, m.forwardRequests, m.forwardResponses,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}
