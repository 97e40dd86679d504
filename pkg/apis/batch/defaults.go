package batch

// Defaulting of the batch/v1 kinds as upstream Kubernetes v1.37 does it
// (pkg/apis/batch/v1 defaults.go and zz_generated.defaults.go).

import (
	"math"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/core"
)

// RegisterDefaults adds the batch/v1 defaulters to scheme.
func RegisterDefaults(scheme *runtime.Scheme) {
	core.AddDefaulters(scheme, &batchv1.Job{}, &batchv1.JobList{},
		func(l *batchv1.JobList) []batchv1.Job { return l.Items }, setDefaultsJob)
	core.AddDefaulters(scheme, &batchv1.CronJob{}, &batchv1.CronJobList{},
		func(l *batchv1.CronJobList) []batchv1.CronJob { return l.Items }, setDefaultsCronJob)
}

func setDefaultsJob(job *batchv1.Job) {
	spec := &job.Spec
	// A non-parallel job may leave both unset: both become 1.
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptr.To[int32](1)
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptr.To[int32](1)
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = ptr.To[int32](math.MaxInt32)
		} else {
			spec.BackoffLimit = ptr.To[int32](6)
		}
	}
	if labels := spec.Template.Labels; labels != nil && len(job.Labels) == 0 {
		job.Labels = labels
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptr.To(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptr.To(false)
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = ptr.To(batchv1.TerminatingOrFailed)
		}
	}
	if spec.ManualSelector == nil {
		spec.ManualSelector = ptr.To(false)
	}
	setPodFailurePolicyDefaults(spec.PodFailurePolicy)
	core.SetPodTemplateSpecDefaults(&spec.Template)
}

// setDefaultsCronJob defaults a CronJob. Its jobTemplate gets only the nested
// defaults (pod failure policy, pod template), not the Job's own: those apply
// when the controller creates the Job.
func setDefaultsCronJob(cj *batchv1.CronJob) {
	spec := &cj.Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = ptr.To(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = ptr.To[int32](3)
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = ptr.To[int32](1)
	}
	setPodFailurePolicyDefaults(spec.JobTemplate.Spec.PodFailurePolicy)
	core.SetPodTemplateSpecDefaults(&spec.JobTemplate.Spec.Template)
}

func setPodFailurePolicyDefaults(p *batchv1.PodFailurePolicy) {
	if p == nil {
		return
	}
	for i := range p.Rules {
		for j := range p.Rules[i].OnPodConditions {
			if c := &p.Rules[i].OnPodConditions[j]; c.Status == "" {
				c.Status = corev1.ConditionTrue
			}
		}
	}
}
