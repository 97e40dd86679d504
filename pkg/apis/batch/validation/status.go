package validation

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

func conditionTrue(list []batchv1.JobCondition, t batchv1.JobConditionType) bool {
	for _, c := range list {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func conditionFalse(list []batchv1.JobCondition, t batchv1.JobConditionType) bool {
	for _, c := range list {
		if c.Type == t && c.Status == corev1.ConditionFalse {
			return true
		}
	}
	return false
}

func jobFinished(j *batchv1.Job) bool {
	return conditionTrue(j.Status.Conditions, batchv1.JobComplete) || conditionTrue(j.Status.Conditions, batchv1.JobFailed)
}

// ValidateJobStatusUpdate is upstream's ValidateJobUpdateStatus with
// JobManagedBy (GA) on: most transition rules apply only when the fields
// they read change, so a controller can fix a status a spec change made
// inconsistent. Not yet checked: the format of completedIndexes and
// failedIndexes and their overlap.
func ValidateJobStatusUpdate(job, old *batchv1.Job) field.ErrorList {
	s, o := &job.Status, &old.Status
	p := field.NewPath("status")
	cond := p.Child("conditions")
	complete, failed := conditionTrue(s.Conditions, batchv1.JobComplete), conditionTrue(s.Conditions, batchv1.JobFailed)
	failureTarget := conditionTrue(s.Conditions, batchv1.JobFailureTarget)
	successMet := conditionTrue(s.Conditions, batchv1.JobSuccessCriteriaMet)
	finished := complete || failed
	oldComplete, oldFailed := conditionTrue(o.Conditions, batchv1.JobComplete), conditionTrue(o.Conditions, batchv1.JobFailed)
	oldSuccessMet := conditionTrue(o.Conditions, batchv1.JobSuccessCriteriaMet)

	finishedChanged := jobFinished(old) != finished
	completeChanged := oldComplete != complete
	failedChanged := oldFailed != failed
	failureTargetChanged := conditionTrue(o.Conditions, batchv1.JobFailureTarget) != failureTarget
	successMetChanged := oldSuccessMet != successMet
	completedIndexesChanged := o.CompletedIndexes != s.CompletedIndexes
	failedIndexesChanged := !ptr.Equal(o.FailedIndexes, s.FailedIndexes)
	activeChanged := o.Active != s.Active
	startTimeChanged := !ptr.Equal(o.StartTime, s.StartTime)
	completionTimeChanged := !ptr.Equal(o.CompletionTime, s.CompletionTime)
	uncountedChanged := !apiequality.Semantic.DeepEqual(o.UncountedTerminatedPods, s.UncountedTerminatedPods)
	readyChanged := !ptr.Equal(o.Ready, s.Ready)
	terminatingChanged := !ptr.Equal(o.Terminating, s.Terminating)
	suspendedWithZeroCompletions := ptr.Equal(job.Spec.Suspend, ptr.To(true)) && ptr.Equal(job.Spec.Completions, ptr.To[int32](0))
	resuming := conditionTrue(o.Conditions, batchv1.JobSuspended) && conditionFalse(s.Conditions, batchv1.JobSuspended)
	indexed := ptr.Deref(job.Spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion

	errs := corevalidation.ValidateNonnegativeField(int64(s.Active), p.Child("active"))
	errs = append(errs, corevalidation.ValidateNonnegativeField(int64(s.Succeeded), p.Child("succeeded"))...)
	errs = append(errs, corevalidation.ValidateNonnegativeField(int64(s.Failed), p.Child("failed"))...)
	if s.Ready != nil {
		errs = append(errs, corevalidation.ValidateNonnegativeField(int64(*s.Ready), p.Child("ready"))...)
	}
	if s.Terminating != nil {
		errs = append(errs, corevalidation.ValidateNonnegativeField(int64(*s.Terminating), p.Child("terminating"))...)
	}
	if u := s.UncountedTerminatedPods; u != nil {
		up := p.Child("uncountedTerminatedPods")
		seen := sets.New[types.UID]()
		for _, part := range []struct {
			name string
			uids []types.UID
		}{{"succeeded", u.Succeeded}, {"failed", u.Failed}} {
			for i, k := range part.uids {
				ip := up.Child(part.name).Index(i)
				switch {
				case k == "":
					errs = append(errs, field.Invalid(ip, k, "must not be empty"))
				case seen.Has(k):
					errs = append(errs, field.Duplicate(ip, k))
				default:
					seen.Insert(k)
				}
			}
		}
	}
	if (completeChanged || failedChanged) && complete && failed {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set Complete=True and Failed=true conditions"))
	}
	if (completeChanged || failureTargetChanged) && complete && failureTarget {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set Complete=True and FailureTarget=true conditions"))
	}
	if (completeChanged || completionTimeChanged) && s.CompletionTime != nil && !complete {
		errs = append(errs, field.Invalid(p.Child("completionTime"), s.CompletionTime, "cannot set completionTime when there is no Complete=True condition"))
	}
	if (completeChanged || completionTimeChanged) && s.CompletionTime == nil && complete {
		errs = append(errs, field.Required(p.Child("completionTime"), "completionTime is required for Complete jobs"))
	}
	if (startTimeChanged || completionTimeChanged) && s.StartTime != nil && s.CompletionTime != nil && s.CompletionTime.Before(s.StartTime) {
		errs = append(errs, field.Invalid(p.Child("completionTime"), s.CompletionTime, "must be equal to or after `startTime`"))
	}
	if (failedChanged || failedIndexesChanged) && failed && !failureTarget {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set Failed=True condition without the FailureTarget=true condition"))
	}
	if (completeChanged || successMetChanged) && complete && !successMet {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set Complete=True condition without the SuccessCriteriaMet=true condition"))
	}
	if (finishedChanged || activeChanged) && s.Active > 0 && finished {
		errs = append(errs, field.Invalid(p.Child("active"), s.Active, "active>0 is invalid for finished job"))
	}
	if (finishedChanged || startTimeChanged) && !suspendedWithZeroCompletions && s.StartTime == nil && finished {
		errs = append(errs, field.Required(p.Child("startTime"), "startTime is required for finished job"))
	}
	if (finishedChanged || uncountedChanged) && finished && s.UncountedTerminatedPods != nil && len(s.UncountedTerminatedPods.Failed)+len(s.UncountedTerminatedPods.Succeeded) > 0 {
		errs = append(errs, field.Invalid(p.Child("uncountedTerminatedPods"), s.UncountedTerminatedPods, "must be empty for finished job"))
	}
	if completedIndexesChanged && s.CompletedIndexes != "" && !indexed {
		errs = append(errs, field.Invalid(p.Child("completedIndexes"), s.CompletedIndexes, "cannot set non-empty completedIndexes when non-indexed completion mode"))
	}
	if failedIndexesChanged && job.Spec.BackoffLimitPerIndex == nil && s.FailedIndexes != nil {
		errs = append(errs, field.Invalid(p.Child("failedIndexes"), *s.FailedIndexes, "cannot set non-null failedIndexes when backoffLimitPerIndex is null"))
	}
	if (finishedChanged || terminatingChanged) && s.Terminating != nil && *s.Terminating > 0 && finished {
		errs = append(errs, field.Invalid(p.Child("terminating"), s.Terminating, "terminating>0 is invalid for finished job"))
	}
	if (readyChanged || activeChanged) && s.Ready != nil && *s.Ready > s.Active {
		errs = append(errs, field.Invalid(p.Child("ready"), *s.Ready, "cannot set more ready pods than active"))
	}
	if successMet && failed {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set SuccessCriteriaMet=True and Failed=true conditions"))
	}
	if successMet && failureTarget {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set SuccessCriteriaMet=True and FailureTarget=true conditions"))
	}
	if job.Spec.SuccessPolicy != nil && !successMet && complete {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set Complete=True for Job with SuccessPolicy unless SuccessCriteriaMet=True"))
	}

	// Transitions.
	for _, t := range []batchv1.JobConditionType{batchv1.JobFailed, batchv1.JobComplete, batchv1.JobFailureTarget} {
		if conditionTrue(o.Conditions, t) && !conditionTrue(s.Conditions, t) {
			errs = append(errs, field.Invalid(cond, field.OmitValueType{}, fmt.Sprintf("cannot disable the terminal %s=True condition", string(t))))
		}
	}
	if s.Failed < o.Failed {
		errs = append(errs, field.Invalid(p.Child("failed"), s.Failed, "cannot decrease the failed counter"))
	}
	// Indexed Jobs with completions == parallelism may scale down.
	if (!indexed || !ptr.Equal(job.Spec.Completions, job.Spec.Parallelism)) && s.Succeeded < o.Succeeded {
		errs = append(errs, field.Invalid(p.Child("succeeded"), s.Succeeded, "cannot decrease the succeeded counter"))
	}
	if s.CompletionTime != nil && o.CompletionTime != nil && !ptr.Equal(s.CompletionTime, o.CompletionTime) {
		errs = append(errs, field.Invalid(p.Child("completionTime"), s.CompletionTime, "field is immutable"))
	}
	if startTimeChanged && !resuming && o.StartTime != nil && !ptr.Deref(job.Spec.Suspend, false) {
		errs = append(errs, field.Invalid(p.Child("startTime"), s.StartTime, "field is immutable for unsuspended job once set"))
	}
	if oldSuccessMet && !successMet {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot disable the SuccessCriteriaMet=True condition"))
	}
	if oldComplete && !oldSuccessMet && successMet {
		errs = append(errs, field.Invalid(cond, field.OmitValueType{}, "cannot set SuccessCriteriaMet=True for Job already has Complete=true conditions"))
	}
	return errs
}
