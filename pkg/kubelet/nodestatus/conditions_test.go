package nodestatus

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConditionsKeepTransitionTimes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(10 * time.Second))
	first := Conditions(nil, t0, Pressure{}, nil)
	if len(first) != 4 || first[3].Type != corev1.NodeReady || first[3].Status != corev1.ConditionTrue {
		t.Fatalf("first conditions %+v", first)
	}
	// The same state later: only the heartbeat moves.
	second := Conditions(first, t1, Pressure{}, nil)
	for i, c := range second {
		if !c.LastHeartbeatTime.Equal(&t1) || !c.LastTransitionTime.Equal(&t0) {
			t.Errorf("%s: heartbeat %v transition %v, want %v and %v", c.Type, c.LastHeartbeatTime, c.LastTransitionTime, t1, t0)
		}
		if c.Status != first[i].Status {
			t.Errorf("%s changed status", c.Type)
		}
	}
	// Not ready and short of memory: those two transition, as upstream words them.
	third := Conditions(second, t1, Pressure{Memory: true}, []error{errors.New("container runtime is down"), errors.New("network plugin not ready")})
	mem, ready := third[0], third[3]
	if mem.Status != corev1.ConditionTrue || mem.Reason != "KubeletHasInsufficientMemory" || !mem.LastTransitionTime.Equal(&t1) {
		t.Errorf("memory pressure %+v", mem)
	}
	if ready.Status != corev1.ConditionFalse || ready.Reason != "KubeletNotReady" ||
		ready.Message != "container runtime is down\nnetwork plugin not ready" || !ready.LastTransitionTime.Equal(&t1) {
		t.Errorf("ready %+v", ready)
	}
	if disk := third[1]; !disk.LastTransitionTime.Equal(&t0) {
		t.Errorf("disk pressure transitioned without changing: %+v", disk)
	}
}

func TestChangedIgnoresHeartbeats(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := &corev1.NodeStatus{Conditions: Conditions(nil, t0, Pressure{}, nil)}
	b := a.DeepCopy()
	later := metav1.NewTime(t0.Add(time.Minute))
	for i := range b.Conditions {
		b.Conditions[i].LastHeartbeatTime = later
	}
	if Changed(a, b) {
		t.Error("a heartbeat alone counts as a change")
	}
	// Order does not matter either.
	b.Conditions[0], b.Conditions[3] = b.Conditions[3], b.Conditions[0]
	if Changed(a, b) {
		t.Error("reordered conditions count as a change")
	}
	b.Conditions[0].Status = corev1.ConditionFalse
	if !Changed(a, b) {
		t.Error("a status change is not a change")
	}
	c := a.DeepCopy()
	c.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	if !Changed(a, c) {
		t.Error("new addresses are not a change")
	}
}
