package job

import (
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Upstream's stable job_controller metrics on the counts.
var (
	jobsFinished = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "job_controller", Name: "jobs_finished_total",
		Help:           "The number of finished jobs",
		StabilityLevel: metrics.STABLE,
	}, []string{"completion_mode", "result", "reason"})
	podsFinished = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "job_controller", Name: "job_pods_finished_total",
		Help:           "The number of finished Pods that are fully tracked",
		StabilityLevel: metrics.STABLE,
	}, []string{"completion_mode", "result"})
)

var registerMetrics sync.Once

func registerAll() {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(jobsFinished, podsFinished)
	})
}

func completionModeLabel(job *batchv1.Job) string {
	if isIndexedJob(job) {
		return string(batchv1.IndexedCompletion)
	}
	return string(batchv1.NonIndexedCompletion)
}

// recordPodsFinished counts the pods that moved to the counters between
// two statuses.
func recordPodsFinished(job *batchv1.Job, before batchv1.JobStatus) {
	mode := completionModeLabel(job)
	if d := job.Status.Succeeded - before.Succeeded; d > 0 {
		podsFinished.WithLabelValues(mode, "succeeded").Add(float64(d))
	}
	if d := job.Status.Failed - before.Failed; d > 0 {
		podsFinished.WithLabelValues(mode, "failed").Add(float64(d))
	}
}
