package status

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

func runningPod() (*corev1.Pod, *container.PodStatus) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Generation: 1},
		Spec:       corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "a", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: "example.com/gate", Status: corev1.ConditionTrue},
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "PreemptionByScheduler"},
		}},
	}
	rs := &container.PodStatus{UID: "u1", SandboxReady: true, IPs: []string{"10.0.0.2"},
		Containers: []container.ContainerStatus{{Name: "a", ID: "sim://1", State: container.StateRunning, StartedAt: time.Unix(1000, 0)}}}
	return pod, rs
}

func patches(client *fake.Clientset) []clienttesting.PatchAction {
	var out []clienttesting.PatchAction
	for _, a := range client.Actions() {
		if p, ok := a.(clienttesting.PatchAction); ok && a.GetSubresource() == "status" {
			out = append(out, p)
		}
	}
	return out
}

// TestSetPodStatusPatchesOnlyChanges: the first status is a strategic
// merge patch with the UID precondition that keeps others' conditions;
// the same status again (the informer lagging or caught up, probe times
// apart) sends nothing.
func TestSetPodStatusPatchesOnlyChanges(t *testing.T) {
	pod, rs := runningPod()
	client := fake.NewClientset(pod)
	clk := testingclock.NewFakeClock(time.Unix(2000, 0))
	m := NewManager(client, clk)
	ctx := context.Background()
	s := Generate(pod, rs, Options{Now: clk.Now()})
	wrote, err := m.SetPodStatus(ctx, pod, s)
	if err != nil || !wrote {
		t.Fatalf("first write: %v %v", wrote, err)
	}
	ps := patches(client)
	if len(ps) != 1 || ps[0].GetPatchType() != "application/strategic-merge-patch+json" {
		t.Fatalf("patches %v", ps)
	}
	var patch struct {
		Metadata struct{ UID string } `json:"metadata"`
		Status   corev1.PodStatus     `json:"status"`
	}
	if err := json.Unmarshal(ps[0].GetPatch(), &patch); err != nil || patch.Metadata.UID != "u1" || patch.Status.Phase != corev1.PodRunning {
		t.Fatalf("patch %s: %v", ps[0].GetPatch(), err)
	}
	// The informer has not seen the write yet: nothing more to send.
	clk.Step(time.Second)
	if wrote, _ := m.SetPodStatus(ctx, pod, Generate(pod, rs, Options{Now: clk.Now()})); wrote {
		t.Error("wrote again before the informer caught up")
	}
	// Caught up: equal, nothing sent, even with another probe time.
	stored, err := client.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[corev1.PodConditionType]bool{}
	for _, c := range stored.Status.Conditions {
		kinds[c.Type] = true
	}
	if !kinds["example.com/gate"] || !kinds[corev1.DisruptionTarget] || !kinds[corev1.PodReady] {
		t.Errorf("stored conditions %v lost others' conditions", stored.Status.Conditions)
	}
	clk.Step(time.Minute)
	again := Generate(stored, rs, Options{Now: clk.Now()})
	again.Conditions[len(again.Conditions)-1].LastProbeTime = metav1.NewTime(clk.Now())
	if wrote, _ := m.SetPodStatus(ctx, stored, again); wrote || len(patches(client)) != 1 {
		t.Errorf("unchanged status written: %d patches", len(patches(client)))
	}
	// A change is written.
	rs.Containers[0].State = container.StateExited
	rs.Containers[0].Exited = &container.Termination{ExitCode: 1, Reason: "Error", FinishedAt: clk.Now()}
	if wrote, err := m.SetPodStatus(ctx, stored, Generate(stored, rs, Options{Now: clk.Now()})); !wrote || err != nil {
		t.Errorf("change not written: %v", err)
	}
}

// TestTerminalPhaseIsFinal: a Failed pod is never reported Running again,
// nor Ready.
func TestTerminalPhaseIsFinal(t *testing.T) {
	pod, rs := runningPod()
	pod.Status.Phase, pod.Status.Reason = corev1.PodFailed, "OutOfcpu"
	client := fake.NewClientset(pod)
	m := NewManager(client, nil)
	s := Generate(pod, rs, Options{Now: time.Now()})
	if s.Phase != corev1.PodFailed {
		t.Errorf("generated phase %s", s.Phase)
	}
	s.Phase = corev1.PodRunning
	if _, err := m.SetPodStatus(context.Background(), pod, s); err != nil {
		t.Fatal(err)
	}
	stored, _ := client.CoreV1().Pods("ns").Get(context.Background(), "p", metav1.GetOptions{})
	if stored.Status.Phase != corev1.PodFailed || stored.Status.Reason != "OutOfcpu" {
		t.Errorf("phase %s reason %s", stored.Status.Phase, stored.Status.Reason)
	}
	for _, c := range stored.Status.Conditions {
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && (c.Status != corev1.ConditionFalse || c.Reason != ReasonPodFailed) {
			t.Errorf("terminal pod: %s %s %s", c.Type, c.Status, c.Reason)
		}
	}
}

// TestGoneOrReplaced: a 404 or a UID conflict is no error; the delete
// confirms with grace period 0 and the UID precondition.
func TestGoneOrReplaced(t *testing.T) {
	pod, rs := runningPod()
	client := fake.NewClientset()
	m := NewManager(client, nil)
	if wrote, err := m.SetPodStatus(context.Background(), pod, Generate(pod, rs, Options{Now: time.Now()})); wrote || err != nil {
		t.Errorf("gone pod: %v %v", wrote, err)
	}
	client = fake.NewClientset(pod)
	var deleteOpts metav1.DeleteOptions
	client.PrependReactor("delete", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		deleteOpts = a.(clienttesting.DeleteAction).GetDeleteOptions()
		return false, nil, nil
	})
	if err := NewManager(client, nil).DeletePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if deleteOpts.GracePeriodSeconds == nil || *deleteOpts.GracePeriodSeconds != 0 || deleteOpts.Preconditions == nil || *deleteOpts.Preconditions.UID != "u1" {
		t.Errorf("delete options %+v", deleteOpts)
	}
	if err := NewManager(client, nil).DeletePod(context.Background(), pod); err != nil {
		t.Errorf("deleting a gone pod: %v", err)
	}
}
