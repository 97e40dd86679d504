package scheduler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	schedcache "github.com/skiff-dev/skiff/pkg/scheduler/cache"
	"github.com/skiff-dev/skiff/pkg/scheduler/config"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// Test plugins: a pods-count fit with node events, a binder through the
// client, and a sort.

type sortPlugin struct{}

func (sortPlugin) Name() string { return "Sort" }
func (sortPlugin) Less(a, b *framework.QueuedPodInfo) bool {
	return a.Timestamp.Before(b.Timestamp)
}

// fitPlugin: a node fits while it has fewer pods than its "pods"
// allocatable.
type fitPlugin struct{}

func (fitPlugin) Name() string { return "Fit" }
func (fitPlugin) Filter(_ context.Context, _ *framework.CycleState, _ *v1.Pod, n *framework.NodeInfo) *framework.Status {
	if len(n.Pods) >= n.Allocatable.AllowedPodNumber {
		return framework.NewStatus(framework.Unschedulable, "Too many pods")
	}
	return nil
}
func (fitPlugin) EventsToRegister(context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeAllocatable}}}, nil
}

// fewestPods scores emptier nodes higher.
type fewestPods struct{}

func (fewestPods) Name() string { return "Fewest" }
func (fewestPods) Score(_ context.Context, _ *framework.CycleState, _ *v1.Pod, n *framework.NodeInfo) (int64, *framework.Status) {
	return max(0, 100-10*int64(len(n.Pods))), nil
}
func (fewestPods) ScoreExtensions() framework.ScoreExtensions { return nil }

type binder struct{ client kubernetes.Interface }

func (binder) Name() string { return "Binder" }
func (b binder) Bind(ctx context.Context, _ *framework.CycleState, pod *v1.Pod, node string) *framework.Status {
	p, err := b.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return framework.AsStatus(err)
	}
	p.Spec.NodeName = node
	_, err = b.client.CoreV1().Pods(pod.Namespace).Update(ctx, p, metav1.UpdateOptions{})
	return framework.AsStatus(err)
}

func testRegistry() framework.Registry {
	return framework.Registry{
		"Sort": func(context.Context, runtime.Object, framework.Handle) (framework.Plugin, error) {
			return sortPlugin{}, nil
		},
		"Fit": func(context.Context, runtime.Object, framework.Handle) (framework.Plugin, error) {
			return fitPlugin{}, nil
		},
		"Fewest": func(context.Context, runtime.Object, framework.Handle) (framework.Plugin, error) {
			return fewestPods{}, nil
		},
		"Binder": func(_ context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
			return binder{h.ClientSet()}, nil
		},
	}
}

func testNode(name string, pods int) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourcePods: *resource.NewQuantity(int64(pods), resource.DecimalSI)}}}
}

func testPod(name, scheduler string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name)},
		Spec: v1.PodSpec{SchedulerName: scheduler, Containers: []v1.Container{{Name: "c", Image: "i"}}}}
}

func startScheduler(t *testing.T, objs ...runtime.Object) (*fake.Clientset, context.CancelFunc) {
	return startProfiles(t, []string{"default-scheduler"}, objs...)
}

// startProfiles runs a scheduler with one profile of the test plugins per
// name.
func startProfiles(t *testing.T, names []string, objs ...runtime.Object) (*fake.Clientset, context.CancelFunc) {
	t.Helper()
	client := fake.NewClientset(objs...)
	cfg := config.Default()
	cfg.Profiles = nil
	for _, name := range names {
		cfg.Profiles = append(cfg.Profiles, configv1.KubeSchedulerProfile{SchedulerName: ptr.To(name), Plugins: &configv1.Plugins{MultiPoint: configv1.PluginSet{
			Disabled: []configv1.Plugin{{Name: "*"}},
			Enabled:  []configv1.Plugin{{Name: "Sort"}, {Name: "Fit"}, {Name: "Fewest", Weight: ptr.To[int32](1)}, {Name: "Binder"}},
		}}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	s, err := New(ctx, client, factory, testRegistry(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	return client, func() { cancel(); <-done }
}

func waitPod(t *testing.T, client kubernetes.Interface, name string, cond func(*v1.Pod) bool) *v1.Pod {
	t.Helper()
	var last *v1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s: condition not met; last %+v", name, last)
	}
	return last
}

func scheduledCondition(p *v1.Pod) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// TestScheduleBindAndFail: pods spread by score and bind; one that fits
// nowhere gets the upstream condition and event, and binds once a node
// is added; a pod for another scheduler is untouched.
func TestScheduleBindAndFail(t *testing.T) {
	client, stop := startScheduler(t, testNode("n1", 1), testNode("n2", 1))
	defer stop()
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if _, err := client.CoreV1().Pods("default").Create(ctx, testPod(name, "default-scheduler"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a := waitPod(t, client, "a", func(p *v1.Pod) bool { return p.Spec.NodeName != "" })
	b := waitPod(t, client, "b", func(p *v1.Pod) bool { return p.Spec.NodeName != "" })
	if a.Spec.NodeName == b.Spec.NodeName {
		t.Errorf("both pods on %s", a.Spec.NodeName)
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, testPod("c", "default-scheduler"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, testPod("other", "other"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := waitPod(t, client, "c", func(p *v1.Pod) bool { return scheduledCondition(p) != nil })
	cond := scheduledCondition(c)
	want := "0/2 nodes are available: 2 Too many pods."
	if cond.Status != v1.ConditionFalse || cond.Reason != v1.PodReasonUnschedulable || cond.Message != want {
		t.Errorf("condition %+v, want False/Unschedulable/%q", cond, want)
	}
	var ev string
	_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		list, _ := client.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		for _, e := range list.Items {
			if e.Reason == "FailedScheduling" && e.Regarding.Name == "c" {
				ev = e.Type + "/" + e.ReportingController + "/" + e.Action + "/" + e.Note
				return true, nil
			}
		}
		return false, nil
	})
	if ev != "Warning/default-scheduler/Scheduling/"+want {
		t.Errorf("FailedScheduling event %q", ev)
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, testNode("n3", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := waitPod(t, client, "c", func(p *v1.Pod) bool { return p.Spec.NodeName != "" }); c.Spec.NodeName != "n3" {
		t.Errorf("c bound to %s, want the new n3", c.Spec.NodeName)
	}
	// Events are written asynchronously.
	scheduled := 0
	_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		list, _ := client.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		scheduled = 0
		for _, e := range list.Items {
			if e.Regarding.Name == "other" {
				t.Errorf("event about the other scheduler's pod: %s %s", e.Reason, e.Note)
			}
			if e.Reason == "Scheduled" && strings.HasPrefix(e.Note, "Successfully assigned default/") {
				scheduled++
			}
		}
		return scheduled == 3, nil
	})
	if scheduled != 3 {
		t.Errorf("%d Scheduled events, want 3", scheduled)
	}
	other, _ := client.CoreV1().Pods("default").Get(ctx, "other", metav1.GetOptions{})
	if other.Spec.NodeName != "" || len(other.Status.Conditions) != 0 {
		t.Errorf("the other scheduler's pod was touched: node %q conditions %v", other.Spec.NodeName, other.Status.Conditions)
	}
}

// TestNoNodes: with no nodes, SchedulerError and upstream's message.
func TestNoNodes(t *testing.T) {
	client, stop := startScheduler(t)
	defer stop()
	if _, err := client.CoreV1().Pods("default").Create(context.Background(), testPod("p", "default-scheduler"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, client, "p", func(p *v1.Pod) bool { return scheduledCondition(p) != nil })
	if c := scheduledCondition(p); c.Reason != v1.PodReasonSchedulerError || c.Message != "no nodes available to schedule pods" {
		t.Errorf("condition %+v", c)
	}
}

// TestProfiles: each profile schedules its own pods and reports as its
// schedulerName; pods of no profile are left alone.
func TestProfiles(t *testing.T) {
	client, stop := startProfiles(t, []string{"alpha", "beta"}, testNode("n1", 10))
	defer stop()
	ctx := context.Background()
	for _, p := range []*v1.Pod{testPod("a", "alpha"), testPod("b", "beta"), testPod("d", "default-scheduler")} {
		if _, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitPod(t, client, "a", func(p *v1.Pod) bool { return p.Spec.NodeName == "n1" })
	waitPod(t, client, "b", func(p *v1.Pod) bool { return p.Spec.NodeName == "n1" })
	reporters := map[string]string{}
	_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		list, _ := client.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		for _, e := range list.Items {
			reporters[e.Regarding.Name] = e.ReportingController
		}
		return len(reporters) >= 2, nil
	})
	if reporters["a"] != "alpha" || reporters["b"] != "beta" {
		t.Errorf("reporting controllers %v, want a by alpha, b by beta", reporters)
	}
	time.Sleep(200 * time.Millisecond)
	d, _ := client.CoreV1().Pods("default").Get(ctx, "d", metav1.GetOptions{})
	if d.Spec.NodeName != "" || len(d.Status.Conditions) != 0 || reporters["d"] != "" {
		t.Errorf("a pod of no profile was touched: node %q conditions %v", d.Spec.NodeName, d.Status.Conditions)
	}
}

// TestPercentageOfNodesToScore: Filter stops once enough nodes fit (50%
// of 300 here) and the next pass starts where this one stopped.
func TestPercentageOfNodesToScore(t *testing.T) {
	client := fake.NewClientset()
	cfg := config.Default()
	cfg.PercentageOfNodesToScore = ptr.To[int32](50)
	cfg.Profiles[0].Plugins = &configv1.Plugins{MultiPoint: configv1.PluginSet{
		Disabled: []configv1.Plugin{{Name: "*"}},
		Enabled:  []configv1.Plugin{{Name: "Sort"}, {Name: "Fit"}, {Name: "Fewest", Weight: ptr.To[int32](1)}, {Name: "Binder"}},
	}}
	cfg.Profiles[0].PluginConfig = nil
	ctx := context.Background()
	s, err := New(ctx, client, informers.NewSharedInformerFactory(client, 0), testRegistry(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*v1.Node
	for i := range 300 {
		nodes = append(nodes, testNode(fmt.Sprintf("n%03d", i), 10))
	}
	s.snapshot = schedcache.NewSnapshot(nil, nodes)
	fw := s.profiles["default-scheduler"]
	feasible, _, err := s.findNodesThatFitPod(ctx, fw, framework.NewCycleState(), testPod("p", "default-scheduler"))
	if err != nil {
		t.Fatal(err)
	}
	if len(feasible) != 150 {
		t.Errorf("%d feasible nodes, want 150 (50%% of 300)", len(feasible))
	}
	if s.nextStartNodeIndex != 150 {
		t.Errorf("next pass starts at %d, want 150", s.nextStartNodeIndex)
	}
	feasible, _, _ = s.findNodesThatFitPod(ctx, fw, framework.NewCycleState(), testPod("q", "default-scheduler"))
	first := map[string]bool{}
	for _, n := range feasible {
		first[n.Node().Name] = true
	}
	if !first["n150"] || !first["n299"] || first["n000"] {
		t.Errorf("second pass did not start at n150")
	}
}
