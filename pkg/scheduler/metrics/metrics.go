// Package metrics are the scheduler's metrics under upstream's names,
// registered in component-base's legacyregistry (served on /metrics by
// pkg/componentserver).
package metrics

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Results of a scheduling attempt.
const (
	Scheduled     = "scheduled"
	Unschedulable = "unschedulable"
	Error         = "error"
)

var (
	scheduleAttempts = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "scheduler",
		Name:           "schedule_attempts_total",
		Help:           "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
		StabilityLevel: metrics.STABLE,
	}, []string{"result", "profile"})
	schedulingLatency = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      "scheduler",
		Name:           "scheduling_attempt_duration_seconds",
		Help:           "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
		Buckets:        metrics.ExponentialBuckets(0.001, 2, 15),
		StabilityLevel: metrics.STABLE,
	}, []string{"result", "profile"})
	// PreemptionAttempts counts PostFilter (preemption) runs.
	PreemptionAttempts = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      "scheduler",
		Name:           "preemption_attempts_total",
		Help:           "Total preemption attempts in the cluster till now",
		StabilityLevel: metrics.STABLE,
	})
	pendingPods = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "scheduler",
		Name:           "pending_pods",
		Help:           "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulableEntities that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated.",
		StabilityLevel: metrics.STABLE,
	}, []string{"queue"})
	podSchedulingSLIDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      "scheduler",
		Name:           "pod_scheduling_sli_duration_seconds",
		Help:           "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
		Buckets:        metrics.ExponentialBuckets(0.01, 2, 20),
		StabilityLevel: metrics.BETA,
	}, []string{"attempts"})
)

var once sync.Once

// Register registers the metrics once per process.
func Register() {
	once.Do(func() {
		legacyregistry.MustRegister(scheduleAttempts, schedulingLatency, PreemptionAttempts, pendingPods, podSchedulingSLIDuration)
	})
}

// Attempt records one scheduling attempt's result and duration.
func Attempt(result, profile string, d time.Duration) {
	scheduleAttempts.WithLabelValues(result, profile).Inc()
	schedulingLatency.WithLabelValues(result, profile).Observe(d.Seconds())
}

// PodScheduled records a pod's time from entering the queue to bound.
func PodScheduled(attempts int, sinceFirst time.Duration) {
	label := strconv.Itoa(attempts)
	if attempts >= 15 {
		label = "15+"
	}
	podSchedulingSLIDuration.WithLabelValues(label).Observe(sinceFirst.Seconds())
}

// PendingPods sets the queue gauges.
func PendingPods(active, backoff, unschedulable, gated int) {
	pendingPods.WithLabelValues("active").Set(float64(active))
	pendingPods.WithLabelValues("backoff").Set(float64(backoff))
	pendingPods.WithLabelValues("unschedulable").Set(float64(unschedulable))
	pendingPods.WithLabelValues("gated").Set(float64(gated))
}
