package noderesources

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

const foo = "example.com/foo"

// rl parses "cpu=1,memory=2" style pairs into a ResourceList.
func rl(kv ...string) v1.ResourceList {
	out := v1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

var podSeq int

// pod has one container per request list (nil: no requests).
func pod(reqs ...v1.ResourceList) *v1.Pod {
	podSeq++
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", podSeq), UID: metaUID(podSeq)}}
	for i, r := range reqs {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: fmt.Sprintf("c%d", i), Resources: v1.ResourceRequirements{Requests: r}})
	}
	return p
}

func metaUID(i int) types.UID { return types.UID(fmt.Sprintf("uid-%d", i)) }

func node(name string, alloc v1.ResourceList) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NodeStatus{Allocatable: alloc, Capacity: alloc}}
}

func newFit(t *testing.T, args runtime.Object) *Fit {
	t.Helper()
	p, err := New(context.Background(), args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Fit)
}

func TestFitFilter(t *testing.T) {
	// 10 cpu, 20 bytes of memory and ephemeral storage, 5 foo, 32 pods;
	// the existing pod takes 8 cpu, 19 memory, 3 foo.
	alloc := rl("cpu", "10", "memory", "20", "ephemeral-storage", "20", "pods", "32", foo, "5")
	existing := pod(rl("cpu", "8", "memory", "19", foo, "3"))
	always := v1.ContainerRestartPolicyAlways
	withInit := func(p *v1.Pod, sidecar bool, r v1.ResourceList) *v1.Pod {
		c := v1.Container{Name: "init", Resources: v1.ResourceRequirements{Requests: r}}
		if sidecar {
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
		return p
	}
	withOverhead := func(p *v1.Pod, r v1.ResourceList) *v1.Pod { p.Spec.Overhead = r; return p }
	U, UU := framework.Unschedulable, framework.UnschedulableAndUnresolvable
	tests := []struct {
		name  string
		pod   *v1.Pod
		alloc v1.ResourceList
		args  *configv1.NodeResourcesFitArgs
		want  *framework.Status
	}{
		{name: "no requests", pod: pod(nil)},
		{name: "fits exactly", pod: pod(rl("cpu", "2", "memory", "1", foo, "2"))},
		{name: "cpu and memory short", pod: pod(rl("cpu", "3", "memory", "2")), want: framework.NewStatus(U, "Insufficient cpu", "Insufficient memory")},
		{name: "more cpu than the node has", pod: pod(rl("cpu", "11")), want: framework.NewStatus(UU, "Insufficient cpu")},
		{name: "summed over containers", pod: pod(rl("cpu", "1"), rl("cpu", "2")), want: framework.NewStatus(U, "Insufficient cpu")},
		{name: "init container larger than containers", pod: withInit(pod(rl("cpu", "1")), false, rl("cpu", "3")), want: framework.NewStatus(U, "Insufficient cpu")},
		{name: "init container smaller", pod: withInit(pod(rl("cpu", "2")), false, rl("cpu", "1"))},
		{name: "sidecar adds to containers", pod: withInit(pod(rl("cpu", "2")), true, rl("cpu", "1")), want: framework.NewStatus(U, "Insufficient cpu")},
		{name: "overhead counted", pod: withOverhead(pod(rl("cpu", "1")), rl("cpu", "1500m")), want: framework.NewStatus(U, "Insufficient cpu")},
		{name: "ephemeral storage", pod: pod(rl("ephemeral-storage", "21")), want: framework.NewStatus(UU, "Insufficient ephemeral-storage")},
		{name: "extended resource short", pod: pod(rl(foo, "3")), want: framework.NewStatus(U, "Insufficient example.com/foo")},
		{name: "extended resource beyond allocatable", pod: pod(rl(foo, "6")), want: framework.NewStatus(UU, "Insufficient example.com/foo")},
		{name: "extended resource the node lacks", pod: pod(rl("example.com/bar", "1")), want: framework.NewStatus(UU, "Insufficient example.com/bar")},
		{name: "ignored resource", pod: pod(rl(foo, "6")), args: &configv1.NodeResourcesFitArgs{IgnoredResources: []string{foo}}},
		{name: "ignored group", pod: pod(rl(foo, "6")), args: &configv1.NodeResourcesFitArgs{IgnoredResourceGroups: []string{"example.com"}}},
		{name: "ignoring does not cover hugepages", pod: pod(rl("hugepages-2Mi", "2Mi")), args: &configv1.NodeResourcesFitArgs{IgnoredResources: []string{"hugepages-2Mi"}}, want: framework.NewStatus(UU, "Insufficient hugepages-2Mi")},
		{name: "two extended resources in name order", pod: pod(rl("example.com/z", "1", "example.com/a", "1")), want: framework.NewStatus(UU, "Insufficient example.com/a", "Insufficient example.com/z")},
		{name: "too many pods", pod: pod(nil), alloc: rl("cpu", "10", "memory", "20", "pods", "1"), want: framework.NewStatus(U, "Too many pods")},
		{name: "too many pods and cpu", pod: pod(rl("cpu", "3")), alloc: rl("cpu", "10", "memory", "20", "pods", "1"), want: framework.NewStatus(U, "Too many pods", "Insufficient cpu")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := alloc
			if tt.alloc != nil {
				a = tt.alloc
			}
			var args runtime.Object
			if tt.args != nil {
				args = tt.args
			}
			pl := newFit(t, args)
			ni := testhandle.NodeInfo(node("n", a), existing)
			state := framework.NewCycleState()
			if _, st := pl.PreFilter(context.Background(), state, tt.pod, nil); !st.IsSuccess() {
				t.Fatal(st)
			}
			if got := pl.Filter(context.Background(), state, tt.pod, ni); !got.Equal(tt.want) {
				t.Errorf("Filter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterWithoutPreFilter(t *testing.T) {
	pl := newFit(t, nil)
	if st := pl.Filter(context.Background(), framework.NewCycleState(), pod(nil), testhandle.NodeInfo(node("n", rl("pods", "1")))); st.Code() != framework.Error {
		t.Errorf("Filter = %v, want Error", st)
	}
}

// scores runs PreScore and Score of a score plugin over nodes.
func scores(t *testing.T, pl framework.ScorePlugin, p *v1.Pod, nodes []*framework.NodeInfo) []int64 {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	if ps, ok := pl.(framework.PreScorePlugin); ok {
		if st := ps.PreScore(ctx, state, p, nodes); !st.IsSuccess() {
			t.Fatalf("PreScore: %v", st)
		}
	}
	var out []int64
	for _, n := range nodes {
		s, st := pl.Score(ctx, state, p, n)
		if !st.IsSuccess() {
			t.Fatalf("Score: %v", st)
		}
		out = append(out, s)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFitScore(t *testing.T) {
	mi := func(n int64) string { return fmt.Sprintf("%dMi", n) }
	small := node("small", rl("cpu", "4", "memory", "10000"))
	large := node("large", rl("cpu", "6", "memory", "10000"))
	big := node("big", rl("cpu", "4", "memory", mi(1000)))
	gpuNode := node("gpu", rl("cpu", "4", "memory", mi(1000), foo, "8"))
	// An existing pod asking only for cpu counts 200Mi of memory when
	// scoring (the non-zero default).
	cpuOnly := func() *v1.Pod { return pod(rl("cpu", "1")) }
	least := &configv1.NodeResourcesFitArgs{}
	most := &configv1.NodeResourcesFitArgs{ScoringStrategy: &configv1.ScoringStrategy{Type: configv1.MostAllocated}}
	rtcr := func(shape []configv1.UtilizationShapePoint, res ...configv1.ResourceSpec) *configv1.NodeResourcesFitArgs {
		return &configv1.NodeResourcesFitArgs{ScoringStrategy: &configv1.ScoringStrategy{Type: configv1.RequestedToCapacityRatio, Resources: res,
			RequestedToCapacityRatio: &configv1.RequestedToCapacityRatioParam{Shape: shape}}}
	}
	up := []configv1.UtilizationShapePoint{{Utilization: 0, Score: 0}, {Utilization: 100, Score: 10}}
	down := []configv1.UtilizationShapePoint{{Utilization: 0, Score: 10}, {Utilization: 100, Score: 0}}
	tests := []struct {
		name  string
		args  *configv1.NodeResourcesFitArgs
		pod   *v1.Pod
		nodes []*framework.NodeInfo
		want  []int64
	}{
		{
			// small: cpu (4000-3000)*100/4000=25, memory 50 → 75/2=37;
			// large: cpu 50, memory 50 → 50.
			name: "least allocated, differently sized nodes", args: nil,
			pod:   pod(rl("cpu", "3", "memory", "5000")),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(small), testhandle.NodeInfo(large)},
			want:  []int64{37, 50},
		},
		{
			// Defaults 100m and 200Mi: cpu 3900*100/4000=97, memory 80 → 88.
			name: "least allocated, pod without requests", args: least,
			pod:   pod(nil),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(big)},
			want:  []int64{88},
		},
		{
			// cpu 2000/4000 → 50; memory 200Mi (default) + 100Mi → 70; → 60.
			name: "least allocated, existing pod's memory at its default", args: least,
			pod:   pod(rl("cpu", "1", "memory", mi(100))),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(big, cpuOnly())},
			want:  []int64{60},
		},
		{
			// (50*2 + 70*1)/3 = 56.
			name: "least allocated, cpu weighs 2",
			args: &configv1.NodeResourcesFitArgs{ScoringStrategy: &configv1.ScoringStrategy{Type: configv1.LeastAllocated,
				Resources: []configv1.ResourceSpec{{Name: "cpu", Weight: 2}, {Name: "memory", Weight: 1}}}},
			pod:   pod(rl("cpu", "1", "memory", mi(100))),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(big, cpuOnly())},
			want:  []int64{56},
		},
		{
			// cpu 50, memory 30 → 40; overcommitted cpu is capped at 100:
			// (100+30)/2 = 65.
			name: "most allocated", args: most,
			pod:   pod(rl("cpu", "1", "memory", mi(100))),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(big, cpuOnly()), testhandle.NodeInfo(big, pod(rl("cpu", "5")))},
			want:  []int64{40, 65},
		},
		{
			name: "requested to capacity ratio, increasing shape", args: rtcr(up, configv1.ResourceSpec{Name: "cpu", Weight: 1}, configv1.ResourceSpec{Name: "memory", Weight: 1}),
			pod:   pod(rl("cpu", "1", "memory", mi(100))),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(big, cpuOnly())},
			want:  []int64{40},
		},
		{
			// cpu 50 weight 1, memory 70 weight 2: 190/3 = 63.3 → 63.
			name: "requested to capacity ratio, decreasing shape, weights", args: rtcr(down, configv1.ResourceSpec{Name: "cpu", Weight: 1}, configv1.ResourceSpec{Name: "memory", Weight: 2}),
			pod:   pod(rl("cpu", "1", "memory", mi(100))),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(big, cpuOnly())},
			want:  []int64{63},
		},
		{
			// cpu 50, memory (200+550)/1000 → 75: 62.5 rounds to 63.
			name: "requested to capacity ratio rounds half up", args: rtcr(up, configv1.ResourceSpec{Name: "cpu", Weight: 1}, configv1.ResourceSpec{Name: "memory", Weight: 1}),
			pod:   pod(rl("cpu", "1", "memory", mi(550))),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(big, cpuOnly())},
			want:  []int64{63},
		},
		{
			// The pod asks for no foo, so foo is left out: cpu 1000m/4000
			// → 25, memory 200Mi (default)/1000Mi → 20: 22.5 rounds to 23.
			// Asking for 4 foo: foo 50 weighs 3 → (25+20+150)/5 = 39.
			name:  "requested to capacity ratio, extended resource only when requested",
			args:  rtcr(up, configv1.ResourceSpec{Name: "cpu", Weight: 1}, configv1.ResourceSpec{Name: "memory", Weight: 1}, configv1.ResourceSpec{Name: foo, Weight: 3}),
			pod:   pod(rl("cpu", "1")),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(gpuNode)},
			want:  []int64{23},
		},
		{
			name:  "requested to capacity ratio, extended resource requested",
			args:  rtcr(up, configv1.ResourceSpec{Name: "cpu", Weight: 1}, configv1.ResourceSpec{Name: "memory", Weight: 1}, configv1.ResourceSpec{Name: foo, Weight: 3}),
			pod:   pod(rl("cpu", "1", foo, "4")),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(gpuNode)},
			want:  []int64{39},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args runtime.Object
			if tt.args != nil {
				args = tt.args
			}
			if got := scores(t, newFit(t, args), tt.pod, tt.nodes); !equal(got, tt.want) {
				t.Errorf("scores = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBalancedAllocation(t *testing.T) {
	n := func(name string, cpu, mem int64, extra ...string) *v1.Node {
		return node(name, rl(append([]string{"cpu", fmt.Sprintf("%dm", cpu), "memory", fmt.Sprint(mem)}, extra...)...))
	}
	tests := []struct {
		name  string
		res   []configv1.ResourceSpec
		pod   *v1.Pod
		nodes []*framework.NodeInfo
		want  []int64
	}{
		{
			// n1: with pod 0.75/0.5 → std .125 → 87; without 100:
			// 50 + (50+87-100)/2 = 68. n2: 0.5/0.5 → 50 + 50/2 = 75.
			name:  "empty nodes",
			pod:   pod(rl("cpu", "3", "memory", "5000")),
			nodes: []*framework.NodeInfo{testhandle.NodeInfo(n("n1", 4000, 10000)), testhandle.NodeInfo(n("n2", 6000, 10000))},
			want:  []int64{68, 75},
		},
		{
			// Upstream's worked example: cpu 30%→60%, memory 0%→25%:
			// 85 → 82, so 50 + (50+82-85)/2 = 73; memory 10%→20%: 90 →
			// 80, so 50 + 40/2 = 70.
			name: "existing pods, differently sized nodes",
			pod:  pod(rl("cpu", "1", "memory", "2000"), rl("cpu", "2", "memory", "3000")),
			nodes: []*framework.NodeInfo{
				testhandle.NodeInfo(n("n1", 10000, 20000), pod(rl("cpu", "1"), rl("cpu", "2"))),
				testhandle.NodeInfo(n("n2", 10000, 50000), pod(rl("cpu", "1", "memory", "2000"), rl("cpu", "2", "memory", "3000"))),
			},
			want: []int64{73, 70},
		},
		{
			// Three resources: cpu 3000/3500, memory 5000/40000, foo 3→4
			// of 8: standard deviations give 69 → 70, so 50 + 51/2 = 75.
			name: "extended resource counted when requested",
			res:  []configv1.ResourceSpec{{Name: "cpu", Weight: 1}, {Name: "memory", Weight: 1}, {Name: foo, Weight: 1}},
			pod:  pod(rl("cpu", "0", "memory", "0", foo, "1")),
			nodes: []*framework.NodeInfo{
				testhandle.NodeInfo(n("n1", 3500, 40000, foo, "8"), pod(rl("cpu", "1", "memory", "2000"), rl("cpu", "2", "memory", "3000", foo, "3"))),
			},
			want: []int64{75},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args runtime.Object
			if tt.res != nil {
				args = &configv1.NodeResourcesBalancedAllocationArgs{Resources: tt.res}
			}
			p, err := NewBalancedAllocation(context.Background(), args, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := scores(t, p.(framework.ScorePlugin), tt.pod, tt.nodes); !equal(got, tt.want) {
				t.Errorf("scores = %v, want %v", got, tt.want)
			}
		})
	}
	p, _ := NewBalancedAllocation(context.Background(), nil, nil)
	if st := p.(framework.PreScorePlugin).PreScore(context.Background(), framework.NewCycleState(), pod(nil), nil); !st.IsSkip() {
		t.Errorf("PreScore for a best-effort pod = %v, want Skip", st)
	}
}

func TestArgs(t *testing.T) {
	bad := []runtime.Object{
		&configv1.NodeResourcesFitArgs{ScoringStrategy: &configv1.ScoringStrategy{Type: "Nope"}},
		&configv1.NodeResourcesFitArgs{ScoringStrategy: &configv1.ScoringStrategy{Type: configv1.RequestedToCapacityRatio}},
		&configv1.NodeResourcesFitArgs{ScoringStrategy: &configv1.ScoringStrategy{Type: configv1.RequestedToCapacityRatio,
			RequestedToCapacityRatio: &configv1.RequestedToCapacityRatioParam{Shape: []configv1.UtilizationShapePoint{{Utilization: 50, Score: 1}, {Utilization: 10, Score: 11}}}}},
		&configv1.NodeResourcesFitArgs{IgnoredResourceGroups: []string{"example.com/foo"}},
		&configv1.NodeResourcesFitArgs{ScoringStrategy: &configv1.ScoringStrategy{Resources: []configv1.ResourceSpec{{Name: "cpu", Weight: 101}}}},
		&configv1.NodeResourcesBalancedAllocationArgs{},
	}
	for i, a := range bad {
		if _, err := New(context.Background(), a, nil); err == nil {
			t.Errorf("%d: New(%#v) succeeded", i, a)
		}
	}
	if _, err := NewBalancedAllocation(context.Background(), &configv1.NodeResourcesBalancedAllocationArgs{Resources: []configv1.ResourceSpec{{Name: "cpu", Weight: 2}}}, nil); err == nil {
		t.Error("balanced allocation weight 2 accepted")
	}
}

func TestNodeHint(t *testing.T) {
	pl := newFit(t, nil)
	p := pod(rl("cpu", "2"))
	lg := klog.Background()
	for _, c := range []struct {
		name     string
		old, new any
		want     framework.QueueingHint
	}{
		{"new node fits", nil, node("n", rl("cpu", "4", "pods", "10")), framework.Queue},
		{"new node too small", nil, node("n", rl("cpu", "1", "pods", "10")), framework.QueueSkip},
		{"cpu grew", node("n", rl("cpu", "1", "pods", "10")), node("n", rl("cpu", "4", "pods", "10")), framework.Queue},
		{"only memory grew", node("n", rl("cpu", "4", "memory", "1", "pods", "10")), node("n", rl("cpu", "4", "memory", "2", "pods", "10")), framework.QueueSkip},
		{"pods grew", node("n", rl("cpu", "4", "pods", "1")), node("n", rl("cpu", "4", "pods", "10")), framework.Queue},
	} {
		if got, err := pl.isSchedulableAfterNodeChange(lg, p, c.old, c.new); err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	bound := pod(rl("cpu", "1"))
	bound.Spec.NodeName = "n"
	if got, _ := pl.isSchedulableAfterPodDeleted(lg, p, bound, nil); got != framework.Queue {
		t.Errorf("bound pod deleted: %v", got)
	}
	if got, _ := pl.isSchedulableAfterPodDeleted(lg, p, pod(nil), nil); got != framework.QueueSkip {
		t.Errorf("unbound pod deleted: %v", got)
	}
	smaller := bound.DeepCopy()
	smaller.Spec.Containers[0].Resources.Requests = rl("cpu", "500m")
	if got, _ := pl.isSchedulableAfterPodScaleDown(lg, p, bound, smaller); got != framework.Queue {
		t.Errorf("cpu scaled down: %v", got)
	}
	memOnly := bound.DeepCopy()
	memOnly.Spec.Containers[0].Resources.Requests = rl("cpu", "1", "memory", "1")
	if got, _ := pl.isSchedulableAfterPodScaleDown(lg, p, memOnly, bound); got != framework.QueueSkip {
		t.Errorf("memory scaled down for a cpu-only pod: %v", got)
	}
}
