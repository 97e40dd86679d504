package nodelifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t        *testing.T
	api      client.Client
	clock    *testingclock.FakeClock
	recorder *record.FakeRecorder
	c        *Controller
}

func newFixture(t *testing.T, cfg Config, objs ...client.Object) *fixture {
	t.Helper()
	api := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
		WithStatusSubresource(&corev1.Pod{}, &corev1.Node{}).
		WithIndex(&corev1.Pod{}, podNodeIndex, func(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }).
		WithObjects(objs...).Build()
	clk := testingclock.NewFakeClock(start)
	rec := record.NewFakeRecorder(1000)
	return &fixture{t: t, api: api, clock: clk, recorder: rec, c: &Controller{Client: api, Config: cfg, Recorder: rec, Clock: clk}}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.EvictionRate = 10
	return cfg
}

// readyNode is a node that posted Ready at start, with a Lease renewed
// then; labels: key=value pairs.
func readyNode(name string, labels ...string) (*corev1.Node, *coordinationv1.Lease) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, CreationTimestamp: metav1.NewTime(start.Add(-time.Hour))}}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		n.Labels[k] = v
	}
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		s := corev1.ConditionFalse
		if t == corev1.NodeReady {
			s = corev1.ConditionTrue
		}
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: t, Status: s,
			LastHeartbeatTime: metav1.NewTime(start), LastTransitionTime: metav1.NewTime(start.Add(-time.Hour))})
	}
	renew := metav1.NewMicroTime(start)
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), RenewTime: &renew}}
	return n, l
}

func (f *fixture) node(name string) *corev1.Node {
	f.t.Helper()
	n := &corev1.Node{}
	if err := f.api.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) monitor() {
	f.t.Helper()
	if err := f.c.monitor(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// renew renews the node's Lease now.
func (f *fixture) renew(name string) {
	f.t.Helper()
	l := &coordinationv1.Lease{}
	if err := f.api.Get(context.Background(), client.ObjectKey{Namespace: corev1.NamespaceNodeLease, Name: name}, l); err != nil {
		f.t.Fatal(err)
	}
	now := metav1.NewMicroTime(f.clock.Now())
	l.Spec.RenewTime = &now
	if err := f.api.Update(context.Background(), l); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func noExecute(n *corev1.Node) []string {
	var out []string
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t.Key)
		}
	}
	return out
}

func condition(n *corev1.Node, t corev1.NodeConditionType) corev1.NodeCondition {
	if c := nodeCondition(&n.Status, t); c != nil {
		return *c
	}
	return corev1.NodeCondition{}
}

// A node whose Lease is renewed stays Ready; one whose Lease is not gets
// Unknown conditions after the grace period, its pods not Ready, and the
// unreachable NoExecute taint; renewed and Ready again, it loses it.
func TestLeaseExpiry(t *testing.T) {
	a, la := readyNode("a")
	b, lb := readyNode("b")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-p"},
		Spec:   corev1.PodSpec{NodeName: "b"},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	f := newFixture(t, testConfig(), a, la, b, lb, pod)
	f.monitor()
	ev := f.events()
	if len(ev) != 2 || ev[0] != "Normal RegisteredNode Node a event: Registered Node a in Controller" {
		t.Errorf("events %q", ev)
	}
	for _, step := range []time.Duration{20 * time.Second, 20 * time.Second, 20 * time.Second} {
		f.clock.Step(step)
		f.renew("a")
		f.monitor()
	}
	// 60s without a renewal of b's Lease.
	if c := condition(f.node("a"), corev1.NodeReady); c.Status != corev1.ConditionTrue {
		t.Errorf("a: %+v", c)
	}
	nb := f.node("b")
	for _, ty := range unknownConditions {
		c := condition(nb, ty)
		if c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status." || !c.LastTransitionTime.Time.Equal(f.clock.Now().Truncate(time.Second)) {
			t.Errorf("b %s: %+v", ty, c)
		}
	}
	if ev := f.events(); len(ev) != 2 || ev[0] != "Normal NodeNotReady Node b status is now: NodeNotReady" || ev[1] != "Warning NodeNotReady Node is not ready" {
		t.Errorf("events %q", ev)
	}
	p := &corev1.Pod{}
	if err := f.api.Get(context.Background(), client.ObjectKeyFromObject(pod), p); err != nil {
		t.Fatal(err)
	}
	if p.Status.Conditions[0].Status != corev1.ConditionFalse {
		t.Errorf("pod conditions %+v", p.Status.Conditions)
	}
	f.c.taintPass(context.Background())
	nb = f.node("b")
	if got := noExecute(nb); len(got) != 1 || got[0] != corev1.TaintNodeUnreachable || nb.Spec.Taints[0].TimeAdded == nil {
		t.Errorf("b taints %+v", nb.Spec.Taints)
	}

	// b's kubelet back: it posts Ready (with a new heartbeat).
	f.clock.Step(time.Second)
	f.renew("b")
	nb.Status.Conditions = nil
	for _, ty := range unknownConditions {
		s := corev1.ConditionFalse
		if ty == corev1.NodeReady {
			s = corev1.ConditionTrue
		}
		nb.Status.Conditions = append(nb.Status.Conditions, corev1.NodeCondition{Type: ty, Status: s, LastHeartbeatTime: metav1.NewTime(f.clock.Now()), LastTransitionTime: metav1.NewTime(f.clock.Now())})
	}
	if err := f.api.Status().Update(context.Background(), nb); err != nil {
		t.Fatal(err)
	}
	f.monitor()
	if got := noExecute(f.node("b")); len(got) != 0 {
		t.Errorf("b still tainted %v", got)
	}
}

// A node that never posted its status is given the startup grace period,
// then NeverUpdated conditions.
func TestNeverPosted(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new", CreationTimestamp: metav1.NewTime(start)}}
	f := newFixture(t, testConfig(), n)
	f.monitor()
	f.clock.Step(50 * time.Second)
	f.monitor()
	if len(f.node("new").Status.Conditions) != 0 {
		t.Fatalf("conditions set within the startup grace period: %+v", f.node("new").Status.Conditions)
	}
	f.clock.Step(11 * time.Second)
	f.monitor()
	got := f.node("new")
	if len(got.Status.Conditions) != 4 {
		t.Fatalf("conditions %+v", got.Status.Conditions)
	}
	for _, c := range got.Status.Conditions {
		if c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusNeverUpdated" || c.Message != "Kubelet never posted node status." || !c.LastHeartbeatTime.Equal(&n.CreationTimestamp) {
			t.Errorf("%+v", c)
		}
	}
}

// The kubelet says Ready=False: the not-ready NoExecute taint, swapped at
// once for unreachable when the node goes silent.
func TestNotReadyAndSwap(t *testing.T) {
	a, la := readyNode("a")
	b, lb := readyNode("b")
	b.Status.Conditions[0].Status = corev1.ConditionFalse
	f := newFixture(t, testConfig(), a, la, b, lb)
	f.monitor()
	f.c.taintPass(context.Background())
	if got := noExecute(f.node("b")); len(got) != 1 || got[0] != corev1.TaintNodeNotReady {
		t.Fatalf("b NoExecute taints %v", got)
	}
	f.clock.Step(time.Minute)
	f.renew("a")
	f.monitor()
	if got := noExecute(f.node("b")); len(got) != 1 || got[0] != corev1.TaintNodeUnreachable {
		t.Errorf("b NoExecute taints %v after it went silent", got)
	}
}

// NoSchedule taints follow the conditions and spec.unschedulable; others
// stay.
func TestNoScheduleTaints(t *testing.T) {
	n, _ := readyNode("n")
	n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule},
		{Key: "example.com/x", Effect: corev1.TaintEffectNoSchedule}}
	n.Status.Conditions[1].Status = corev1.ConditionTrue // MemoryPressure
	n.Spec.Unschedulable = true
	f := newFixture(t, testConfig(), n)
	if _, err := f.c.reconcileNode(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "n"}}); err != nil {
		t.Fatal(err)
	}
	got := f.node("n")
	var keys []string
	for _, t := range got.Spec.Taints {
		keys = append(keys, t.Key+":"+string(t.Effect))
	}
	if strings.Join(keys, ",") != "example.com/x:NoSchedule,node.kubernetes.io/memory-pressure:NoSchedule,node.kubernetes.io/unschedulable:NoSchedule" {
		t.Errorf("taints %v", keys)
	}
	if got.Labels["beta.kubernetes.io/os"] != "" {
		t.Errorf("labels %v", got.Labels)
	}
}

// A taint already there keeps its timeAdded.
func TestWithTaintsKeepsTimeAdded(t *testing.T) {
	old := metav1.NewTime(start.Add(-time.Hour))
	taints := []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &old}}
	out, changed := withTaints(taints, []corev1.Taint{unreachableTaint}, []corev1.Taint{notReadyTaint}, metav1.NewTime(start))
	if changed || len(out) != 1 || !out[0].TimeAdded.Equal(&old) {
		t.Errorf("%v %+v", changed, out)
	}
	out, changed = withTaints(taints, []corev1.Taint{notReadyTaint}, []corev1.Taint{unreachableTaint}, metav1.NewTime(start))
	if !changed || len(out) != 1 || out[0].Key != corev1.TaintNodeNotReady || !out[0].TimeAdded.Time.Equal(start) {
		t.Errorf("%v %+v", changed, out)
	}
}

func TestZoneState(t *testing.T) {
	c := &Controller{Config: DefaultConfig()}
	cond := func(s corev1.ConditionStatus) *corev1.NodeCondition {
		return &corev1.NodeCondition{Type: corev1.NodeReady, Status: s}
	}
	T, F, U := cond(corev1.ConditionTrue), cond(corev1.ConditionFalse), cond(corev1.ConditionUnknown)
	for _, tc := range []struct {
		conds []*corev1.NodeCondition
		want  zoneState
	}{
		{[]*corev1.NodeCondition{T, T}, stateNormal},
		{[]*corev1.NodeCondition{U, F, nil}, stateFullDisruption},
		{[]*corev1.NodeCondition{T, U, U}, stateNormal}, // two not Ready: never partial
		{[]*corev1.NodeCondition{T, U, U, U}, statePartialDisruption},
		{[]*corev1.NodeCondition{T, T, T, U, U, U}, stateNormal}, // 0.5 < 0.55
	} {
		if _, got := c.zoneState(tc.conds); got != tc.want {
			t.Errorf("%d conditions: %s, want %s", len(tc.conds), got, tc.want)
		}
	}
}

// nodes in zones: name=zone, Ready or not.
func zoneNodes(f *fixture, ready map[string]bool, zones map[string]string) {
	for name, zone := range zones {
		n, l := readyNode(name, corev1.LabelTopologyZone+"="+zone)
		if !ready[name] {
			n.Status.Conditions[0].Status = corev1.ConditionFalse
		}
		for _, o := range []client.Object{n, l} {
			if err := f.api.Create(context.Background(), o); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

// Tainting rates per zone state: normal at --node-eviction-rate, a
// partially disrupted small zone not at all, a large one at the secondary
// rate, a fully disrupted one (others not) at the normal rate; all zones
// fully disrupted: no NoExecute taint anywhere, until a node is Ready.
func TestZoneRates(t *testing.T) {
	cfg := testConfig()
	cfg.LargeClusterSizeThreshold = 4
	f := newFixture(t, cfg)
	zones := map[string]string{"a1": "a", "a2": "a", "b1": "b", "b2": "b", "b3": "b", "b4": "b",
		"c1": "c", "c2": "c", "c3": "c", "c4": "c", "c5": "c", "d1": "d"}
	ready := map[string]bool{"a1": true, "a2": true, "b1": true, "c1": true, "c2": true}
	zoneNodes(f, ready, zones)
	f.monitor()
	f.monitor()
	rate := func(zone string) float32 {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{corev1.LabelTopologyZone: zone}}}
		return f.c.tainter(n).rate()
	}
	for zone, want := range map[string]float32{"a": 10, "b": 0, "c": cfg.SecondaryEvictionRate, "d": 10} {
		if got := rate(zone); got != want {
			t.Errorf("zone %s (%s): rate %g, want %g", zone, f.c.zoneStates[":"+zone], got, want)
		}
	}
	// The fully disrupted zone d gets its taint (a and b's not Ready nodes
	// as their rates allow).
	for range 20 {
		f.clock.Step(time.Second)
		f.c.taintPass(context.Background())
	}
	if got := noExecute(f.node("d1")); len(got) != 1 {
		t.Errorf("d1 NoExecute taints %v", got)
	}
	if got := noExecute(f.node("b2")); len(got) != 0 {
		t.Errorf("b2 (small partially disrupted zone) tainted %v", got)
	}

	// Every node not Ready: taints removed, none added.
	for name := range ready {
		n := f.node(name)
		n.Status.Conditions[0].Status = corev1.ConditionFalse
		n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(f.clock.Now())
		if err := f.api.Status().Update(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	f.monitor()
	for range 20 {
		f.clock.Step(time.Second)
		f.c.taintPass(context.Background())
		f.monitor()
	}
	for name := range zones {
		if got := noExecute(f.node(name)); len(got) != 0 {
			t.Errorf("%s tainted in master disruption mode: %v", name, got)
		}
	}
	// a1 Ready again: the others are tainted (zone a normal).
	n := f.node("a1")
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(f.clock.Now())
	if err := f.api.Status().Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	f.monitor()
	for range 5 {
		f.clock.Step(time.Second)
		f.c.taintPass(context.Background())
	}
	if got := noExecute(f.node("a2")); len(got) != 1 {
		t.Errorf("a2 NoExecute taints %v after a1 came back", got)
	}
}

// The queue takes nodes at its rate (burst 1), and none at rate 0.
func TestTaintQueueRate(t *testing.T) {
	clk := testingclock.NewFakeClock(start)
	q := newTaintQueue(0.1, clk)
	for _, n := range []string{"a", "b", "c"} {
		q.add(n)
	}
	if q.add("a") {
		t.Error("a added twice")
	}
	var done []string
	take := func(name string) (bool, time.Duration) { done = append(done, name); return true, 0 }
	q.try(take)
	if len(done) != 1 {
		t.Fatalf("taken at once: %v", done)
	}
	clk.Step(5 * time.Second)
	q.try(take)
	if len(done) != 1 {
		t.Fatalf("taken after 5s: %v", done)
	}
	clk.Step(5 * time.Second)
	q.try(take)
	if len(done) != 2 {
		t.Fatalf("taken after 10s: %v", done)
	}
	q.setRate(0)
	clk.Step(time.Minute)
	q.try(take)
	if len(done) != 2 {
		t.Fatalf("taken at rate 0: %v", done)
	}
	// Still members once taken: not queued again until removed.
	if q.add("a") || !q.remove("a") || !q.add("a") {
		t.Error("membership")
	}
}

func TestValidate(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) > 0 {
		t.Error(errs)
	}
	cfg := DefaultConfig()
	cfg.MonitorGracePeriod = -time.Second
	cfg.EvictionRate = -1
	cfg.UnhealthyZoneThreshold = 2
	errs := cfg.Validate()
	if len(errs) != 3 {
		t.Errorf("errors %v, want 3", errs)
	}
	err := errors.Join(errs...)
	for _, want := range []string{"--node-monitor-grace-period must be positive, got -1s", "--node-eviction-rate must not be negative", "--unhealthy-zone-threshold must be between 0 and 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// A controller (re)started on a node that is still Unknown keeps its
// unreachable taint and timeAdded (the pods' deadlines count from it), and
// drops one its Ready condition does not call for.
func TestRestartKeepsTaint(t *testing.T) {
	a, la := readyNode("a")
	b, lb := readyNode("b")
	for i := range b.Status.Conditions {
		b.Status.Conditions[i].Status = corev1.ConditionUnknown
	}
	added := metav1.NewTime(start.Add(-time.Minute))
	b.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
	c, lc := readyNode("c")
	c.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
	f := newFixture(t, testConfig(), a, la, b, lb, c, lc)
	f.monitor()
	f.c.taintPass(context.Background())
	got := f.node("b")
	if len(got.Spec.Taints) != 1 || !got.Spec.Taints[0].TimeAdded.Equal(&added) {
		t.Errorf("b taints %+v, want the unreachable one as it was", got.Spec.Taints)
	}
	if got := f.node("c"); len(got.Spec.Taints) != 0 {
		t.Errorf("c (Ready) taints %+v", got.Spec.Taints)
	}
}

// A pod bound to a node not Ready after the pass that saw it turn is
// marked not Ready by the pod reconciler; before the node was looked at it
// comes back later; for a node that does not exist it does not.
func TestPodBoundLater(t *testing.T) {
	b, lb := readyNode("b")
	for i := range b.Status.Conditions {
		b.Status.Conditions[i].Status = corev1.ConditionUnknown
	}
	mk := func(name, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "uid-" + types.UID(name)},
			Spec:   corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	}
	f := newFixture(t, testConfig(), b, lb, mk("p", "b"), mk("orphan", "none"))
	reconcile := func(name string) ctrl.Result {
		res, err := f.c.reconcilePod(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := reconcile("p"); res.RequeueAfter != f.c.Config.MonitorPeriod {
		t.Errorf("before the first pass: %+v", res)
	}
	if res := reconcile("orphan"); res.RequeueAfter != 0 {
		t.Errorf("orphan: %+v", res)
	}
	f.monitor()
	f.events()
	reconcile("p")
	p := &corev1.Pod{}
	if err := f.api.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "p"}, p); err != nil {
		t.Fatal(err)
	}
	if p.Status.Conditions[0].Status != corev1.ConditionFalse {
		t.Errorf("pod conditions %+v", p.Status.Conditions)
	}
	if ev := f.events(); len(ev) != 1 || ev[0] != "Warning NodeNotReady Node is not ready" {
		t.Errorf("events %q", ev)
	}
}
