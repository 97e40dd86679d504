package interpodaffinity

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

const zone = "topology.kubernetes.io/zone"

func mkNode(name string, lbls map[string]string) *v1.Node {
	l := map[string]string{v1.LabelHostname: name}
	for k, v := range lbls {
		l[k] = v
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func mkPod(name, ns string, lbls map[string]string, aff *v1.Affinity) *v1.Pod {
	if ns == "" {
		ns = "default"
	}
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID(ns + "/" + name), Labels: lbls},
		Spec: v1.PodSpec{Affinity: aff}}
}

func on(p *v1.Pod, node string) *v1.Pod { p.Spec.NodeName = node; return p }

func ni(node *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
	n := framework.NewNodeInfo()
	n.SetNode(node)
	for _, p := range pods {
		n.AddPod(on(p, node.Name))
	}
	return n
}

func term(key, sel string, vals ...string) v1.PodAffinityTerm {
	return v1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: sel, Operator: metav1.LabelSelectorOpIn, Values: vals}}}}
}

func required(aff, anti []v1.PodAffinityTerm) *v1.Affinity {
	a := &v1.Affinity{}
	if aff != nil {
		a.PodAffinity = &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: aff}
	}
	if anti != nil {
		a.PodAntiAffinity = &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: anti}
	}
	return a
}

func preferred(aff, anti []v1.WeightedPodAffinityTerm) *v1.Affinity {
	a := &v1.Affinity{}
	if aff != nil {
		a.PodAffinity = &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: aff}
	}
	if anti != nil {
		a.PodAntiAffinity = &v1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: anti}
	}
	return a
}

func newPlugin(t *testing.T, h *testhandle.Handle, args *configv1.InterPodAffinityArgs) *InterPodAffinity {
	t.Helper()
	// A nil *Args must reach New as a nil interface, as the core passes it.
	var a runtime.Object
	if args != nil {
		a = args
	}
	p, err := New(context.Background(), a, h)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*InterPodAffinity)
}

var (
	zoneA = map[string]string{zone: "a"}
	zoneB = map[string]string{zone: "b"}
)

func TestFilter(t *testing.T) {
	affReason := framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
	antiReason := framework.NewStatus(framework.Unschedulable, ErrReasonAntiAffinityRulesNotMatch)
	existingReason := framework.NewStatus(framework.Unschedulable, ErrReasonExistingAntiAffinityRulesNotMatch)
	nsLabeled := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-x", Labels: map[string]string{"team": "x"}}}
	nsPlain := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}

	tests := []struct {
		name  string
		pod   *v1.Pod
		nodes []*framework.NodeInfo
		nss   []*v1.Namespace
		want  map[string]*framework.Status
	}{
		{
			name: "required affinity in zone: nodes of the zone with a match pass",
			pod:  mkPod("p", "", nil, required([]v1.PodAffinityTerm{term(zone, "app", "db")}, nil)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("db", "", map[string]string{"app": "db"}, nil)),
				ni(mkNode("n2", zoneA)),
				ni(mkNode("n3", zoneB)),
				ni(mkNode("n4", nil)),
			},
			want: map[string]*framework.Status{"n3": affReason, "n4": affReason},
		},
		{
			name: "matching pod in another namespace does not count",
			pod:  mkPod("p", "", nil, required([]v1.PodAffinityTerm{term(zone, "app", "db")}, nil)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("db", "other", map[string]string{"app": "db"}, nil)),
				ni(mkNode("n2", zoneB), mkPod("x", "", map[string]string{"app": "x"}, nil)),
			},
			want: map[string]*framework.Status{"n1": affReason, "n2": affReason},
		},
		{
			name: "first pod of a self-affine group goes wherever the key exists",
			pod:  mkPod("p", "", map[string]string{"app": "db"}, required([]v1.PodAffinityTerm{term(zone, "app", "db")}, nil)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA)),
				ni(mkNode("n2", nil)),
			},
			want: map[string]*framework.Status{"n2": affReason},
		},
		{
			name: "anti-affinity on hostname",
			pod:  mkPod("p", "", map[string]string{"app": "web"}, required(nil, []v1.PodAffinityTerm{term(v1.LabelHostname, "app", "web")})),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("w", "", map[string]string{"app": "web"}, nil)),
				ni(mkNode("n2", zoneA)),
			},
			want: map[string]*framework.Status{"n1": antiReason},
		},
		{
			name: "existing pod's anti-affinity over its zone",
			pod:  mkPod("p", "", map[string]string{"security": "S1"}, nil),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("e", "", nil, required(nil, []v1.PodAffinityTerm{term(zone, "security", "S1")}))),
				ni(mkNode("n2", zoneA)),
				ni(mkNode("n3", zoneB)),
			},
			want: map[string]*framework.Status{"n1": existingReason, "n2": existingReason},
		},
		{
			name: "existing pod's anti-affinity by namespaceSelector reads the incoming pod's namespace labels",
			pod:  mkPod("p", "team-x", map[string]string{"security": "S1"}, nil),
			nss:  []*v1.Namespace{nsLabeled, nsPlain},
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("e", "plain", nil, &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{
					func() v1.PodAffinityTerm {
						t := term(v1.LabelHostname, "security", "S1")
						t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
						return t
					}()}}})),
				ni(mkNode("n2", zoneA)),
			},
			want: map[string]*framework.Status{"n1": existingReason},
		},
		{
			name: "incoming anti-affinity by namespaceSelector: only pods of selected namespaces",
			pod: mkPod("p", "", nil, required(nil, []v1.PodAffinityTerm{func() v1.PodAffinityTerm {
				t := term(v1.LabelHostname, "app", "web")
				t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
				return t
			}()})),
			nss: []*v1.Namespace{nsLabeled, nsPlain},
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", nil), mkPod("w", "team-x", map[string]string{"app": "web"}, nil)),
				ni(mkNode("n2", nil), mkPod("w", "plain", map[string]string{"app": "web"}, nil)),
				ni(mkNode("n3", nil), mkPod("w", "default", map[string]string{"app": "web"}, nil)),
			},
			want: map[string]*framework.Status{"n1": antiReason},
		},
		{
			name: "empty namespaceSelector selects all namespaces",
			pod: mkPod("p", "", nil, required(nil, []v1.PodAffinityTerm{func() v1.PodAffinityTerm {
				t := term(v1.LabelHostname, "app", "web")
				t.NamespaceSelector = &metav1.LabelSelector{}
				return t
			}()})),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", nil), mkPod("w", "elsewhere", map[string]string{"app": "web"}, nil)),
				ni(mkNode("n2", nil)),
			},
			want: map[string]*framework.Status{"n1": antiReason},
		},
		{
			name: "matchLabelKeys narrow the anti-affinity to the pod's own version",
			pod: mkPod("p", "", map[string]string{"app": "web", "version": "v1"}, required(nil, []v1.PodAffinityTerm{func() v1.PodAffinityTerm {
				t := term(v1.LabelHostname, "app", "web")
				t.MatchLabelKeys = []string{"version"}
				return t
			}()})),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", nil), mkPod("w", "", map[string]string{"app": "web", "version": "v2"}, nil)),
				ni(mkNode("n2", nil), mkPod("w", "", map[string]string{"app": "web", "version": "v1"}, nil)),
			},
			want: map[string]*framework.Status{"n2": antiReason},
		},
		{
			name: "mismatchLabelKeys: keep away from other tenants",
			pod: mkPod("p", "", map[string]string{"tenant": "t1"}, required(nil, []v1.PodAffinityTerm{{
				TopologyKey: v1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tenant", Operator: metav1.LabelSelectorOpExists}}},
				MismatchLabelKeys: []string{"tenant"}}})),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", nil), mkPod("a", "", map[string]string{"tenant": "t1"}, nil)),
				ni(mkNode("n2", nil), mkPod("b", "", map[string]string{"tenant": "t2"}, nil)),
			},
			want: map[string]*framework.Status{"n2": antiReason},
		},
		{
			name: "affinity and anti-affinity together: affinity reason first",
			pod: mkPod("p", "", nil, required([]v1.PodAffinityTerm{term(zone, "app", "db")},
				[]v1.PodAffinityTerm{term(v1.LabelHostname, "app", "db")})),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("db", "", map[string]string{"app": "db"}, nil)),
				ni(mkNode("n2", zoneA)),
				ni(mkNode("n3", zoneB)),
			},
			want: map[string]*framework.Status{"n1": antiReason, "n3": affReason},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandle(tc.nodes, tc.nss...)
			pl := newPlugin(t, h, nil)
			cs := framework.NewCycleState()
			_, st := pl.PreFilter(context.Background(), cs, tc.pod, tc.nodes)
			if !st.IsSuccess() {
				t.Fatalf("PreFilter: %v", st)
			}
			for _, n := range tc.nodes {
				got := pl.Filter(context.Background(), cs, tc.pod, n)
				if want := tc.want[n.Node().Name]; !got.Equal(want) {
					t.Errorf("%s: got %v, want %v", n.Node().Name, got, want)
				}
			}
		})
	}
}

func TestPreFilterSkipAndParseError(t *testing.T) {
	nodes := []*framework.NodeInfo{ni(mkNode("n1", nil), mkPod("a", "", map[string]string{"app": "x"}, nil))}
	pl := newPlugin(t, newFakeHandle(nodes), nil)
	if _, st := pl.PreFilter(context.Background(), framework.NewCycleState(), mkPod("p", "", nil, nil), nodes); !st.IsSkip() {
		t.Errorf("no terms anywhere: %v, want Skip", st)
	}
	bad := mkPod("p", "", nil, required([]v1.PodAffinityTerm{{TopologyKey: zone, LabelSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}}}, nil))
	_, st := pl.PreFilter(context.Background(), framework.NewCycleState(), bad, nodes)
	if st.Code() != framework.UnschedulableAndUnresolvable || len(st.Reasons()) != 1 || st.Reasons()[0][:13] != "parsing pod: " {
		t.Errorf("bad selector: %v", st)
	}
}

// TestPreFilterExtensions: removing the pod that blocks a node (as
// preemption does on a cloned state) frees it; adding it back blocks it.
func TestPreFilterExtensions(t *testing.T) {
	blocker := mkPod("e", "", map[string]string{"app": "web"}, required(nil, []v1.PodAffinityTerm{term(zone, "security", "S1")}))
	n1 := ni(mkNode("n1", zoneA), blocker)
	nodes := []*framework.NodeInfo{n1, ni(mkNode("n2", zoneA))}
	pod := mkPod("p", "", map[string]string{"security": "S1"}, required(nil, []v1.PodAffinityTerm{term(zone, "app", "web")}))
	pl := newPlugin(t, newFakeHandle(nodes), nil)
	cs := framework.NewCycleState()
	if _, st := pl.PreFilter(context.Background(), cs, pod, nodes); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := pl.Filter(context.Background(), cs, pod, nodes[1]); st.Code() != framework.Unschedulable {
		t.Fatalf("n2 before removal: %v", st)
	}
	clone := cs.Clone()
	pi := n1.Pods[0]
	if st := pl.RemovePod(context.Background(), clone, pod, pi, n1); !st.IsSuccess() {
		t.Fatal(st)
	}
	for _, n := range nodes {
		if st := pl.Filter(context.Background(), clone, pod, n); !st.IsSuccess() {
			t.Errorf("%s after removal: %v", n.Node().Name, st)
		}
	}
	if st := pl.Filter(context.Background(), cs, pod, nodes[1]); st.Code() != framework.Unschedulable {
		t.Errorf("original state changed by the clone's RemovePod: %v", st)
	}
	if st := pl.AddPod(context.Background(), clone, pod, pi, n1); !st.IsSuccess() {
		t.Fatal(st)
	}
	// The incoming pod's own anti-affinity reports first.
	if st := pl.Filter(context.Background(), clone, pod, nodes[1]); !st.Equal(framework.NewStatus(framework.Unschedulable, ErrReasonAntiAffinityRulesNotMatch)) {
		t.Errorf("after adding back: %v", st)
	}
}

func wterm(w int32, key, sel string, vals ...string) v1.WeightedPodAffinityTerm {
	return v1.WeightedPodAffinityTerm{Weight: w, PodAffinityTerm: term(key, sel, vals...)}
}

func TestScore(t *testing.T) {
	db := map[string]string{"app": "db"}
	tests := []struct {
		name  string
		pod   *v1.Pod
		nodes []*framework.NodeInfo
		args  *configv1.InterPodAffinityArgs
		// raw: Score's values; want: after NormalizeScore.
		raw, want []int64
		skip      bool
	}{
		{
			name: "preferred affinity over zone",
			pod:  mkPod("p", "", nil, preferred([]v1.WeightedPodAffinityTerm{wterm(5, zone, "app", "db")}, nil)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("db", "", db, nil)),
				ni(mkNode("n2", zoneA)),
				ni(mkNode("n3", zoneB)),
			},
			raw: []int64{5, 5, 0}, want: []int64{100, 100, 0},
		},
		{
			name: "preferred affinity and anti-affinity",
			pod: mkPod("p", "", nil, &v1.Affinity{
				PodAffinity:     &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{wterm(5, zone, "app", "db")}},
				PodAntiAffinity: &v1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{wterm(3, v1.LabelHostname, "app", "web")}}}),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("db", "", db, nil), mkPod("w", "", map[string]string{"app": "web"}, nil)),
				ni(mkNode("n2", zoneA)),
				ni(mkNode("n3", zoneB), mkPod("w2", "", map[string]string{"app": "web"}, nil)),
			},
			// n1: 5-3, n2: 5, n3: -3; normalised 100*(s+3)/8, truncated.
			raw: []int64{2, 5, -3}, want: []int64{62, 100, 0},
		},
		{
			name: "existing pod's required affinity counts hardPodAffinityWeight",
			pod:  mkPod("p", "", map[string]string{"app": "x"}, nil),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", nil), mkPod("e", "", nil, required([]v1.PodAffinityTerm{term(v1.LabelHostname, "app", "x")}, nil))),
				ni(mkNode("n2", nil)),
			},
			raw: []int64{1, 0}, want: []int64{100, 0},
		},
		{
			name: "hardPodAffinityWeight from args",
			pod:  mkPod("p", "", map[string]string{"app": "x"}, nil),
			args: &configv1.InterPodAffinityArgs{HardPodAffinityWeight: ptr(int32(7))},
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", nil), mkPod("e", "", nil, required([]v1.PodAffinityTerm{term(v1.LabelHostname, "app", "x")}, nil))),
				ni(mkNode("n2", nil)),
			},
			raw: []int64{7, 0}, want: []int64{100, 0},
		},
		{
			name: "existing pod's preferred anti-affinity pushes away",
			pod:  mkPod("p", "", map[string]string{"app": "x"}, nil),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", zoneA), mkPod("e", "", nil, preferred(nil, []v1.WeightedPodAffinityTerm{wterm(4, zone, "app", "x")}))),
				ni(mkNode("n2", zoneA)),
				ni(mkNode("n3", zoneB)),
			},
			raw: []int64{-4, -4, 0}, want: []int64{0, 0, 100},
		},
		{
			name: "ignorePreferredTermsOfExistingPods and no own terms: Skip",
			pod:  mkPod("p", "", map[string]string{"app": "x"}, nil),
			args: &configv1.InterPodAffinityArgs{IgnorePreferredTermsOfExistingPods: true},
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", nil), mkPod("e", "", nil, required([]v1.PodAffinityTerm{term(v1.LabelHostname, "app", "x")}, nil))),
			},
			skip: true,
		},
		{
			name:  "nothing to score: Skip",
			pod:   mkPod("p", "", nil, nil),
			nodes: []*framework.NodeInfo{ni(mkNode("n1", nil), mkPod("e", "", nil, nil))},
			skip:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := newPlugin(t, newFakeHandle(tc.nodes), tc.args)
			cs := framework.NewCycleState()
			st := pl.PreScore(context.Background(), cs, tc.pod, tc.nodes)
			if tc.skip {
				if !st.IsSkip() {
					t.Fatalf("PreScore: %v, want Skip", st)
				}
				return
			}
			if !st.IsSuccess() {
				t.Fatalf("PreScore: %v", st)
			}
			var scores framework.NodeScoreList
			for i, n := range tc.nodes {
				s, st := pl.Score(context.Background(), cs, tc.pod, n)
				if !st.IsSuccess() {
					t.Fatal(st)
				}
				if s != tc.raw[i] {
					t.Errorf("%s raw score %d, want %d", n.Node().Name, s, tc.raw[i])
				}
				scores = append(scores, framework.NodeScore{Name: n.Node().Name, Score: s})
			}
			if st := pl.NormalizeScore(context.Background(), cs, tc.pod, scores); !st.IsSuccess() {
				t.Fatal(st)
			}
			for i := range scores {
				if scores[i].Score != tc.want[i] {
					t.Errorf("%s normalised %d, want %d", scores[i].Name, scores[i].Score, tc.want[i])
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestArgs(t *testing.T) {
	h := newFakeHandle(nil)
	if _, err := New(context.Background(), &configv1.InterPodAffinityArgs{HardPodAffinityWeight: ptr(int32(101))}, h); err == nil {
		t.Error("hardPodAffinityWeight 101 accepted")
	}
	if _, err := New(context.Background(), &configv1.NodeAffinityArgs{}, h); err == nil {
		t.Error("wrong args type accepted")
	}
	if pl := newPlugin(t, h, nil); pl.hardPodAffinityWeight != 1 {
		t.Errorf("default hardPodAffinityWeight %d", pl.hardPodAffinityWeight)
	}
}

func TestQueueingHints(t *testing.T) {
	pl := newPlugin(t, newFakeHandle(nil), nil)
	pod := mkPod("p", "", nil, required([]v1.PodAffinityTerm{term(zone, "app", "db")}, []v1.PodAffinityTerm{term(v1.LabelHostname, "app", "web")}))
	assigned := func(l map[string]string) *v1.Pod { return on(mkPod("x", "", l, nil), "n1") }
	cases := []struct {
		name     string
		old, new any
		node     bool
		want     framework.QueueingHint
	}{
		{"added pod matches affinity", nil, assigned(map[string]string{"app": "db"}), false, framework.Queue},
		{"added pod unrelated", nil, assigned(map[string]string{"app": "other"}), false, framework.QueueSkip},
		{"unscheduled pod", nil, mkPod("u", "", map[string]string{"app": "db"}, nil), false, framework.QueueSkip},
		{"deleted pod matched anti-affinity", assigned(map[string]string{"app": "web"}), nil, false, framework.Queue},
		{"relabelled out of anti-affinity", assigned(map[string]string{"app": "web"}), assigned(map[string]string{"app": "x"}), false, framework.Queue},
		{"node gains zone", &v1.Node{}, mkNode("n", zoneA), true, framework.Queue},
		{"node relabelled elsewhere", mkNode("n", map[string]string{"foo": "1"}), mkNode("n", map[string]string{"foo": "2"}), true, framework.QueueSkip},
		{"new node", nil, mkNode("n", nil), true, framework.Queue},
	}
	for _, c := range cases {
		var got framework.QueueingHint
		var err error
		if c.node {
			got, err = pl.isSchedulableAfterNodeChange(framework.Logger(context.Background()), pod, c.old, c.new)
		} else {
			got, err = pl.isSchedulableAfterAssignedPodChange(framework.Logger(context.Background()), pod, c.old, c.new)
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
}

// TestEventsToRegister: the pod's own relabelling (self-affinity) wakes it
// as upstream's TargetPod event does.
func TestEventsToRegister(t *testing.T) {
	pl := newPlugin(t, newFakeHandle(nil), nil)
	evs, err := pl.EventsToRegister(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	happened := []framework.ClusterEvent{
		{Resource: framework.UnscheduledPod, ActionType: framework.UpdatePodLabel},
		{Resource: framework.AssignedPod, ActionType: framework.Delete},
		{Resource: framework.Node, ActionType: framework.UpdateNodeLabel},
	}
	for _, h := range happened {
		found := false
		for _, e := range evs {
			found = found || e.Event.Match(h)
		}
		if !found {
			t.Errorf("%s not registered", h.Label())
		}
	}
	for _, e := range evs {
		if e.Event.Match(framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeTaint}) {
			t.Error("node taint changes registered")
		}
	}
}
