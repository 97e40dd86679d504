package tainttoleration

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

func node(name string, taints ...v1.Taint) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{Taints: taints}}
}

func plugin(t *testing.T) *TaintToleration {
	p, err := New(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*TaintToleration)
}

var untolerated = framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint(s)")

func TestFilter(t *testing.T) {
	dedicated := v1.Taint{Key: "dedicated", Value: "infra", Effect: v1.TaintEffectNoSchedule}
	tests := []struct {
		name        string
		taints      []v1.Taint
		tolerations []v1.Toleration
		want        *framework.Status
	}{
		{"no taints", nil, nil, nil},
		{"NoSchedule untolerated", []v1.Taint{dedicated}, nil, untolerated},
		{"NoExecute untolerated", []v1.Taint{{Key: "k", Effect: v1.TaintEffectNoExecute}}, nil, untolerated},
		{"PreferNoSchedule does not filter", []v1.Taint{{Key: "k", Effect: v1.TaintEffectPreferNoSchedule}}, nil, nil},
		{"tolerated by Equal", []v1.Taint{dedicated}, []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "infra", Effect: v1.TaintEffectNoSchedule}}, nil},
		{"wrong value", []v1.Taint{dedicated}, []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "db", Effect: v1.TaintEffectNoSchedule}}, untolerated},
		{"tolerated by Exists without effect", []v1.Taint{dedicated}, []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists}}, nil},
		{"wrong effect", []v1.Taint{dedicated}, []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}}, untolerated},
		{"one of two tolerated", []v1.Taint{dedicated, {Key: "b", Effect: v1.TaintEffectNoExecute}}, []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists}}, untolerated},
	}
	pl := plugin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{Tolerations: tt.tolerations}}
			got := pl.Filter(context.Background(), framework.NewCycleState(), pod, testhandle.NodeInfo(node("n", tt.taints...)))
			if !got.Equal(tt.want) {
				t.Errorf("Filter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScore(t *testing.T) {
	pref := func(k, v string) v1.Taint { return v1.Taint{Key: k, Value: v, Effect: v1.TaintEffectPreferNoSchedule} }
	tests := []struct {
		name        string
		tolerations []v1.Toleration
		nodes       []*v1.Node
		want        framework.NodeScoreList
	}{
		{
			// Raw counts 0, 1, 2: max 2, so 100-0, 100-50, 100-100.
			name:  "counts reversed",
			nodes: []*v1.Node{node("a"), node("b", pref("x", "1")), node("c", pref("x", "1"), pref("y", "2"))},
			want:  framework.NodeScoreList{{Name: "a", Score: 100}, {Name: "b", Score: 50}, {Name: "c", Score: 0}},
		},
		{
			name:        "tolerated taints do not count",
			tolerations: []v1.Toleration{{Key: "x", Operator: v1.TolerationOpEqual, Value: "1", Effect: v1.TaintEffectPreferNoSchedule}},
			nodes:       []*v1.Node{node("a", pref("x", "1")), node("b", pref("y", "1"))},
			want:        framework.NodeScoreList{{Name: "a", Score: 100}, {Name: "b", Score: 0}},
		},
		{
			name:        "NoSchedule tolerations do not tolerate PreferNoSchedule",
			tolerations: []v1.Toleration{{Key: "x", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}},
			nodes:       []*v1.Node{node("a", pref("x", "1")), node("b")},
			want:        framework.NodeScoreList{{Name: "a", Score: 0}, {Name: "b", Score: 100}},
		},
		{
			// Raw 1, 3, 0: 100-100*1/3=67, 0, 100.
			name:  "integer division",
			nodes: []*v1.Node{node("a", pref("x", "")), node("b", pref("x", ""), pref("y", ""), pref("z", "")), node("c", v1.Taint{Key: "n", Effect: v1.TaintEffectNoSchedule})},
			want:  framework.NodeScoreList{{Name: "a", Score: 67}, {Name: "b", Score: 0}, {Name: "c", Score: 100}},
		},
		{
			name:  "all zero",
			nodes: []*v1.Node{node("a"), node("b")},
			want:  framework.NodeScoreList{{Name: "a", Score: 100}, {Name: "b", Score: 100}},
		},
	}
	pl := plugin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			pod := &v1.Pod{Spec: v1.PodSpec{Tolerations: tt.tolerations}}
			state := framework.NewCycleState()
			if st := pl.PreScore(ctx, state, pod, nil); !st.IsSuccess() {
				t.Fatal(st)
			}
			var got framework.NodeScoreList
			for _, n := range tt.nodes {
				s, st := pl.Score(ctx, state, pod, testhandle.NodeInfo(n))
				if !st.IsSuccess() {
					t.Fatal(st)
				}
				got = append(got, framework.NodeScore{Name: n.Name, Score: s})
			}
			if st := pl.ScoreExtensions().NormalizeScore(ctx, state, pod, got); !st.IsSuccess() {
				t.Fatal(st)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("scores = %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
}

func TestNodeHint(t *testing.T) {
	pl := plugin(t)
	pod := &v1.Pod{Spec: v1.PodSpec{Tolerations: []v1.Toleration{{Key: "ok", Operator: v1.TolerationOpExists}}}}
	bad := v1.Taint{Key: "bad", Effect: v1.TaintEffectNoSchedule}
	ok := v1.Taint{Key: "ok", Effect: v1.TaintEffectNoSchedule}
	for _, c := range []struct {
		name     string
		old, new any
		want     framework.QueueingHint
	}{
		{"added tolerated", nil, node("n", ok), framework.Queue},
		{"added untolerated", nil, node("n", bad), framework.QueueSkip},
		{"untolerated taint removed", node("n", bad), node("n", ok), framework.Queue},
		{"untolerated taint added", node("n"), node("n", bad), framework.QueueSkip},
		{"was already tolerated", node("n"), node("n", ok), framework.QueueSkip},
	} {
		if got, err := pl.isSchedulableAfterNodeChange(klog.Background(), pod, c.old, c.new); err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := pl.isSchedulableAfterNodeChange(klog.Background(), pod, nil, &v1.Pod{}); err == nil {
		t.Error("wrong type: no error")
	}
}
