package validation

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// jobSpec is a defaulted job spec with a generated-looking selector.
func jobSpec() batchv1.JobSpec {
	labels := map[string]string{"batch.kubernetes.io/controller-uid": "1234", "batch.kubernetes.io/job-name": "j"}
	return batchv1.JobSpec{
		Parallelism: ptr.To[int32](1), Completions: ptr.To[int32](1), BackoffLimit: ptr.To[int32](6),
		CompletionMode: ptr.To(batchv1.NonIndexedCompletion), Suspend: ptr.To(false),
		PodReplacementPolicy: ptr.To(batchv1.TerminatingOrFailed),
		Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "1234"}},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "c", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent,
					TerminationMessagePolicy: corev1.TerminationMessageReadFile}},
				RestartPolicy:                 corev1.RestartPolicyNever,
				DNSPolicy:                     corev1.DNSClusterFirst,
				TerminationGracePeriodSeconds: ptr.To[int64](30),
			},
		},
	}
}

func job(mutate func(*batchv1.JobSpec)) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "default", UID: "1234"}, Spec: jobSpec()}
	if mutate != nil {
		mutate(&j.Spec)
	}
	return j
}

func TestValidateJob(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*batchv1.JobSpec)
		want   []string
	}{
		{"valid", nil, nil},
		{"selector still to be generated", func(s *batchv1.JobSpec) { s.Selector = nil }, nil},
		{"manual selector missing", func(s *batchv1.JobSpec) { s.Selector = nil; s.ManualSelector = ptr.To(true) },
			[]string{"Required spec.selector"}},
		{"selector mismatch", func(s *batchv1.JobSpec) { s.Selector.MatchLabels = map[string]string{"x": "y"} },
			[]string{"Invalid spec.template.metadata.labels"}},
		{"negative counts", func(s *batchv1.JobSpec) {
			s.Parallelism, s.Completions, s.BackoffLimit = ptr.To[int32](-1), ptr.To[int32](-1), ptr.To[int32](-1)
			s.ActiveDeadlineSeconds, s.TTLSecondsAfterFinished = ptr.To[int64](-1), ptr.To[int32](-1)
		}, []string{"Invalid spec.parallelism", "Invalid spec.completions", "Invalid spec.backoffLimit",
			"Invalid spec.activeDeadlineSeconds", "Invalid spec.ttlSecondsAfterFinished"}},
		{"restart always", func(s *batchv1.JobSpec) { s.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]string{"Required spec.template.spec.restartPolicy"}},
		{"bad template", func(s *batchv1.JobSpec) { s.Template.Spec.Containers = nil }, []string{"Required spec.template.spec.containers"}},
		{"indexed needs completions", func(s *batchv1.JobSpec) {
			s.CompletionMode, s.Completions = ptr.To(batchv1.IndexedCompletion), nil
		}, []string{"Required spec.completions"}},
		{"per index limit needs indexed", func(s *batchv1.JobSpec) { s.BackoffLimitPerIndex = ptr.To[int32](1) },
			[]string{"Invalid spec.backoffLimitPerIndex"}},
		{"completion mode", func(s *batchv1.JobSpec) { s.CompletionMode = ptr.To[batchv1.CompletionMode]("Sometimes") },
			[]string{"NotSupported spec.completionMode"}},
		{"pod failure policy", func(s *batchv1.JobSpec) {
			s.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			s.PodReplacementPolicy = ptr.To(batchv1.Failed)
			s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{0, 2, 1}, ContainerName: ptr.To("nope")}},
				{Action: "Explode"},
			}}
		}, []string{
			"Invalid spec.template.spec.restartPolicy",
			"Invalid spec.podFailurePolicy.rules[0].onExitCodes.containerName",
			"Invalid spec.podFailurePolicy.rules[0].onExitCodes.values[0]",
			"Invalid spec.podFailurePolicy.rules[0].onExitCodes.values",
			"NotSupported spec.podFailurePolicy.rules[1].action",
			"Invalid spec.podFailurePolicy.rules[1]",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { apitesting.ExpectFieldErrors(t, ValidateJob(job(tc.mutate)), tc.want...) })
	}
	errs := ValidateJob(job(func(s *batchv1.JobSpec) { s.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }))
	apitesting.ExpectErrorDetail(t, errs, `valid values: "OnFailure", "Never"`)
}

func TestValidateJobUpdate(t *testing.T) {
	cases := []struct {
		name   string
		old    func(*batchv1.JobSpec)
		mutate func(*batchv1.JobSpec)
		status *batchv1.JobStatus
		want   []string
	}{
		{"suspend", nil, func(s *batchv1.JobSpec) { s.Suspend = ptr.To(true) }, nil, nil},
		{"parallelism", nil, func(s *batchv1.JobSpec) { s.Parallelism = ptr.To[int32](3) }, nil, nil},
		{"template", nil, func(s *batchv1.JobSpec) { s.Template.Spec.Containers[0].Image = "other" }, nil,
			[]string{"Invalid spec.template"}},
		{"completions", nil, func(s *batchv1.JobSpec) { s.Completions = ptr.To[int32](2) }, nil, []string{"Invalid spec.completions"}},
		{"selector", nil, func(s *batchv1.JobSpec) { s.Selector.MatchLabels["batch.kubernetes.io/job-name"] = "j" }, nil,
			[]string{"Invalid spec.selector"}},
		{"completion mode", nil, func(s *batchv1.JobSpec) {
			s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		}, nil, []string{"Invalid spec.completionMode"}},
		{"suspended job scheduling directives", func(s *batchv1.JobSpec) { s.Suspend = ptr.To(true) }, func(s *batchv1.JobSpec) {
			s.Suspend = ptr.To(true)
			s.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
		}, nil, nil},
		{"started job scheduling directives", func(s *batchv1.JobSpec) { s.Suspend = ptr.To(true) }, func(s *batchv1.JobSpec) {
			s.Suspend = ptr.To(true)
			s.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
		}, &batchv1.JobStatus{StartTime: &metav1.Time{}}, []string{"Invalid spec.template"}},
		{"indexed completions with parallelism", func(s *batchv1.JobSpec) { s.CompletionMode = ptr.To(batchv1.IndexedCompletion) },
			func(s *batchv1.JobSpec) {
				s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				s.Completions, s.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
			}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := job(tc.old)
			if tc.status != nil {
				old.Status = *tc.status
			}
			errs := ValidateJobUpdate(job(tc.mutate), old)
			apitesting.ExpectFieldErrors(t, errs, tc.want...)
			if len(tc.want) > 0 {
				apitesting.ExpectErrorDetail(t, errs, "field is immutable")
			}
		})
	}
}
