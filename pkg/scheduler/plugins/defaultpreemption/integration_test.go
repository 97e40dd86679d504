package defaultpreemption_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/scheduler/cache"
	"github.com/skiff-dev/skiff/pkg/scheduler/config"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/defaultbinder"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/defaultpreemption"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/interpodaffinity"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/noderesources"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/podtopologyspread"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/queuesort"
	schedruntime "github.com/skiff-dev/skiff/pkg/scheduler/runtime"
)

// These tests run DefaultPreemption inside the real framework runtime with
// the real filters, so the dry runs go through NodeResourcesFit,
// InterPodAffinity and PodTopologySpread and their AddPod/RemovePod on
// cloned states.

func node(name, zone string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name, v1.LabelTopologyZone: zone}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}}}
}

func pod(name, nodeName string, prio int32, cpu string, labels map[string]string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: labels},
		Spec: v1.PodSpec{NodeName: nodeName, Priority: &prio, SchedulerName: "default-scheduler", Containers: []v1.Container{{Name: "c",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
}

type env struct {
	fw     *schedruntime.Framework
	client *fake.Clientset
	nodes  []*framework.NodeInfo
}

func newEnv(t *testing.T, nodes []*v1.Node, pods ...*v1.Pod) *env {
	t.Helper()
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, p)
	}
	client := fake.NewClientset(objs...)
	inf := informers.NewSharedInformerFactory(client, 0)
	for _, p := range pods {
		if err := inf.Core().V1().Pods().Informer().GetIndexer().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	snap := cache.NewSnapshot(pods, nodes)
	registry := framework.Registry{
		queuesort.Name:         queuesort.New,
		defaultbinder.Name:     defaultbinder.New,
		noderesources.Name:     noderesources.New,
		interpodaffinity.Name:  interpodaffinity.New,
		podtopologyspread.Name: podtopologyspread.New,
		defaultpreemption.Name: defaultpreemption.New,
	}
	set := func(names ...string) configv1.PluginSet {
		var s configv1.PluginSet
		for _, n := range names {
			s.Enabled = append(s.Enabled, configv1.Plugin{Name: n})
		}
		return s
	}
	filters := []string{noderesources.Name, interpodaffinity.Name, podtopologyspread.Name}
	profile := &configv1.KubeSchedulerProfile{SchedulerName: ptr.To("default-scheduler"), Plugins: &configv1.Plugins{
		QueueSort:  set(queuesort.Name),
		PreFilter:  set(filters...),
		Filter:     set(filters...),
		PostFilter: set(defaultpreemption.Name),
		Bind:       set(defaultbinder.Name),
	}}
	fw, err := schedruntime.New(context.Background(), registry, profile, schedruntime.Options{
		ClientSet: client, InformerFactory: inf, EventRecorder: events.NewFakeRecorder(10),
		Snapshot: func() framework.SharedLister { return snap }, Parallelism: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := snap.NodeInfos().List()
	return &env{fw: fw, client: client, nodes: list}
}

// schedule runs PreFilter and Filter as the scheduling cycle does, then
// PostFilter on the failures.
func (e *env) schedule(t *testing.T, p *v1.Pod) (*framework.PostFilterResult, *framework.Status) {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	if _, st, _ := e.fw.RunPreFilterPlugins(ctx, state, p, e.nodes); !st.IsSuccess() {
		t.Fatalf("PreFilter: %v", st)
	}
	statuses := framework.NewNodeToStatus(nil, nil)
	for _, n := range e.nodes {
		st := e.fw.RunFilterPluginsWithNominatedPods(ctx, state, p, n)
		if st.IsSuccess() {
			t.Fatalf("%s fits before preemption", n.Node().Name)
		}
		statuses.Set(n.Node().Name, st)
	}
	return e.fw.RunPostFilterPlugins(ctx, state, p, statuses)
}

func (e *env) deleted() []string {
	var out []string
	for _, a := range e.client.Actions() {
		if d, ok := a.(clienttesting.DeleteAction); ok {
			out = append(out, d.GetName())
		}
	}
	sort.Strings(out)
	return out
}

func TestPreemptionThroughAntiAffinity(t *testing.T) {
	web := map[string]string{"app": "web"}
	e := newEnv(t, []*v1.Node{node("n1", "a"), node("n2", "b")},
		pod("low-web", "n1", 1, "1", web),
		pod("high-web", "n2", 100, "1", web))
	p := pod("p", "", 10, "1", web)
	p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
		TopologyKey: v1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: web}}}}}
	res, st := e.schedule(t, p)
	if !st.IsSuccess() || res == nil || res.NominatedNodeName != "n1" {
		t.Fatalf("%v %+v", st, res)
	}
	if got := e.deleted(); strings.Join(got, ",") != "low-web" {
		t.Errorf("deleted %v", got)
	}
}

func TestPreemptionThroughTopologySpread(t *testing.T) {
	foo := map[string]string{"foo": "x"}
	// n1 (zone a) holds two low-priority foo pods; n2 (zone b) is full of
	// a high-priority pod. The preemptor must spread foo with maxSkew 1:
	// both foo pods on n1 have to go, nothing on n2 may.
	e := newEnv(t, []*v1.Node{node("n1", "a"), node("n2", "b")},
		pod("foo1", "n1", 1, "100m", foo), pod("foo2", "n1", 2, "100m", foo),
		pod("big", "n2", 100, "2", nil))
	p := pod("p", "", 10, "1", foo)
	p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: v1.LabelTopologyZone,
		WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: foo}}}
	res, st := e.schedule(t, p)
	if !st.IsSuccess() || res == nil || res.NominatedNodeName != "n1" {
		t.Fatalf("%v %+v", st, res)
	}
	if got := e.deleted(); strings.Join(got, ",") != "foo1,foo2" {
		t.Errorf("deleted %v", got)
	}
}

func TestNoVictimsMessageThroughRuntime(t *testing.T) {
	e := newEnv(t, []*v1.Node{node("n1", "a"), node("n2", "a"), node("n3", "b")},
		pod("a", "n1", 10, "2", nil), pod("b", "n2", 10, "2", nil), pod("c", "n3", 20, "2", nil))
	_, st := e.schedule(t, pod("p", "", 10, "1", nil))
	want := "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
	if st.Code() != framework.Unschedulable || st.Message() != want {
		t.Errorf("%v %q, want %q", st.Code(), st.Message(), want)
	}
	if got := e.deleted(); len(got) != 0 {
		t.Errorf("deleted %v", got)
	}
}

// TestDefaultProfileBuilds: upstream's default profile, as the
// configuration defaults it, builds from the in-tree registry with every
// plugin of this change in its extension points.
func TestDefaultProfileBuilds(t *testing.T) {
	cfg := &configv1.KubeSchedulerConfiguration{}
	config.SetDefaults(cfg)
	h := testhandle.New(nil)
	fw, err := schedruntime.New(context.Background(), plugins.NewInTreeRegistry(), &cfg.Profiles[0], schedruntime.Options{
		ClientSet: h.Client, InformerFactory: h.Informers, EventRecorder: h.Recorder,
		Snapshot: func() framework.SharedLister { return h }, Parallelism: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := fw.ListPlugins()
	has := func(point, name string) bool {
		for _, n := range got[point] {
			if n == name {
				return true
			}
		}
		return false
	}
	for point, names := range map[string][]string{
		"PreFilter":  {interpodaffinity.Name, podtopologyspread.Name, "VolumeRestrictions", "VolumeBinding", "VolumeZone", "NodeVolumeLimits"},
		"Filter":     {interpodaffinity.Name, podtopologyspread.Name, "VolumeRestrictions", "VolumeBinding", "VolumeZone", "NodeVolumeLimits"},
		"PostFilter": {defaultpreemption.Name},
		"PreScore":   {interpodaffinity.Name, podtopologyspread.Name},
		"Score":      {interpodaffinity.Name, podtopologyspread.Name},
	} {
		for _, n := range names {
			if !has(point, n) {
				t.Errorf("%s not at %s: %v", n, point, got[point])
			}
		}
	}
	// Upstream's default weights.
	if w := fw.ScoreWeight(interpodaffinity.Name); w != 2 {
		t.Errorf("InterPodAffinity weight %d", w)
	}
	if w := fw.ScoreWeight(podtopologyspread.Name); w != 2 {
		t.Errorf("PodTopologySpread weight %d", w)
	}
}
