package podutil

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(phase corev1.PodPhase, deleting bool, ready corev1.ConditionStatus, since time.Time) *corev1.Pod {
	p := &corev1.Pod{Status: corev1.PodStatus{Phase: phase}}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{Time: since}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue})
	if ready != "" {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.Time{Time: since}})
	}
	return p
}

func TestStates(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                            string
		pod                             *corev1.Pod
		ready, terminal, active, ending bool
	}{
		{"running ready", pod(corev1.PodRunning, false, corev1.ConditionTrue, now), true, false, true, false},
		{"running not ready", pod(corev1.PodRunning, false, corev1.ConditionFalse, now), false, false, true, false},
		{"pending, no Ready condition", pod(corev1.PodPending, false, "", now), false, false, true, false},
		{"being deleted", pod(corev1.PodRunning, true, corev1.ConditionTrue, now), true, false, false, true},
		{"succeeded", pod(corev1.PodSucceeded, false, corev1.ConditionFalse, now), false, true, false, false},
		{"failed and being deleted", pod(corev1.PodFailed, true, corev1.ConditionFalse, now), false, true, false, false},
	} {
		if got := IsPodReady(tc.pod); got != tc.ready {
			t.Errorf("%s: ready %v", tc.name, got)
		}
		if got := IsPodTerminal(tc.pod); got != tc.terminal {
			t.Errorf("%s: terminal %v", tc.name, got)
		}
		if got := IsPodActive(tc.pod); got != tc.active {
			t.Errorf("%s: active %v", tc.name, got)
		}
		if got := IsPodTerminating(tc.pod); got != tc.ending {
			t.Errorf("%s: terminating %v", tc.name, got)
		}
	}
	p := pod(corev1.PodRunning, false, corev1.ConditionTrue, now)
	if c := GetPodCondition(p, corev1.PodScheduled); c == nil || c.Type != corev1.PodScheduled {
		t.Errorf("PodScheduled condition: %v", c)
	}
	if c := GetPodCondition(p, corev1.DisruptionTarget); c != nil {
		t.Errorf("a condition the pod has not: %v", c)
	}
}

// TestIsPodAvailable: upstream's boundary (ready exactly minReadySeconds
// ago is available), a zero transition time never is, 0 seconds always.
func TestIsPodAvailable(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		min  int32
		want bool
	}{
		{"ready now, 0s", pod(corev1.PodRunning, false, corev1.ConditionTrue, now), 0, true},
		{"ready now, 10s", pod(corev1.PodRunning, false, corev1.ConditionTrue, now), 10, false},
		{"ready 9s ago, 10s", pod(corev1.PodRunning, false, corev1.ConditionTrue, now.Add(-9*time.Second)), 10, false},
		{"ready exactly 10s ago, 10s", pod(corev1.PodRunning, false, corev1.ConditionTrue, now.Add(-10*time.Second)), 10, true},
		{"ready 11s ago, 10s", pod(corev1.PodRunning, false, corev1.ConditionTrue, now.Add(-11*time.Second)), 10, true},
		{"ready since zero time, 10s", pod(corev1.PodRunning, false, corev1.ConditionTrue, time.Time{}), 10, false},
		{"not ready, 0s", pod(corev1.PodRunning, false, corev1.ConditionFalse, now.Add(-time.Hour)), 0, false},
		{"no Ready condition, 0s", pod(corev1.PodPending, false, "", now), 0, false},
	} {
		if got := IsPodAvailable(tc.pod, tc.min, now); got != tc.want {
			t.Errorf("%s: available %v, want %v", tc.name, got, tc.want)
		}
	}
}
