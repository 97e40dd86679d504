package runtime

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// recorder logs plugin calls across plugins.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

// testPlugin implements every extension point; behaviour per name.
type testPlugin struct {
	name          string
	rec           *recorder
	preFilterSkip bool
	preScoreSkip  bool
	preBindSkip   bool
	rejectNode    string
	// score: node name's last digit times scale; normalize: multiply.
	scale, normalizeBy int64
}

func (p *testPlugin) Name() string { return p.name }
func (p *testPlugin) Less(a, b *framework.QueuedPodInfo) bool {
	return a.Timestamp.Before(b.Timestamp)
}
func (p *testPlugin) PreFilter(_ context.Context, _ *framework.CycleState, _ *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	p.rec.add("PreFilter/" + p.name)
	if p.preFilterSkip {
		return nil, framework.NewStatus(framework.Skip)
	}
	return nil, nil
}
func (p *testPlugin) PreFilterExtensions() framework.PreFilterExtensions { return nil }
func (p *testPlugin) Filter(_ context.Context, _ *framework.CycleState, _ *v1.Pod, n *framework.NodeInfo) *framework.Status {
	p.rec.add("Filter/" + p.name)
	if n.Node().Name == p.rejectNode {
		return framework.NewStatus(framework.Unschedulable, "rejected by "+p.name)
	}
	return nil
}
func (p *testPlugin) PreScore(_ context.Context, _ *framework.CycleState, _ *v1.Pod, _ []*framework.NodeInfo) *framework.Status {
	p.rec.add("PreScore/" + p.name)
	if p.preScoreSkip {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}
func (p *testPlugin) Score(_ context.Context, _ *framework.CycleState, _ *v1.Pod, n *framework.NodeInfo) (int64, *framework.Status) {
	p.rec.add("Score/" + p.name)
	name := n.Node().Name
	return int64(name[len(name)-1]-'0') * p.scale, nil
}
func (p *testPlugin) ScoreExtensions() framework.ScoreExtensions {
	if p.normalizeBy == 0 {
		return nil
	}
	return p
}
func (p *testPlugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *v1.Pod, scores framework.NodeScoreList) *framework.Status {
	for i := range scores {
		scores[i].Score *= p.normalizeBy
	}
	return nil
}
func (p *testPlugin) Reserve(_ context.Context, _ *framework.CycleState, _ *v1.Pod, _ string) *framework.Status {
	p.rec.add("Reserve/" + p.name)
	return nil
}
func (p *testPlugin) Unreserve(_ context.Context, _ *framework.CycleState, _ *v1.Pod, _ string) {
	p.rec.add("Unreserve/" + p.name)
}
func (p *testPlugin) PreBindPreFlight(_ context.Context, _ *framework.CycleState, _ *v1.Pod, _ string) *framework.Status {
	p.rec.add("PreBindPreFlight/" + p.name)
	if p.preBindSkip {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}
func (p *testPlugin) PreBind(_ context.Context, _ *framework.CycleState, _ *v1.Pod, _ string) *framework.Status {
	p.rec.add("PreBind/" + p.name)
	return nil
}
func (p *testPlugin) Bind(_ context.Context, _ *framework.CycleState, _ *v1.Pod, _ string) *framework.Status {
	p.rec.add("Bind/" + p.name)
	return nil
}

func registry(plugins ...*testPlugin) framework.Registry {
	r := framework.Registry{}
	for _, p := range plugins {
		r[p.name] = func(context.Context, runtime.Object, framework.Handle) (framework.Plugin, error) { return p, nil }
	}
	return r
}

func plugin(name string, weight int32) configv1.Plugin {
	p := configv1.Plugin{Name: name}
	if weight != 0 {
		p.Weight = ptr.To(weight)
	}
	return p
}

// profile: every test plugin is also a QueueSort and Bind plugin, so
// those points take only the first MultiPoint plugin unless set.
func profile(plugins configv1.Plugins) *configv1.KubeSchedulerProfile {
	first := plugins.MultiPoint.Enabled[0].Name
	only := configv1.PluginSet{Disabled: []configv1.Plugin{{Name: "*"}}, Enabled: []configv1.Plugin{{Name: first}}}
	if len(plugins.QueueSort.Enabled) == 0 {
		plugins.QueueSort = only
	}
	if len(plugins.Bind.Enabled) == 0 {
		plugins.Bind = only
	}
	return &configv1.KubeSchedulerProfile{SchedulerName: ptr.To("test"), Plugins: &plugins}
}

func nodes(names ...string) []*framework.NodeInfo {
	var out []*framework.NodeInfo
	for _, n := range names {
		ni := framework.NewNodeInfo()
		ni.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
		out = append(out, ni)
	}
	return out
}

// TestExtensionPointOrder: explicitly re-configured MultiPoint plugins
// first, then MultiPoint's, then the point's own; disabled ones left out.
func TestExtensionPointOrder(t *testing.T) {
	rec := &recorder{}
	a, b, c, d := &testPlugin{name: "A", rec: rec}, &testPlugin{name: "B", rec: rec}, &testPlugin{name: "C", rec: rec}, &testPlugin{name: "D", rec: rec}
	fw, err := New(context.Background(), registry(a, b, c, d), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("B", 0), plugin("D", 0)}},
		Filter: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("C", 0), plugin("B", 0)},
			Disabled: []configv1.Plugin{plugin("D", 0)}},
		QueueSort: configv1.PluginSet{Disabled: []configv1.Plugin{plugin("*", 0)}, Enabled: []configv1.Plugin{plugin("A", 0)}},
		Bind:      configv1.PluginSet{Disabled: []configv1.Plugin{plugin("*", 0)}, Enabled: []configv1.Plugin{plugin("D", 0)}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := fw.ListPlugins()
	for point, want := range map[string][]string{
		"Filter":    {"B", "A", "C"},
		"PreFilter": {"A", "B", "D"},
		"QueueSort": {"A"},
		"Bind":      {"D"},
	} {
		if !reflect.DeepEqual(got[point], want) {
			t.Errorf("%s: %v, want %v", point, got[point], want)
		}
	}
	st := fw.RunFilterPlugins(context.Background(), framework.NewCycleState(), &v1.Pod{}, nodes("n1")[0])
	if !st.IsSuccess() || strings.Join(rec.calls, ",") != "Filter/B,Filter/A,Filter/C" {
		t.Errorf("Filter ran %v (%v)", rec.calls, st)
	}
}

// TestSkip: a PreFilter Skip skips the plugin's Filter; a PreScore Skip
// its Score.
func TestSkip(t *testing.T) {
	rec := &recorder{}
	a := &testPlugin{name: "A", rec: rec, preFilterSkip: true, preScoreSkip: true, scale: 1}
	b := &testPlugin{name: "B", rec: rec, scale: 1}
	fw, err := New(context.Background(), registry(a, b), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("B", 0)}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, state, pod, ns := context.Background(), framework.NewCycleState(), &v1.Pod{}, nodes("n1")
	if _, st, _ := fw.RunPreFilterPlugins(ctx, state, pod, ns); !st.IsSuccess() {
		t.Fatal(st)
	}
	fw.RunFilterPlugins(ctx, state, pod, ns[0])
	if st := fw.RunPreScorePlugins(ctx, state, pod, ns); !st.IsSuccess() {
		t.Fatal(st)
	}
	scores, st := fw.RunScorePlugins(ctx, state, pod, ns)
	if !st.IsSuccess() {
		t.Fatal(st)
	}
	got := strings.Join(rec.calls, ",")
	if want := "PreFilter/A,PreFilter/B,Filter/B,PreScore/A,PreScore/B,Score/B"; got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
	if len(scores[0].Scores) != 1 || scores[0].Scores[0].Name != "B" {
		t.Errorf("scores %+v", scores)
	}
}

// TestPreBindPreFlight: Skip only when every PreBind plugin has nothing
// to do; the ones that said Skip are left out of PreBind.
func TestPreBindPreFlight(t *testing.T) {
	rec := &recorder{}
	a := &testPlugin{name: "A", rec: rec, preBindSkip: true}
	b := &testPlugin{name: "B", rec: rec}
	fw, err := New(context.Background(), registry(a, b), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("B", 0)}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, state, pod := context.Background(), framework.NewCycleState(), &v1.Pod{}
	if st := fw.RunPreBindPreFlights(ctx, state, pod, "n1"); !st.IsSuccess() {
		t.Errorf("PreBindPreFlights with work: %v, want success", st)
	}
	if st := fw.RunPreBindPlugins(ctx, state, pod, "n1"); !st.IsSuccess() {
		t.Fatal(st)
	}
	if got, want := strings.Join(rec.calls, ","), "PreBindPreFlight/A,PreBindPreFlight/B,PreBind/B"; got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
	b.preBindSkip = true
	if st := fw.RunPreBindPreFlights(ctx, framework.NewCycleState(), pod, "n1"); !st.IsSkip() {
		t.Errorf("PreBindPreFlights without work: %v, want Skip", st)
	}
}

// TestScoreWeightsAndNormalize: normalised scores times weights (Score's
// weight over MultiPoint's; unset is 1); out of range is an error.
func TestScoreWeightsAndNormalize(t *testing.T) {
	rec := &recorder{}
	a := &testPlugin{name: "A", rec: rec, scale: 1, normalizeBy: 10} // n1..n3 → 10..30
	b := &testPlugin{name: "B", rec: rec, scale: 5}                  // 5..15
	c := &testPlugin{name: "C", rec: rec, scale: 1}
	fw, err := New(context.Background(), registry(a, b, c), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 3), plugin("B", 7), plugin("C", 0)}},
		Score:      configv1.PluginSet{Enabled: []configv1.Plugin{plugin("B", 2)}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fw.ScoreWeight("A") != 3 || fw.ScoreWeight("B") != 2 || fw.ScoreWeight("C") != 1 {
		t.Errorf("weights A %d B %d C %d", fw.ScoreWeight("A"), fw.ScoreWeight("B"), fw.ScoreWeight("C"))
	}
	ctx, state, pod := context.Background(), framework.NewCycleState(), &v1.Pod{}
	scores, st := fw.RunScorePlugins(ctx, state, pod, nodes("n1", "n2", "n3"))
	if !st.IsSuccess() {
		t.Fatal(st)
	}
	for i, want := range []int64{1*10*3 + 5*2 + 1, 2*10*3 + 10*2 + 2, 3*10*3 + 15*2 + 3} {
		if scores[i].TotalScore != want {
			t.Errorf("node %d total %d, want %d", i+1, scores[i].TotalScore, want)
		}
	}
	a.normalizeBy = 40 // n3 → 120
	if _, st := fw.RunScorePlugins(ctx, state, pod, nodes("n1", "n3")); st.IsSuccess() || !strings.Contains(st.Message(), `plugin "A" returns an invalid score 120`) {
		t.Errorf("out-of-range score: %v", st)
	}
}

// TestFilterFirstRejection names the plugin.
func TestFilterFirstRejection(t *testing.T) {
	rec := &recorder{}
	a, b := &testPlugin{name: "A", rec: rec, rejectNode: "n1"}, &testPlugin{name: "B", rec: rec, rejectNode: "n1"}
	fw, err := New(context.Background(), registry(a, b), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("B", 0)}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := fw.RunFilterPlugins(context.Background(), framework.NewCycleState(), &v1.Pod{}, nodes("n1")[0])
	if st.Code() != framework.Unschedulable || st.Plugin() != "A" || st.Message() != "rejected by A" {
		t.Errorf("status %v", st)
	}
	if len(rec.calls) != 1 {
		t.Errorf("Filter went on after a rejection: %v", rec.calls)
	}
}

// TestReserveUnreserveOrder: Unreserve in reverse.
func TestReserveUnreserveOrder(t *testing.T) {
	rec := &recorder{}
	a, b := &testPlugin{name: "A", rec: rec}, &testPlugin{name: "B", rec: rec}
	fw, err := New(context.Background(), registry(a, b), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("B", 0)}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, state := context.Background(), framework.NewCycleState()
	fw.RunReservePluginsReserve(ctx, state, &v1.Pod{}, "n")
	fw.RunReservePluginsUnreserve(ctx, state, &v1.Pod{}, "n")
	if got := strings.Join(rec.calls, ","); got != "Reserve/A,Reserve/B,Unreserve/B,Unreserve/A" {
		t.Errorf("calls %s", got)
	}
}

// TestBuildErrors: unknown plugins fail the profile, except upstream
// defaults skiff lacks.
func TestBuildErrors(t *testing.T) {
	rec := &recorder{}
	a := &testPlugin{name: "A", rec: rec}
	_, err := New(context.Background(), registry(a), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("Nope", 0)}},
	}), Options{})
	if err == nil || !strings.Contains(err.Error(), `plugin "Nope" does not exist`) {
		t.Errorf("unknown plugin: %v", err)
	}
	_, err = New(context.Background(), registry(a), profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("DynamicResources", 2)}},
	}), Options{})
	if err != nil {
		t.Errorf("a not-implemented default plugin failed the profile: %v", err)
	}
	r := registry(a)
	r["Broken"] = func(context.Context, runtime.Object, framework.Handle) (framework.Plugin, error) {
		return nil, fmt.Errorf("bad args")
	}
	_, err = New(context.Background(), r, profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("Broken", 0)}},
	}), Options{})
	if err == nil || !strings.Contains(err.Error(), `initializing plugin "Broken": bad args`) {
		t.Errorf("failing factory: %v", err)
	}
}

// TestArgsPassed: a plugin gets its defaulted args, or its configured ones.
func TestArgsPassed(t *testing.T) {
	var got runtime.Object
	r := framework.Registry{
		"A": func(context.Context, runtime.Object, framework.Handle) (framework.Plugin, error) {
			return &testPlugin{name: "A", rec: &recorder{}}, nil
		},
		"InterPodAffinity": func(_ context.Context, args runtime.Object, _ framework.Handle) (framework.Plugin, error) {
			got = args
			return &testPlugin{name: "InterPodAffinity", rec: &recorder{}}, nil
		},
	}
	if _, err := New(context.Background(), r, profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("A", 0), plugin("InterPodAffinity", 0)}},
	}), Options{}); err != nil {
		t.Fatal(err)
	}
	a, ok := got.(*configv1.InterPodAffinityArgs)
	if !ok || *a.HardPodAffinityWeight != 1 {
		t.Errorf("args %#v", got)
	}
}

type fullFilter struct{}

func (fullFilter) Name() string { return "Full" }
func (fullFilter) Filter(_ context.Context, _ *framework.CycleState, _ *v1.Pod, n *framework.NodeInfo) *framework.Status {
	if len(n.Pods) > 0 {
		return framework.NewStatus(framework.Unschedulable, "node is taken")
	}
	return nil
}

type nominated map[string][]*framework.PodInfo

func (n nominated) NominatedPodsForNode(node string) []*framework.PodInfo { return n[node] }

// TestFilterWithNominatedPods: a nominated pod of equal or higher priority
// counts on its node; a lower one does not; the node's own NodeInfo is
// not changed.
func TestFilterWithNominatedPods(t *testing.T) {
	sorter := &testPlugin{name: "Sort", rec: &recorder{}}
	r := registry(sorter)
	r["Full"] = func(context.Context, runtime.Object, framework.Handle) (framework.Plugin, error) {
		return fullFilter{}, nil
	}
	prio := func(name string, p int32) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: k8stypes.UID(name)}, Spec: v1.PodSpec{Priority: &p}}
	}
	noms := nominated{"n1": {framework.NewPodInfo(prio("nominated", 5))}}
	fw, err := New(context.Background(), r, profile(configv1.Plugins{
		MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{plugin("Sort", 0), plugin("Full", 0)}},
	}), Options{Nominator: noms})
	if err != nil {
		t.Fatal(err)
	}
	ctx, state := context.Background(), framework.NewCycleState()
	n1 := nodes("n1")[0]
	if st := fw.RunFilterPluginsWithNominatedPods(ctx, state, prio("low", 1), n1); st.Code() != framework.Unschedulable {
		t.Errorf("lower-priority pod: %v, want the nominated pod to count", st)
	}
	if st := fw.RunFilterPluginsWithNominatedPods(ctx, state, prio("high", 9), n1); !st.IsSuccess() {
		t.Errorf("higher-priority pod: %v, want the nominated pod ignored", st)
	}
	if st := fw.RunFilterPluginsWithNominatedPods(ctx, state, prio("nominated", 5), n1); !st.IsSuccess() {
		t.Errorf("the nominated pod itself: %v", st)
	}
	if len(n1.Pods) != 0 {
		t.Error("the snapshot's NodeInfo got the nominated pod")
	}
}
