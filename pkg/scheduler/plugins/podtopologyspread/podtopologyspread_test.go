package podtopologyspread

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

const zone = v1.LabelTopologyZone

func mkNode(name, z string) *v1.Node {
	l := map[string]string{v1.LabelHostname: name}
	if z != "" {
		l[zone] = z
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

var podN int

func mkPod(lbls map[string]string) *v1.Pod {
	podN++
	name := fmt.Sprintf("p%d", podN)
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name), Labels: lbls}}
}

func foo() *v1.Pod { return mkPod(map[string]string{"foo": ""}) }

func ni(node *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
	n := framework.NewNodeInfo()
	n.SetNode(node)
	for _, p := range pods {
		p.Spec.NodeName = node.Name
		n.AddPod(p)
	}
	return n
}

func fooExists() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "foo", Operator: metav1.LabelSelectorOpExists}}}
}

func spread(key string, skew int32, when v1.UnsatisfiableConstraintAction) v1.TopologySpreadConstraint {
	return v1.TopologySpreadConstraint{TopologyKey: key, MaxSkew: skew, WhenUnsatisfiable: when, LabelSelector: fooExists()}
}

func withSpread(p *v1.Pod, cs ...v1.TopologySpreadConstraint) *v1.Pod {
	p.Spec.TopologySpreadConstraints = cs
	return p
}

func newPlugin(t *testing.T, h *testhandle.Handle, args *configv1.PodTopologySpreadArgs) *PodTopologySpread {
	t.Helper()
	var a runtime.Object
	if args != nil {
		a = args
	}
	p, err := New(context.Background(), a, h)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*PodTopologySpread)
}

func ptr[T any](v T) *T { return &v }

func TestFilter(t *testing.T) {
	unsched := framework.NewStatus(framework.Unschedulable, ErrReasonConstraintsNotMatch)
	missing := framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch)
	zones12 := func() []*framework.NodeInfo {
		return []*framework.NodeInfo{
			ni(mkNode("n-a", "zone1"), foo(), foo()),
			ni(mkNode("n-b", "zone1")),
			ni(mkNode("n-x", "zone2"), foo()),
			ni(mkNode("n-y", "zone2")),
		}
	}
	notZone3 := &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
		NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{Key: zone, Operator: v1.NodeSelectorOpIn, Values: []string{"zone1", "zone2"}}}}}}}}
	threeZones := func(taint bool) []*framework.NodeInfo {
		n3 := mkNode("n3", "zone3")
		if taint {
			n3.Spec.Taints = []v1.Taint{{Key: "k", Effect: v1.TaintEffectNoSchedule}}
		}
		return []*framework.NodeInfo{ni(mkNode("n1", "zone1"), foo()), ni(mkNode("n2", "zone2"), foo()), ni(n3)}
	}
	tests := []struct {
		name  string
		pod   *v1.Pod
		nodes []*framework.NodeInfo
		want  map[string]*framework.Status
	}{
		{
			name:  "zone maxSkew 1: the fuller zone is out",
			pod:   withSpread(foo(), spread(zone, 1, v1.DoNotSchedule)),
			nodes: zones12(),
			want:  map[string]*framework.Status{"n-a": unsched, "n-b": unsched},
		},
		{
			name:  "maxSkew 2 admits both",
			pod:   withSpread(foo(), spread(zone, 2, v1.DoNotSchedule)),
			nodes: zones12(),
			want:  map[string]*framework.Status{},
		},
		{
			name:  "incoming pod not matching its own selector adds nothing",
			pod:   withSpread(mkPod(nil), spread(zone, 1, v1.DoNotSchedule)),
			nodes: zones12(),
			// zone1: 2+0-1 = 1.
			want: map[string]*framework.Status{},
		},
		{
			name:  "node without the key",
			pod:   withSpread(foo(), spread(zone, 1, v1.DoNotSchedule)),
			nodes: append(zones12(), ni(mkNode("n-none", ""))),
			want:  map[string]*framework.Status{"n-a": unsched, "n-b": unsched, "n-none": missing},
		},
		{
			name: "minDomains 3 with 2 domains: the minimum counts as 0",
			pod: withSpread(foo(), func() v1.TopologySpreadConstraint {
				c := spread(zone, 1, v1.DoNotSchedule)
				c.MinDomains = ptr(int32(3))
				return c
			}()),
			nodes: zones12(),
			want:  map[string]*framework.Status{"n-a": unsched, "n-b": unsched, "n-x": unsched, "n-y": unsched},
		},
		{
			name: "nodeAffinityPolicy Honor (default) leaves out zones the pod cannot go to",
			pod: func() *v1.Pod {
				p := withSpread(foo(), spread(zone, 1, v1.DoNotSchedule))
				p.Spec.Affinity = notZone3
				return p
			}(),
			nodes: threeZones(false),
			want:  map[string]*framework.Status{},
		},
		{
			name: "nodeAffinityPolicy Ignore counts them",
			pod: func() *v1.Pod {
				c := spread(zone, 1, v1.DoNotSchedule)
				c.NodeAffinityPolicy = ptr(v1.NodeInclusionPolicyIgnore)
				p := withSpread(foo(), c)
				p.Spec.Affinity = notZone3
				return p
			}(),
			nodes: threeZones(false),
			want:  map[string]*framework.Status{"n1": unsched, "n2": unsched},
		},
		{
			name:  "nodeTaintsPolicy Ignore (default) counts a tainted node's zone",
			pod:   withSpread(foo(), spread(zone, 1, v1.DoNotSchedule)),
			nodes: threeZones(true),
			want:  map[string]*framework.Status{"n1": unsched, "n2": unsched},
		},
		{
			name: "nodeTaintsPolicy Honor leaves out an untolerated taint",
			pod: func() *v1.Pod {
				c := spread(zone, 1, v1.DoNotSchedule)
				c.NodeTaintsPolicy = ptr(v1.NodeInclusionPolicyHonor)
				return withSpread(foo(), c)
			}(),
			nodes: threeZones(true),
			want:  map[string]*framework.Status{},
		},
		{
			name: "matchLabelKeys: only pods of the same revision count",
			pod: func() *v1.Pod {
				c := spread(zone, 1, v1.DoNotSchedule)
				c.MatchLabelKeys = []string{"rev"}
				return withSpread(mkPod(map[string]string{"foo": "", "rev": "2"}), c)
			}(),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "zone1"), mkPod(map[string]string{"foo": "", "rev": "1"}), mkPod(map[string]string{"foo": "", "rev": "1"})),
				ni(mkNode("n2", "zone2"), mkPod(map[string]string{"foo": "", "rev": "2"})),
			},
			// rev 2: zone1 0, zone2 1 → zone2: 1+1-0 = 2 > 1.
			want: map[string]*framework.Status{"n2": unsched},
		},
		{
			name: "pods in another namespace or terminating do not count",
			pod:  withSpread(foo(), spread(zone, 1, v1.DoNotSchedule)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "zone1"), func() *v1.Pod { p := foo(); p.Namespace = "other"; return p }(),
					func() *v1.Pod { p := foo(); p.DeletionTimestamp = &metav1.Time{}; return p }()),
				ni(mkNode("n2", "zone2")),
			},
			want: map[string]*framework.Status{},
		},
		{
			name: "two constraints: zone and hostname",
			pod:  withSpread(foo(), spread(zone, 1, v1.DoNotSchedule), spread(v1.LabelHostname, 1, v1.DoNotSchedule)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "zone1"), foo()),
				ni(mkNode("n2", "zone1")),
				ni(mkNode("n3", "zone2"), foo()),
				ni(mkNode("n4", "zone2"), foo()),
			},
			// zone1 1, zone2 2: zone2 is out (2+1-1); n1 is out by hostname
			// (1+1-0).
			want: map[string]*framework.Status{"n1": unsched, "n3": unsched, "n4": unsched},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := newPlugin(t, newFakeHandle(tc.nodes), nil)
			cs := framework.NewCycleState()
			if _, st := pl.PreFilter(context.Background(), cs, tc.pod, tc.nodes); !st.IsSuccess() {
				t.Fatalf("PreFilter: %v", st)
			}
			for _, n := range tc.nodes {
				if got, want := pl.Filter(context.Background(), cs, tc.pod, n), tc.want[n.Node().Name]; !got.Equal(want) {
					t.Errorf("%s: got %v, want %v", n.Node().Name, got, want)
				}
			}
		})
	}
}

func TestPreFilterSkip(t *testing.T) {
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "zone1"), foo())}
	pl := newPlugin(t, newFakeHandle(nodes), nil)
	// Only ScheduleAnyway constraints, and no Service: nothing to filter.
	p := withSpread(foo(), spread(zone, 1, v1.ScheduleAnyway))
	if _, st := pl.PreFilter(context.Background(), framework.NewCycleState(), p, nodes); !st.IsSkip() {
		t.Errorf("got %v, want Skip", st)
	}
}

func TestPreFilterExtensions(t *testing.T) {
	victim := foo()
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "zone1"), foo(), victim), ni(mkNode("n2", "zone2"), foo())}
	pod := withSpread(foo(), spread(zone, 1, v1.DoNotSchedule))
	pl := newPlugin(t, newFakeHandle(nodes), nil)
	cs := framework.NewCycleState()
	if _, st := pl.PreFilter(context.Background(), cs, pod, nodes); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := pl.Filter(context.Background(), cs, pod, nodes[0]); st.Code() != framework.Unschedulable {
		t.Fatalf("n1 before: %v", st)
	}
	clone := cs.Clone()
	pi := framework.NewPodInfo(victim)
	if st := pl.RemovePod(context.Background(), clone, pod, pi, nodes[0]); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := pl.Filter(context.Background(), clone, pod, nodes[0]); !st.IsSuccess() {
		t.Errorf("n1 after removing a pod: %v", st)
	}
	if st := pl.Filter(context.Background(), cs, pod, nodes[0]); st.Code() != framework.Unschedulable {
		t.Errorf("original state changed through the clone: %v", st)
	}
	// Adding two pods to zone2 makes zone1 the smaller one again.
	for i := 0; i < 2; i++ {
		if st := pl.AddPod(context.Background(), clone, pod, framework.NewPodInfo(foo()), nodes[1]); !st.IsSuccess() {
			t.Fatal(st)
		}
	}
	if st := pl.Filter(context.Background(), clone, pod, nodes[1]); st.Code() != framework.Unschedulable {
		t.Errorf("n2 after adding: %v", st)
	}
	if st := pl.Filter(context.Background(), clone, pod, nodes[0]); !st.IsSuccess() {
		t.Errorf("n1 after adding to n2: %v", st)
	}
	// A pod of another namespace changes nothing.
	other := foo()
	other.Namespace = "other"
	for i := 0; i < 3; i++ {
		pl.AddPod(context.Background(), clone, pod, framework.NewPodInfo(other), nodes[0])
	}
	if st := pl.Filter(context.Background(), clone, pod, nodes[0]); !st.IsSuccess() {
		t.Errorf("n1 after adding another namespace's pods: %v", st)
	}
}

type scoreCase struct {
	name  string
	pod   *v1.Pod
	nodes []*framework.NodeInfo
	objs  []runtime.Object
	args  *configv1.PodTopologySpreadArgs
	raw   []int64
	want  []int64
	skip  bool
}

func runScore(t *testing.T, tc scoreCase) {
	pl := newPlugin(t, newFakeHandle(tc.nodes, tc.objs...), tc.args)
	cs := framework.NewCycleState()
	st := pl.PreScore(context.Background(), cs, tc.pod, tc.nodes)
	if tc.skip {
		if !st.IsSkip() {
			t.Fatalf("PreScore %v, want Skip", st)
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
			t.Errorf("%s raw %d, want %d", n.Node().Name, s, tc.raw[i])
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
}

func webService() *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: v1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
}

func web() *v1.Pod { return mkPod(map[string]string{"app": "web"}) }

// The expected scores follow upstream's formulas: per constraint
// count*log(domains+2) + (maxSkew-1), rounded; normalised
// 100*(max+min-s)/max.
func TestScore(t *testing.T) {
	for _, tc := range []scoreCase{
		{
			name: "zone maxSkew 1",
			pod:  withSpread(foo(), spread(zone, 1, v1.ScheduleAnyway)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n-a", "zone1"), foo(), foo()),
				ni(mkNode("n-b", "zone1")),
				ni(mkNode("n-x", "zone2"), foo()),
			},
			// zone1 2*ln4 = 2.77 → 3, zone2 ln4 = 1.39 → 1.
			raw: []int64{3, 3, 1}, want: []int64{33, 33, 100},
		},
		{
			name: "hostname maxSkew 2",
			pod:  withSpread(foo(), spread(v1.LabelHostname, 2, v1.ScheduleAnyway)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "z"), foo(), foo(), foo()),
				ni(mkNode("n2", "z"), foo()),
				ni(mkNode("n3", "z")),
			},
			// 3*ln5+1 = 5.83, ln5+1 = 2.61, 1.
			raw: []int64{6, 3, 1}, want: []int64{16, 66, 100},
		},
		{
			name: "a node without the key is ignored and scores 0",
			pod:  withSpread(foo(), spread(zone, 1, v1.ScheduleAnyway)),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "zone1"), foo()),
				ni(mkNode("n2", "zone1")),
				ni(mkNode("n3", "")),
			},
			raw: []int64{1, 1, 0}, want: []int64{100, 100, 0},
		},
		{
			name: "system defaults spread a Service's pods over hostname and zone",
			pod:  web(),
			objs: []runtime.Object{webService()},
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "z1"), web(), web()),
				ni(mkNode("n2", "z1")),
				ni(mkNode("n3", ""), web()),
			},
			// n1: 2*ln5+2 + 2*ln4+4 = 11.99; n2: 2 + 6.77; n3: ln5+2
			// (no zone label).
			raw: []int64{12, 9, 4}, want: []int64{33, 58, 100},
		},
		{
			name:  "system defaults: a pod no Service or controller selects is not spread",
			pod:   web(),
			nodes: []*framework.NodeInfo{ni(mkNode("n1", "z1"), web())},
			skip:  true,
		},
		{
			name: "pod constraints replace the defaults",
			pod:  withSpread(web(), v1.TopologySpreadConstraint{TopologyKey: zone, MaxSkew: 1, WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: fooExists()}),
			objs: []runtime.Object{webService()},
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "z1"), web()),
			},
			skip: true,
		},
		{
			name: "List defaulting: configured constraints need every key",
			pod:  web(),
			objs: []runtime.Object{webService()},
			args: &configv1.PodTopologySpreadArgs{DefaultingType: configv1.ListDefaulting, DefaultConstraints: []v1.TopologySpreadConstraint{
				{TopologyKey: zone, MaxSkew: 2, WhenUnsatisfiable: v1.ScheduleAnyway}}},
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "z1"), web()),
				ni(mkNode("n2", "z2")),
				ni(mkNode("n3", "")),
			},
			// ln4+1 = 2.39 → 2; 1; n3 ignored.
			raw: []int64{2, 1, 0}, want: []int64{50, 100, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { runScore(t, tc) })
	}
}

func TestDefaultSelector(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "front"}}}}
	rc := &v1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "default"},
		Spec: v1.ReplicationControllerSpec{Selector: map[string]string{"rc": "yes"}}}
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "ss", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ss": "yes"}}}}
	otherNS := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "other"}, Spec: v1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	pl := newPlugin(t, newFakeHandle(nil, webService(), otherNS, rs, rc, ss), nil)
	owned := func(kind, apiVersion, name string) *v1.Pod {
		p := mkPod(map[string]string{"app": "web", "tier": "front", "rc": "yes", "ss": "yes"})
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, APIVersion: apiVersion, Name: name, Controller: ptr(true)}}
		return p
	}
	for _, c := range []struct {
		pod  *v1.Pod
		want string
	}{
		{web(), "app=web"},
		{mkPod(map[string]string{"app": "db"}), ""},
		{owned("ReplicaSet", "apps/v1", "rs"), "app=web,tier=front"},
		{owned("ReplicationController", "v1", "rc"), "app=web,rc=yes"},
		{owned("StatefulSet", "apps/v1", "ss"), "app=web,ss=yes"},
		{owned("ReplicaSet", "apps/v1", "missing"), "app=web"},
		{owned("Deployment", "apps/v1", "rs"), "app=web"},
	} {
		got := pl.defaultSelector(c.pod)
		want, _ := labels.Parse(c.want)
		if got.String() != want.String() {
			t.Errorf("%v owned by %v: %q, want %q", c.pod.Labels, c.pod.OwnerReferences, got, c.want)
		}
	}
}

func TestArgs(t *testing.T) {
	h := newFakeHandle(nil)
	bad := []*configv1.PodTopologySpreadArgs{
		{DefaultingType: configv1.SystemDefaulting, DefaultConstraints: []v1.TopologySpreadConstraint{{TopologyKey: zone, MaxSkew: 1, WhenUnsatisfiable: v1.ScheduleAnyway}}},
		{DefaultingType: "Bogus"},
		{DefaultingType: configv1.ListDefaulting, DefaultConstraints: []v1.TopologySpreadConstraint{{TopologyKey: zone, MaxSkew: 0, WhenUnsatisfiable: v1.ScheduleAnyway}}},
		{DefaultingType: configv1.ListDefaulting, DefaultConstraints: []v1.TopologySpreadConstraint{{TopologyKey: zone, MaxSkew: 1, WhenUnsatisfiable: v1.ScheduleAnyway, LabelSelector: fooExists()}}},
	}
	for _, a := range bad {
		if _, err := New(context.Background(), a, h); err == nil {
			t.Errorf("accepted %+v", a)
		}
	}
	if pl := newPlugin(t, h, nil); !pl.systemDefaulted || len(pl.defaultConstraints) != 2 {
		t.Errorf("nil args: %+v", pl)
	}
	if pl := newPlugin(t, h, &configv1.PodTopologySpreadArgs{DefaultingType: configv1.ListDefaulting}); pl.systemDefaulted || len(pl.defaultConstraints) != 0 {
		t.Errorf("List without constraints: %+v", pl)
	}
}

func TestQueueingHints(t *testing.T) {
	pl := newPlugin(t, newFakeHandle(nil), nil)
	pod := withSpread(foo(), spread(zone, 1, v1.DoNotSchedule))
	assigned := func(l map[string]string) *v1.Pod { p := mkPod(l); p.Spec.NodeName = "n1"; return p }
	logger := framework.Logger(context.Background())
	for _, c := range []struct {
		name     string
		old, new any
		node     bool
		want     framework.QueueingHint
	}{
		{"matching pod deleted", assigned(map[string]string{"foo": ""}), nil, false, framework.Queue},
		{"unrelated pod deleted", assigned(map[string]string{"bar": ""}), nil, false, framework.QueueSkip},
		{"pod relabelled out", assigned(map[string]string{"foo": ""}), assigned(map[string]string{"bar": ""}), false, framework.Queue},
		{"new node with zone", nil, mkNode("n", "z"), true, framework.Queue},
		{"new node without zone", nil, mkNode("n", ""), true, framework.QueueSkip},
		{"node moved zone", mkNode("n", "a"), mkNode("n", "b"), true, framework.Queue},
		{"node deleted", mkNode("n", "a"), nil, true, framework.Queue},
	} {
		var got framework.QueueingHint
		var err error
		if c.node {
			got, err = pl.isSchedulableAfterNodeChange(logger, pod, c.old, c.new)
		} else {
			got, err = pl.isSchedulableAfterAssignedPodChange(logger, pod, c.old, c.new)
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
}

func TestTargetPodHint(t *testing.T) {
	pl := newPlugin(t, newFakeHandle(nil), nil)
	logger := framework.Logger(context.Background())
	honor := spread(zone, 1, v1.DoNotSchedule)
	honor.NodeTaintsPolicy = ptr(v1.NodeInclusionPolicyHonor)
	withTol := func(p *v1.Pod) *v1.Pod {
		q := p.DeepCopy()
		q.Spec.Tolerations = []v1.Toleration{{Key: "k", Operator: v1.TolerationOpExists}}
		return q
	}
	relabel := func(p *v1.Pod, l map[string]string) *v1.Pod { q := p.DeepCopy(); q.Labels = l; return q }
	ignoring := withSpread(foo(), spread(zone, 1, v1.DoNotSchedule))
	honoring := withSpread(foo(), honor)
	for _, c := range []struct {
		name     string
		pod      *v1.Pod
		old, new *v1.Pod
		want     framework.QueueingHint
	}{
		{"toleration added, taints honoured", honoring, honoring, withTol(honoring), framework.Queue},
		{"toleration added, taints ignored", ignoring, ignoring, withTol(ignoring), framework.QueueSkip},
		{"own label now outside the selector", ignoring, ignoring, relabel(ignoring, map[string]string{"bar": ""}), framework.Queue},
		{"unrelated label change", ignoring, ignoring, relabel(ignoring, map[string]string{"foo": "", "x": "y"}), framework.QueueSkip},
	} {
		if got, err := pl.isSchedulableAfterTargetPodChange(logger, c.pod, c.old, c.new); err != nil || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
}
