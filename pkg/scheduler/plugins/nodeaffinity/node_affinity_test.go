package nodeaffinity

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

func node(name string, labels map[string]string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func req(key string, op v1.NodeSelectorOperator, vals ...string) v1.NodeSelectorRequirement {
	return v1.NodeSelectorRequirement{Key: key, Operator: op, Values: vals}
}

func required(terms ...v1.NodeSelectorTerm) *v1.Affinity {
	return &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}}}
}

func newPlugin(t *testing.T, args runtime.Object) *NodeAffinity {
	t.Helper()
	p, err := New(context.Background(), args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*NodeAffinity)
}

var (
	podReason      = framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector")
	enforcedReason = framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match scheduler-enforced node affinity")
)

func TestFilter(t *testing.T) {
	zoneA := map[string]string{"zone": "a", "disk": "ssd"}
	tests := []struct {
		name     string
		selector map[string]string
		affinity *v1.Affinity
		labels   map[string]string
		args     *configv1.NodeAffinityArgs
		want     *framework.Status
		wantPre  *framework.Status
	}{
		{name: "nothing to check", labels: zoneA, wantPre: framework.NewStatus(framework.Skip)},
		{name: "selector matches", selector: map[string]string{"zone": "a"}, labels: zoneA},
		{name: "selector misses", selector: map[string]string{"zone": "b"}, labels: zoneA, want: podReason},
		{name: "selector needs every label", selector: map[string]string{"zone": "a", "gpu": "yes"}, labels: zoneA, want: podReason},
		{name: "required In", affinity: required(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpIn, "a", "b")}}), labels: zoneA},
		{name: "required NotIn", affinity: required(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpNotIn, "a")}}), labels: zoneA, want: podReason},
		{name: "required DoesNotExist", affinity: required(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("gpu", v1.NodeSelectorOpDoesNotExist)}}), labels: zoneA},
		{name: "required Gt", affinity: required(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("cores", v1.NodeSelectorOpGt, "4")}}), labels: map[string]string{"cores": "8"}},
		{name: "terms are ORed", affinity: required(
			v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpIn, "b")}},
			v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("disk", v1.NodeSelectorOpExists)}},
		), labels: zoneA},
		{name: "expressions in a term are ANDed", affinity: required(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
			req("zone", v1.NodeSelectorOpIn, "a"), req("disk", v1.NodeSelectorOpIn, "hdd"),
		}}), labels: zoneA, want: podReason},
		{name: "empty terms match nothing", affinity: required(), labels: zoneA, want: podReason},
		{name: "selector and affinity both needed", selector: map[string]string{"zone": "b"}, affinity: required(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpExists)}}), labels: zoneA, want: podReason},
		{name: "matchFields on name", affinity: required(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpIn, "n")}}), labels: zoneA},
		{name: "matchFields other name", affinity: required(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpIn, "m")}}), labels: zoneA, want: podReason},
		{
			name: "added affinity enforced", labels: zoneA,
			args: &configv1.NodeAffinityArgs{AddedAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpIn, "b")}}}}}},
			want: enforcedReason,
		},
		{
			name: "added affinity matches, pod's does not", labels: zoneA, selector: map[string]string{"zone": "c"},
			args: &configv1.NodeAffinityArgs{AddedAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpIn, "a")}}}}}},
			want: podReason,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args runtime.Object
			if tt.args != nil {
				args = tt.args
			}
			pl := newPlugin(t, args)
			pod := &v1.Pod{Spec: v1.PodSpec{NodeSelector: tt.selector, Affinity: tt.affinity}}
			ni := testhandle.NodeInfo(node("n", tt.labels))
			state := framework.NewCycleState()
			if _, st := pl.PreFilter(context.Background(), state, pod, nil); !st.Equal(tt.wantPre) {
				t.Fatalf("PreFilter = %v, want %v", st, tt.wantPre)
			}
			if got := pl.Filter(context.Background(), state, pod, ni); !got.Equal(tt.want) {
				t.Errorf("Filter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPreFilterResult(t *testing.T) {
	names := func(vals ...string) v1.NodeSelectorTerm {
		return v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpIn, vals...)}}
	}
	labelTerm := v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpExists)}}
	tests := []struct {
		name    string
		aff     *v1.Affinity
		want    sets.Set[string]
		wantSt  *framework.Status
		allNode bool
	}{
		{name: "one term", aff: required(names("a", "b")), want: sets.New("a", "b")},
		{name: "union of terms", aff: required(names("a"), names("b", "c")), want: sets.New("a", "b", "c")},
		{name: "intersection in a term", aff: required(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{
			req("metadata.name", v1.NodeSelectorOpIn, "a", "b"), req("metadata.name", v1.NodeSelectorOpIn, "b", "c")}}), want: sets.New("b")},
		{name: "a term without names keeps all nodes", aff: required(names("a"), labelTerm), allNode: true},
		{name: "empty intersection conflicts", aff: required(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{
			req("metadata.name", v1.NodeSelectorOpIn, "a"), req("metadata.name", v1.NodeSelectorOpIn, "b")}}),
			wantSt: framework.NewStatus(framework.UnschedulableAndUnresolvable, "pod affinity terms conflict"), allNode: true},
		{name: "NotIn does not narrow", aff: required(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpNotIn, "a")}}), allNode: true},
	}
	pl := newPlugin(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, st := pl.PreFilter(context.Background(), framework.NewCycleState(), &v1.Pod{Spec: v1.PodSpec{Affinity: tt.aff}}, nil)
			if !st.Equal(tt.wantSt) {
				t.Fatalf("status = %v, want %v", st, tt.wantSt)
			}
			if res.AllNodes() != tt.allNode || (!tt.allNode && !res.NodeNames.Equal(tt.want)) {
				t.Errorf("result = %v, want %v (all nodes: %v)", res, tt.want, tt.allNode)
			}
		})
	}
}

func TestScore(t *testing.T) {
	pref := func(w int32, key, val string) v1.PreferredSchedulingTerm {
		return v1.PreferredSchedulingTerm{Weight: w, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{req(key, v1.NodeSelectorOpIn, val)}}}
	}
	nodes := []*v1.Node{
		node("n1", map[string]string{"zone": "a"}),
		node("n2", map[string]string{"zone": "a", "disk": "ssd"}),
		node("n3", map[string]string{"zone": "b"}),
	}
	tests := []struct {
		name  string
		terms []v1.PreferredSchedulingTerm
		args  *configv1.NodeAffinityArgs
		want  []int64
		skip  bool
	}{
		// Raw n1 2, n2 2+5=7, n3 0: 100*2/7=28, 100, 0.
		{name: "weights summed and normalised", terms: []v1.PreferredSchedulingTerm{pref(2, "zone", "a"), pref(5, "disk", "ssd")}, want: []int64{28, 100, 0}},
		{name: "nothing matches", terms: []v1.PreferredSchedulingTerm{pref(3, "zone", "c")}, want: []int64{0, 0, 0}},
		{name: "no preferences: skipped", skip: true},
		{
			// Added preferred term weight 10 on zone b plus the pod's 2 on
			// zone a: raw 2, 2, 10 → 20, 20, 100.
			name:  "added preferred terms",
			terms: []v1.PreferredSchedulingTerm{pref(2, "zone", "a")},
			args:  &configv1.NodeAffinityArgs{AddedAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{pref(10, "zone", "b")}}},
			want:  []int64{20, 20, 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args runtime.Object
			if tt.args != nil {
				args = tt.args
			}
			pl := newPlugin(t, args)
			ctx := context.Background()
			pod := &v1.Pod{}
			if tt.terms != nil {
				pod.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: tt.terms}}
			}
			state := framework.NewCycleState()
			st := pl.PreScore(ctx, state, pod, nil)
			if tt.skip {
				if !st.IsSkip() {
					t.Errorf("PreScore = %v, want Skip", st)
				}
				return
			}
			if !st.IsSuccess() {
				t.Fatal(st)
			}
			var list framework.NodeScoreList
			for _, n := range nodes {
				s, st := pl.Score(ctx, state, pod, testhandle.NodeInfo(n))
				if !st.IsSuccess() {
					t.Fatal(st)
				}
				list = append(list, framework.NodeScore{Name: n.Name, Score: s})
			}
			pl.NormalizeScore(ctx, state, pod, list)
			for i := range list {
				if list[i].Score != tt.want[i] {
					t.Fatalf("scores = %v, want %v", list, tt.want)
				}
			}
		})
	}
}

func TestNodeHint(t *testing.T) {
	pl := newPlugin(t, nil)
	pod := &v1.Pod{Spec: v1.PodSpec{NodeSelector: map[string]string{"zone": "a"}}}
	a, b := node("n", map[string]string{"zone": "a"}), node("n", map[string]string{"zone": "b"})
	for _, c := range []struct {
		name     string
		old, new any
		want     framework.QueueingHint
	}{
		{"added matching", nil, a, framework.Queue},
		{"added not matching", nil, b, framework.QueueSkip},
		{"relabelled to match", b, a, framework.Queue},
		{"already matched", a, a, framework.QueueSkip},
		{"relabelled away", a, b, framework.QueueSkip},
	} {
		if got, err := pl.isSchedulableAfterNodeChange(klog.Background(), pod, c.old, c.new); err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}
