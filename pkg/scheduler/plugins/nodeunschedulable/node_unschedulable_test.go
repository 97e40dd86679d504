package nodeunschedulable

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

var rejected = framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) were unschedulable")

func TestFilter(t *testing.T) {
	tests := []struct {
		name          string
		unschedulable bool
		tolerations   []v1.Toleration
		want          *framework.Status
	}{
		{"schedulable node", false, nil, nil},
		{"cordoned node", true, nil, rejected},
		{"cordoned, tolerated by key", true, []v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}, nil},
		{"cordoned, tolerated by Exists on all keys", true, []v1.Toleration{{Operator: v1.TolerationOpExists}}, nil},
		{"cordoned, NoExecute toleration does not help", true, []v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}}, rejected},
		{"cordoned, other key", true, []v1.Toleration{{Key: "foo", Operator: v1.TolerationOpExists}}, rejected},
	}
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*NodeUnschedulable)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: v1.NodeSpec{Unschedulable: tt.unschedulable}}
			pod := &v1.Pod{Spec: v1.PodSpec{Tolerations: tt.tolerations}}
			if got := pl.Filter(context.Background(), framework.NewCycleState(), pod, testhandle.NodeInfo(node)); !got.Equal(tt.want) {
				t.Errorf("Filter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHints(t *testing.T) {
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*NodeUnschedulable)
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}}
	cordoned := &v1.Node{Spec: v1.NodeSpec{Unschedulable: true}}
	open := &v1.Node{}
	lg := klog.Background()
	for _, c := range []struct {
		name     string
		old, new any
		want     framework.QueueingHint
	}{
		{"added schedulable", nil, open, framework.Queue},
		{"added cordoned", nil, cordoned, framework.QueueSkip},
		{"uncordoned", cordoned, open, framework.Queue},
		{"cordoned", open, cordoned, framework.QueueSkip},
		{"unchanged", open, open, framework.QueueSkip},
	} {
		if got, err := pl.isSchedulableAfterNodeChange(lg, pod, c.old, c.new); err != nil || got != c.want {
			t.Errorf("node %s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	tolerating := pod.DeepCopy()
	tolerating.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists}}
	if got, _ := pl.isSchedulableAfterPodTolerationChange(lg, pod, pod, tolerating); got != framework.Queue {
		t.Errorf("toleration added: %v, want Queue", got)
	}
	other := pod.DeepCopy()
	other.Spec.Tolerations = []v1.Toleration{{Key: "foo", Operator: v1.TolerationOpExists}}
	if got, _ := pl.isSchedulableAfterPodTolerationChange(lg, pod, pod, other); got != framework.QueueSkip {
		t.Errorf("unrelated toleration: %v, want QueueSkip", got)
	}
}
