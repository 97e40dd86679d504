package schedulinggates

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

func TestPreEnqueue(t *testing.T) {
	tests := []struct {
		name  string
		gates []v1.PodSchedulingGate
		want  *framework.Status
	}{
		{"no gates", nil, nil},
		{"one gate", []v1.PodSchedulingGate{{Name: "foo"}}, framework.NewStatus(framework.UnschedulableAndUnresolvable, "waiting for scheduling gates: [foo]")},
		{"two gates", []v1.PodSchedulingGate{{Name: "foo"}, {Name: "bar"}}, framework.NewStatus(framework.UnschedulableAndUnresolvable, "waiting for scheduling gates: [foo bar]")},
	}
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*SchedulingGates)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{SchedulingGates: tt.gates}}
			if got := pl.PreEnqueue(context.Background(), pod); !got.Equal(tt.want) {
				t.Errorf("PreEnqueue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*SchedulingGates)
	evs, err := pl.EventsToRegister(context.Background())
	if err != nil || len(evs) != 1 {
		t.Fatalf("EventsToRegister = %v, %v", evs, err)
	}
	ev := evs[0]
	if !ev.Event.Match(framework.ClusterEvent{Resource: framework.UnscheduledPod, ActionType: framework.UpdatePodSchedulingGatesEliminated}) {
		t.Error("does not match the gates-eliminated update of an unscheduled pod")
	}
	if ev.Event.Match(framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add}) {
		t.Error("matches a node add")
	}
	self := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "1"}}
	other := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "q", UID: "2"}}
	if h, _ := ev.QueueingHintFn(klog.Background(), self, self, self); h != framework.Queue {
		t.Errorf("own update: %v, want Queue", h)
	}
	if h, _ := ev.QueueingHintFn(klog.Background(), self, other, other); h != framework.QueueSkip {
		t.Errorf("other pod's update: %v, want QueueSkip", h)
	}
}
