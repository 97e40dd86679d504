package plugins_test

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/scheduler/config"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
	"github.com/skiff-dev/skiff/pkg/scheduler/runtime"
)

func mkNode(name string, cpu, mem string, labels map[string]string, taints ...v1.Taint) *v1.Node {
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem), v1.ResourcePods: resource.MustParse("110")}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: v1.NodeSpec{Taints: taints}, Status: v1.NodeStatus{Allocatable: alloc, Capacity: alloc}}
}

// One scheduling cycle's Filter and Score through the real framework
// runtime, with this package's plugins at upstream's default weights and
// args as the configuration defaults them.
func TestDefaultPluginsThroughRuntime(t *testing.T) {
	ctx := context.Background()
	nodes := []*framework.NodeInfo{
		testhandle.NodeInfo(mkNode("small", "1", "4Gi", nil)),
		testhandle.NodeInfo(mkNode("tainted", "8", "32Gi", nil, v1.Taint{Key: "dedicated", Value: "infra", Effect: v1.TaintEffectNoSchedule})),
		testhandle.NodeInfo(mkNode("mid", "4", "8Gi", map[string]string{"zone": "a"}, v1.Taint{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule})),
		testhandle.NodeInfo(mkNode("big", "8", "16Gi", map[string]string{"zone": "b"})),
	}
	h := testhandle.New(nodes)
	w := func(n int32) *int32 { return &n }
	cfg := &configv1.KubeSchedulerConfiguration{Profiles: []configv1.KubeSchedulerProfile{{
		SchedulerName: ptr.To("default-scheduler"),
		Plugins: &configv1.Plugins{MultiPoint: configv1.PluginSet{
			Enabled: []configv1.Plugin{
				{Name: names.SchedulingGates}, {Name: names.PrioritySort}, {Name: names.NodeName}, {Name: names.NodeUnschedulable},
				{Name: names.TaintToleration, Weight: w(3)}, {Name: names.NodeAffinity, Weight: w(2)}, {Name: names.NodePorts},
				{Name: names.NodeResourcesFit, Weight: w(1)}, {Name: names.NodeResourcesBalancedAllocation, Weight: w(1)},
				{Name: names.ImageLocality, Weight: w(1)}, {Name: names.DefaultBinder},
			},
			Disabled: []configv1.Plugin{{Name: "*"}},
		}},
	}}}
	config.SetDefaults(cfg)
	f, err := runtime.New(ctx, plugins.NewInTreeRegistry(), &cfg.Profiles[0], runtime.Options{
		ClientSet: h.Client, InformerFactory: h.Informers, EventRecorder: h.Recorder,
		Snapshot: func() framework.SharedLister { return h }, Parallelism: 1,
	})
	if err != nil {
		t.Fatal(err)
	}

	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "p"}, Spec: v1.PodSpec{
		Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
			v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("2Gi")}}}},
		Affinity: &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 10, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpIn, Values: []string{"a"}}}}},
		}}},
	}}
	state := framework.NewCycleState()
	if _, st, _ := f.RunPreFilterPlugins(ctx, state, pod, nodes); !st.IsSuccess() {
		t.Fatalf("PreFilter: %v", st)
	}
	wantFilter := map[string]*framework.Status{
		"small":   framework.NewStatus(framework.UnschedulableAndUnresolvable, "Insufficient cpu").WithPlugin(names.NodeResourcesFit),
		"tainted": framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint(s)").WithPlugin(names.TaintToleration),
		"mid":     nil,
		"big":     nil,
	}
	var feasible []*framework.NodeInfo
	for _, n := range nodes {
		st := f.RunFilterPlugins(ctx, state, pod, n)
		if !st.Equal(wantFilter[n.Node().Name]) {
			t.Errorf("Filter %s = %v, want %v", n.Node().Name, st, wantFilter[n.Node().Name])
		}
		if st.IsSuccess() {
			feasible = append(feasible, n)
		}
	}
	if st := f.RunPreScorePlugins(ctx, state, pod, feasible); !st.IsSuccess() {
		t.Fatalf("PreScore: %v", st)
	}
	scores, st := f.RunScorePlugins(ctx, state, pod, feasible)
	if !st.IsSuccess() {
		t.Fatalf("Score: %v", st)
	}
	// mid: Fit (50+75)/2=62; Balanced 50+(50+87-100)/2=68; affinity
	// 100×2; one untolerated PreferNoSchedule taint → 0×3. Total 330.
	// big: Fit (75+87)/2=81; Balanced 50+(50+93-100)/2=71; affinity 0;
	// taints 100×3. Total 452.
	want := map[string]map[string]int64{
		"mid": {names.NodeResourcesFit: 62, names.NodeResourcesBalancedAllocation: 68, names.NodeAffinity: 200, names.TaintToleration: 0, names.ImageLocality: 0},
		"big": {names.NodeResourcesFit: 81, names.NodeResourcesBalancedAllocation: 71, names.NodeAffinity: 0, names.TaintToleration: 300, names.ImageLocality: 0},
	}
	wantTotal := map[string]int64{"mid": 330, "big": 452}
	for _, ns := range scores {
		for _, ps := range ns.Scores {
			if ps.Score != want[ns.Name][ps.Name] {
				t.Errorf("%s: %s scored %d, want %d", ns.Name, ps.Name, ps.Score, want[ns.Name][ps.Name])
			}
		}
		if len(ns.Scores) != len(want[ns.Name]) || ns.TotalScore != wantTotal[ns.Name] {
			t.Errorf("%s: scores %+v total %d, want %d", ns.Name, ns.Scores, ns.TotalScore, wantTotal[ns.Name])
		}
	}
}

// upstream's default configuration builds with the in-tree registry: every
// default plugin skiff has is registered and accepts its defaulted args.
func TestDefaultConfigurationBuilds(t *testing.T) {
	cfg := config.Default()
	h := testhandle.New(nil)
	f, err := runtime.New(context.Background(), plugins.NewInTreeRegistry(), &cfg.Profiles[0], runtime.Options{
		ClientSet: h.Client, InformerFactory: h.Informers, EventRecorder: h.Recorder,
		Snapshot: func() framework.SharedLister { return h }, Parallelism: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{names.NodeResourcesFit, names.NodeAffinity, names.TaintToleration, names.ImageLocality, names.NodeResourcesBalancedAllocation} {
		if f.ScoreWeight(name) == 0 {
			t.Errorf("%s is not a Score plugin of the default profile", name)
		}
	}
	reg := plugins.NewInTreeRegistry()
	for _, p := range config.DefaultPlugins().MultiPoint.Enabled {
		if _, ok := reg[p.Name]; !ok && !config.NotImplemented.Has(p.Name) {
			t.Errorf("default plugin %s is neither registered nor listed as not implemented", p.Name)
		}
	}
}
