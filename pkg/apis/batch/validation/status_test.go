package validation

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateJobStatusUpdate(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := metav1.NewTime(start.Add(time.Minute))
	cond := func(ts ...batchv1.JobConditionType) []batchv1.JobCondition {
		var out []batchv1.JobCondition
		for _, t := range ts {
			out = append(out, batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue})
		}
		return out
	}
	cases := []struct {
		name     string
		old, new batchv1.JobStatus
		spec     func(*batchv1.JobSpec)
		want     []string
	}{
		{"counts", batchv1.JobStatus{}, batchv1.JobStatus{Active: -1, Succeeded: -1, Failed: -1, Ready: ptr.To[int32](-1), Terminating: ptr.To[int32](-1)}, nil,
			// Below zero is below the old counters too.
			[]string{"Invalid status.active", "Invalid status.succeeded", "Invalid status.failed", "Invalid status.ready", "Invalid status.terminating",
				"Invalid status.succeeded", "Invalid status.failed"}},
		{"uncounted pods", batchv1.JobStatus{}, batchv1.JobStatus{UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"a", ""}, Failed: []types.UID{"a"}}}, nil,
			[]string{"Invalid status.uncountedTerminatedPods.succeeded[1]", "Duplicate status.uncountedTerminatedPods.failed[0]"}},
		{"counters never decrease", batchv1.JobStatus{Failed: 2, Succeeded: 2}, batchv1.JobStatus{Failed: 1, Succeeded: 1}, nil,
			[]string{"Invalid status.failed", "Invalid status.succeeded"}},
		{"indexed job with completions == parallelism may scale down", batchv1.JobStatus{Succeeded: 2}, batchv1.JobStatus{Succeeded: 1}, func(s *batchv1.JobSpec) {
			s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			s.Completions, s.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
		}, nil},
		{"more ready than active", batchv1.JobStatus{}, batchv1.JobStatus{Active: 1, Ready: ptr.To[int32](2)}, nil, []string{"Invalid status.ready"}},
		{"complete", batchv1.JobStatus{StartTime: &start}, batchv1.JobStatus{StartTime: &start, CompletionTime: &end, Conditions: cond(batchv1.JobSuccessCriteriaMet, batchv1.JobComplete)}, nil, nil},
		{"complete without completion time or success criteria", batchv1.JobStatus{}, batchv1.JobStatus{Active: 1, Conditions: cond(batchv1.JobComplete)}, nil,
			[]string{"Required status.completionTime", "Invalid status.conditions", "Invalid status.active", "Required status.startTime"}},
		{"completion before start", batchv1.JobStatus{}, batchv1.JobStatus{StartTime: &end, CompletionTime: &start}, nil,
			[]string{"Invalid status.completionTime", "Invalid status.completionTime"}},
		{"failed without failure target", batchv1.JobStatus{StartTime: &start}, batchv1.JobStatus{StartTime: &start, Conditions: cond(batchv1.JobFailed)}, nil,
			[]string{"Invalid status.conditions"}},
		{"terminal conditions stay", batchv1.JobStatus{StartTime: &start, Conditions: cond(batchv1.JobFailureTarget, batchv1.JobFailed)}, batchv1.JobStatus{StartTime: &start}, nil,
			[]string{"Invalid status.conditions", "Invalid status.conditions"}},
		{"completion time is immutable", batchv1.JobStatus{StartTime: &start, CompletionTime: &start, Conditions: cond(batchv1.JobSuccessCriteriaMet, batchv1.JobComplete)},
			batchv1.JobStatus{StartTime: &start, CompletionTime: &end, Conditions: cond(batchv1.JobSuccessCriteriaMet, batchv1.JobComplete)}, nil,
			[]string{"Invalid status.completionTime"}},
		{"start time is immutable while running", batchv1.JobStatus{StartTime: &start}, batchv1.JobStatus{StartTime: &end}, nil, []string{"Invalid status.startTime"}},
		{"start time may change while suspended", batchv1.JobStatus{StartTime: &start}, batchv1.JobStatus{StartTime: &end}, func(s *batchv1.JobSpec) { s.Suspend = ptr.To(true) }, nil},
		{"indexes", batchv1.JobStatus{}, batchv1.JobStatus{CompletedIndexes: "1", FailedIndexes: ptr.To("0")}, nil,
			[]string{"Invalid status.completedIndexes", "Invalid status.failedIndexes"}},
		{"success criteria with failure", batchv1.JobStatus{}, batchv1.JobStatus{Conditions: cond(batchv1.JobSuccessCriteriaMet, batchv1.JobFailureTarget)}, nil,
			[]string{"Invalid status.conditions"}},
		{"success criteria stays", batchv1.JobStatus{Conditions: cond(batchv1.JobSuccessCriteriaMet)}, batchv1.JobStatus{}, nil, []string{"Invalid status.conditions"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := &batchv1.Job{Status: tc.old}
			job := &batchv1.Job{Status: tc.new}
			if tc.spec != nil {
				tc.spec(&old.Spec)
				tc.spec(&job.Spec)
			}
			apitesting.ExpectFieldErrors(t, ValidateJobStatusUpdate(job, old), tc.want...)
		})
	}
}
