package status

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// TestResizeStatus: a running container reports the resources its
// instance has (an in-place resize may be under way) and the allocated
// requests; one that does not run reports no resources; the resize
// conditions come from the runtime with the pod's generation.
func TestResizeStatus(t *testing.T) {
	req := func(cpu string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u", Generation: 3},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "resized", Resources: req("30m")}, {Name: "waiting", Resources: req("10m")}, {Name: "besteffort"},
		}},
	}
	allocated, actual := req("25m"), req("20m")
	r := running("resized")
	r.Allocated, r.Actual = &allocated, &actual
	pending := corev1.PodCondition{Type: corev1.PodResizePending, Status: corev1.ConditionTrue, Reason: corev1.PodReasonDeferred, Message: "m", ObservedGeneration: 3}
	rs := &container.PodStatus{UID: "u", SandboxReady: true,
		Containers:       []container.ContainerStatus{r, {Name: "waiting"}, running("besteffort")},
		ResizeConditions: []corev1.PodCondition{pending}}
	now := time.Unix(100, 0)
	s := Generate(pod, rs, Options{Now: now})

	cs := s.ContainerStatuses
	if cs[0].Resources == nil || !apiequality.Semantic.DeepEqual(*cs[0].Resources, actual) || !apiequality.Semantic.DeepEqual(cs[0].AllocatedResources, allocated.Requests) {
		t.Errorf("resized: resources %+v, allocated %v; want %v and %v", cs[0].Resources, cs[0].AllocatedResources, actual, allocated.Requests)
	}
	if cs[1].Resources != nil || cs[1].AllocatedResources.Cpu().String() != "10m" {
		t.Errorf("waiting: resources %+v, allocated %v; want none and the spec's", cs[1].Resources, cs[1].AllocatedResources)
	}
	if cs[2].Resources == nil || len(cs[2].Resources.Requests) != 0 || cs[2].AllocatedResources != nil {
		t.Errorf("running BestEffort: resources %+v, allocated %v; want empty resources, no allocation", cs[2].Resources, cs[2].AllocatedResources)
	}
	var got *corev1.PodCondition
	for i := range s.Conditions {
		if s.Conditions[i].Type == corev1.PodResizePending {
			got = &s.Conditions[i]
		}
	}
	if got == nil || got.Reason != corev1.PodReasonDeferred || got.ObservedGeneration != 3 || !got.LastTransitionTime.Time.Equal(now) {
		t.Errorf("PodResizePending %+v", got)
	}

	// Done: the condition goes.
	pod.Status = s
	rs.ResizeConditions = nil
	s = Generate(pod, rs, Options{Now: now.Add(time.Second)})
	for _, c := range s.Conditions {
		if c.Type == corev1.PodResizePending || c.Type == corev1.PodResizeInProgress {
			t.Errorf("condition left after the resize: %+v", c)
		}
	}
}
