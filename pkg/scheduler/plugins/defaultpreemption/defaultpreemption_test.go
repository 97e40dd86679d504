package defaultpreemption

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policy "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clienttesting "k8s.io/client-go/testing"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mkNode(name, cpu string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourcePods: resource.MustParse("110")}}}
}

// mkPod: a pod asking cpu, of priority prio, started minutes after t0.
func mkPod(name string, prio int32, cpu string, started int) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"name": name}},
		Spec: v1.PodSpec{Priority: &prio, SchedulerName: "default-scheduler", Containers: []v1.Container{{Name: "c",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
	if started >= 0 {
		p.Status.StartTime = &metav1.Time{Time: t0.Add(time.Duration(started) * time.Minute)}
	}
	return p
}

func ni(node *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
	n := framework.NewNodeInfo()
	n.SetNode(node)
	for _, p := range pods {
		p.Spec.NodeName = node.Name
		n.AddPod(p)
	}
	return n
}

// cpuFilter: the profile's filters in these tests, CPU only.
func cpuFilter(_ context.Context, _ *framework.CycleState, pod *v1.Pod, n *framework.NodeInfo) *framework.Status {
	if n.Requested.MilliCPU+framework.NewPodInfo(pod).Requests.MilliCPU > n.Allocatable.MilliCPU {
		return framework.NewStatus(framework.Unschedulable, "Insufficient cpu")
	}
	return nil
}

// setup: a plugin over nodes whose pods (and extra objects) are in the
// fake clientset and the pod/PDB listers.
func setup(t *testing.T, nodes []*framework.NodeInfo, extra ...runtime.Object) (*DefaultPreemption, *testhandle.Handle) {
	t.Helper()
	var objs []runtime.Object
	for _, n := range nodes {
		for _, pi := range n.Pods {
			objs = append(objs, pi.Pod)
		}
	}
	objs = append(objs, extra...)
	h := testhandle.New(nodes, objs...)
	h.Filter = cpuFilter
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *v1.Pod:
			err = h.Informers.Core().V1().Pods().Informer().GetIndexer().Add(o)
		case *policy.PodDisruptionBudget:
			err = h.Informers.Policy().V1().PodDisruptionBudgets().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(context.Background(), nil, h)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.(*DefaultPreemption)
	pl.offset = func(int32) int32 { return 0 }
	return pl, h
}

func allUnschedulable(nodes []*framework.NodeInfo, except map[string]*framework.Status) *framework.NodeToStatus {
	m := framework.NewNodeToStatus(nil, nil)
	for _, n := range nodes {
		s := framework.NewStatus(framework.Unschedulable, "Insufficient cpu")
		if e, ok := except[n.Node().Name]; ok {
			s = e
		}
		m.Set(n.Node().Name, s)
	}
	return m
}

func TestFailureMessages(t *testing.T) {
	never := v1.PreemptNever
	tests := []struct {
		name   string
		pod    *v1.Pod
		nodes  []*framework.NodeInfo
		except map[string]*framework.Status
		want   string
	}{
		{
			name: "no lower-priority pods anywhere",
			pod:  mkPod("p", 10, "2", -1),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "2"), mkPod("a", 10, "2", 0)),
				ni(mkNode("n2", "2"), mkPod("b", 20, "2", 0)),
				ni(mkNode("n3", "2"), mkPod("c", 10, "1", 0), mkPod("d", 100, "1", 0)),
			},
			want: "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
		},
		{
			name: "unresolvable nodes are not helped",
			pod:  mkPod("p", 10, "2", -1),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "2"), mkPod("a", 10, "2", 0)),
				ni(mkNode("n2", "2"), mkPod("b", 1, "2", 0)),
				ni(mkNode("n3", "2"), mkPod("c", 1, "2", 0)),
			},
			except: map[string]*framework.Status{
				"n2": framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint {dedicated: infra}"),
				"n3": framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector"),
			},
			want: "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.",
		},
		{
			name:  "every node unresolvable",
			pod:   mkPod("p", 10, "2", -1),
			nodes: []*framework.NodeInfo{ni(mkNode("n1", "2"), mkPod("a", 1, "2", 0)), ni(mkNode("n2", "2"))},
			except: map[string]*framework.Status{
				"n1": framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector"),
				"n2": framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector"),
			},
			want: "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
		},
		{
			name: "removing every lower-priority pod is not enough",
			pod:  mkPod("p", 10, "3", -1),
			nodes: []*framework.NodeInfo{
				ni(mkNode("n1", "4"), mkPod("a", 10, "2", 0), mkPod("b", 1, "1", 0)),
			},
			want: "preemption: 0/1 nodes are available: 1 Insufficient cpu.",
		},
		{
			name:  "preemptionPolicy Never",
			pod:   func() *v1.Pod { p := mkPod("p", 10, "2", -1); p.Spec.PreemptionPolicy = &never; return p }(),
			nodes: []*framework.NodeInfo{ni(mkNode("n1", "2"), mkPod("a", 1, "2", 0))},
			want:  "preemption: not eligible due to preemptionPolicy=Never.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, h := setup(t, tc.nodes)
			res, st := pl.PostFilter(context.Background(), framework.NewCycleState(), tc.pod, allUnschedulable(tc.nodes, tc.except))
			if st.Code() != framework.Unschedulable || st.Message() != tc.want {
				t.Errorf("got %v %q, want Unschedulable %q", st.Code(), st.Message(), tc.want)
			}
			if res != nil && res.NominatedNodeName != "" {
				t.Errorf("nominated %q", res.NominatedNodeName)
			}
			for _, a := range h.Client.Actions() {
				if a.GetVerb() != "list" && a.GetVerb() != "watch" {
					t.Errorf("unexpected API call %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

func TestSelectVictimsOnNode(t *testing.T) {
	// 4 cpu full; the preemptor wants 2. Reprieved most important first:
	// c (prio 3, 2 cpu) stays, b and a go.
	a, b, c := mkPod("a", 1, "1", 0), mkPod("b", 2, "1", 0), mkPod("c", 3, "2", 0)
	hi := mkPod("hi", 20, "1", 0)
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "5"), a, b, c, hi)}
	pl, h := setup(t, nodes)
	var removed, added []string
	h.RemovePod = func(_ context.Context, _ *framework.CycleState, _ *v1.Pod, pi *framework.PodInfo, _ *framework.NodeInfo) *framework.Status {
		removed = append(removed, pi.Pod.Name)
		return nil
	}
	h.AddPod = func(_ context.Context, _ *framework.CycleState, _ *v1.Pod, pi *framework.PodInfo, _ *framework.NodeInfo) *framework.Status {
		added = append(added, pi.Pod.Name)
		return nil
	}
	pod := mkPod("p", 10, "2", -1)
	orig := nodes[0]
	victims, violations, st := pl.selectVictimsOnNode(context.Background(), framework.NewCycleState(), pod, orig.Clone(), nil)
	if !st.IsSuccess() || violations != 0 {
		t.Fatalf("%v %d", st, violations)
	}
	if got := podNames(victims); got != "b,a" {
		t.Errorf("victims %s, want b,a", got)
	}
	if len(orig.Pods) != 4 || orig.Requested.MilliCPU != 5000 {
		t.Errorf("the snapshot's NodeInfo was changed: %d pods, %dm", len(orig.Pods), orig.Requested.MilliCPU)
	}
	// Extensions: every candidate removed, then re-added in importance
	// order and the ones that do not fit removed again.
	if got := strings.Join(added, ","); got != "c,b,a" {
		t.Errorf("re-added %s", got)
	}
	if len(removed) != 5 {
		t.Errorf("removed %v", removed)
	}
}

func podNames(pods []*v1.Pod) string {
	var s []string
	for _, p := range pods {
		s = append(s, p.Name)
	}
	return strings.Join(s, ",")
}

func pdb(sel string, allowed int32) *policy.PodDisruptionBudget {
	return &policy.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb-" + sel, Namespace: "default"},
		Spec:   policy.PodDisruptionBudgetSpec{MinAvailable: &intstr.IntOrString{IntVal: 1}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"name": sel}}},
		Status: policy.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed}}
}

func TestPDBViolationFirstReprieved(t *testing.T) {
	// Same priority; a is protected by a PDB allowing no disruption, so it
	// is tried first and stays, b goes.
	a, b := mkPod("a", 1, "2", 0), mkPod("b", 1, "2", 5)
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "4"), a, b)}
	pl, _ := setup(t, nodes)
	victims, violations, st := pl.selectVictimsOnNode(context.Background(), framework.NewCycleState(), mkPod("p", 10, "2", -1), nodes[0].Clone(),
		[]*policy.PodDisruptionBudget{pdb("a", 0)})
	if !st.IsSuccess() || podNames(victims) != "b" || violations != 0 {
		t.Errorf("%v victims %s violations %d", st, podNames(victims), violations)
	}
	// Both needed: a's eviction is counted as a violation.
	victims, violations, _ = pl.selectVictimsOnNode(context.Background(), framework.NewCycleState(), mkPod("p", 10, "4", -1), nodes[0].Clone(),
		[]*policy.PodDisruptionBudget{pdb("a", 0)})
	if podNames(victims) != "a,b" || violations != 1 {
		t.Errorf("victims %s violations %d", podNames(victims), violations)
	}
}

func TestFilterPodsWithPDBViolation(t *testing.T) {
	pods := []*framework.PodInfo{framework.NewPodInfo(mkPod("a", 1, "1", 0)), framework.NewPodInfo(mkPod("b", 1, "1", 0))}
	// One disruption allowed for both: the first is fine, the second
	// violates.
	both := pdb("a", 1)
	both.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "name", Operator: metav1.LabelSelectorOpExists}}}
	v, nv := filterPodsWithPDBViolation(pods, []*policy.PodDisruptionBudget{both})
	if len(v) != 1 || v[0].Pod.Name != "b" || len(nv) != 1 {
		t.Errorf("violating %d nonviolating %d", len(v), len(nv))
	}
	// A pod the PDB controller already counts as disrupted is free.
	both.Status.DisruptedPods = map[string]metav1.Time{"b": {}}
	if v, _ := filterPodsWithPDBViolation(pods, []*policy.PodDisruptionBudget{both}); len(v) != 0 {
		t.Errorf("disrupted pod counted")
	}
	other := pdb("a", 0)
	other.Namespace = "other"
	if v, _ := filterPodsWithPDBViolation(pods, []*policy.PodDisruptionBudget{other}); len(v) != 0 {
		t.Errorf("other namespace's PDB counted")
	}
}

func cand(node string, pdbViolations int, victims ...*v1.Pod) *candidate {
	return &candidate{node: node, victims: victims, numPDBViolations: pdbViolations}
}

func TestPickOneNodeForPreemption(t *testing.T) {
	tests := []struct {
		name  string
		cands []*candidate
		want  string
	}{
		{"fewest PDB violations", []*candidate{
			cand("a", 1, mkPod("x", 1, "1", 0)),
			cand("b", 0, mkPod("y", 5, "1", 0), mkPod("z", 5, "1", 0)),
		}, "b"},
		{"lowest highest-victim priority", []*candidate{
			cand("a", 0, mkPod("x", 5, "1", 0)),
			cand("b", 0, mkPod("y", 3, "1", 0), mkPod("z", 3, "1", 0), mkPod("w", 2, "1", 0)),
		}, "b"},
		{"smallest sum of priorities", []*candidate{
			cand("a", 0, mkPod("x", 3, "1", 0), mkPod("y", 3, "1", 0)),
			cand("b", 0, mkPod("z", 3, "1", 0), mkPod("w", 1, "1", 0)),
		}, "b"},
		{"negative priorities: fewer pods still sum smaller", []*candidate{
			cand("a", 0, mkPod("x", -5, "1", 0), mkPod("y", -5, "1", 0)),
			cand("b", 0, mkPod("z", -5, "1", 0)),
		}, "b"},
		{"latest start of the highest-priority victims", []*candidate{
			cand("a", 0, mkPod("x", 3, "1", 10), mkPod("y", 1, "1", 100)),
			cand("b", 0, mkPod("z", 3, "1", 20), mkPod("w", 1, "1", 0)),
		}, "b"},
		{"all equal: the first", []*candidate{
			cand("a", 0, mkPod("x", 3, "1", 10)),
			cand("b", 0, mkPod("y", 3, "1", 10)),
		}, "a"},
	}
	for _, tc := range tests {
		if got := pickOneNodeForPreemption(tc.cands); got.node != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got.node, tc.want)
		}
	}
}

// TestPreemptEndToEnd: the chosen node and the API calls made.
func TestPreemptEndToEnd(t *testing.T) {
	// n1's victim has priority 5, n2's 2: n2 wins.
	v1Pod, v2Pod := mkPod("v1", 5, "2", 0), mkPod("v2", 2, "2", 0)
	nominated := mkPod("nom", 1, "1", -1)
	nominated.Status.NominatedNodeName = "n2"
	preemptor := mkPod("p", 10, "2", -1)
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "2"), v1Pod), ni(mkNode("n2", "2"), v2Pod)}
	pl, h := setup(t, nodes, preemptor, nominated)
	h.Nominated["n2"] = []*framework.PodInfo{framework.NewPodInfo(nominated)}
	h.Client.ClearActions()

	res, st := pl.PostFilter(context.Background(), framework.NewCycleState(), preemptor, allUnschedulable(nodes, nil))
	if !st.IsSuccess() || res == nil || res.NominatedNodeName != "n2" {
		t.Fatalf("%v %+v", st, res)
	}
	if want := "preemption: found a potential placement for pod on node n2, preempting 1 victims"; st.Message() != want {
		t.Errorf("message %q", st.Message())
	}
	var calls []string
	for _, a := range h.Client.Actions() {
		switch a := a.(type) {
		case clienttesting.PatchAction:
			calls = append(calls, fmt.Sprintf("patch %s/%s %s", a.GetName(), a.GetSubresource(), a.GetPatch()))
		case clienttesting.DeleteAction:
			calls = append(calls, "delete "+a.GetName())
		default:
			calls = append(calls, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	if len(calls) != 4 {
		t.Fatalf("calls %q", calls)
	}
	// 1: the victim's DisruptionTarget condition.
	var p struct {
		Status struct {
			Conditions []v1.PodCondition `json:"conditions"`
		} `json:"status"`
	}
	if !strings.HasPrefix(calls[0], "patch v2/status ") {
		t.Fatalf("first call %q", calls[0])
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(calls[0], "patch v2/status ")), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Status.Conditions) != 1 {
		t.Fatalf("conditions %+v", p.Status.Conditions)
	}
	c := p.Status.Conditions[0]
	if c.Type != v1.DisruptionTarget || c.Status != v1.ConditionTrue || c.Reason != "PreemptionByScheduler" ||
		c.Message != "default-scheduler: preempting to accommodate a higher priority pod" {
		t.Errorf("condition %+v", c)
	}
	// 2: its delete; 3: the lower-priority nominated pod loses the node;
	// 4: the preemptor is nominated.
	if calls[1] != "delete v2" {
		t.Errorf("second call %q", calls[1])
	}
	if calls[2] != `patch nom/status {"status":{"nominatedNodeName":null}}` {
		t.Errorf("third call %q", calls[2])
	}
	if calls[3] != `patch p/status {"status":{"nominatedNodeName":"n2"}}` {
		t.Errorf("fourth call %q", calls[3])
	}
	select {
	case e := <-h.Recorder.Events:
		if e != "Normal Preempted Preempted by pod uid-p on node n2" {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no Preempted event")
	}
	got, err := h.Client.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{})
	if err != nil || got.Status.NominatedNodeName != "n2" {
		t.Errorf("preemptor after: %v %v", err, got.Status)
	}
}

func TestVictimAlreadyTerminatingNotDeletedAgain(t *testing.T) {
	v := mkPod("v", 1, "2", 0)
	v.DeletionTimestamp = &metav1.Time{Time: t0}
	preemptor := mkPod("p", 10, "2", -1)
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "2"), v)}
	pl, h := setup(t, nodes, preemptor)
	h.Client.ClearActions()
	res, st := pl.PostFilter(context.Background(), framework.NewCycleState(), preemptor, allUnschedulable(nodes, nil))
	if !st.IsSuccess() || res.NominatedNodeName != "n1" {
		t.Fatalf("%v %+v", st, res)
	}
	for _, a := range h.Client.Actions() {
		if a.GetVerb() == "delete" || a.GetVerb() == "patch" && a.(clienttesting.PatchAction).GetName() == "v" {
			t.Errorf("terminating victim touched: %s", a.GetVerb())
		}
	}
}

func TestNotEligibleWhileNominatedNodeClears(t *testing.T) {
	// The preemptor already preempted on n1 and its victim is still
	// terminating: no second preemption.
	v := mkPod("v", 1, "2", 0)
	v.DeletionTimestamp = &metav1.Time{Time: t0}
	v.Status.Conditions = []v1.PodCondition{{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonPreemptionByScheduler}}
	preemptor := mkPod("p", 10, "2", -1)
	preemptor.Status.NominatedNodeName = "n1"
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "2"), v), ni(mkNode("n2", "2"), mkPod("w", 1, "2", 0))}
	pl, _ := setup(t, nodes, preemptor)
	_, st := pl.PostFilter(context.Background(), framework.NewCycleState(), preemptor, allUnschedulable(nodes, nil))
	if st.Message() != "preemption: not eligible due to a terminating pod on the nominated node." {
		t.Errorf("%v", st)
	}
	// Unless the nominated node cannot take it any more.
	_, st = pl.PostFilter(context.Background(), framework.NewCycleState(), preemptor, allUnschedulable(nodes, map[string]*framework.Status{
		"n1": framework.NewStatus(framework.UnschedulableAndUnresolvable, "gone")}))
	if !st.IsSuccess() {
		t.Errorf("after the nominated node became unresolvable: %v", st)
	}
}

func TestCandidateCountAndArgs(t *testing.T) {
	pl, h := setup(t, nil)
	for n, want := range map[int32]int32{1: 1, 50: 50, 100: 100, 1000: 100, 5000: 500} {
		if got := pl.calculateNumCandidates(n); got != want {
			t.Errorf("%d nodes: %d candidates, want %d", n, got, want)
		}
	}
	i32 := func(v int32) *int32 { return &v }
	for _, a := range []*configv1.DefaultPreemptionArgs{
		{MinCandidateNodesPercentage: i32(101)},
		{MinCandidateNodesAbsolute: i32(-1)},
		{MinCandidateNodesPercentage: i32(0), MinCandidateNodesAbsolute: i32(0)},
	} {
		if _, err := New(context.Background(), a, h); err == nil {
			t.Errorf("accepted %+v", a)
		}
	}
	p, err := New(context.Background(), &configv1.DefaultPreemptionArgs{MinCandidateNodesPercentage: i32(50), MinCandidateNodesAbsolute: i32(1)}, h)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*DefaultPreemption).calculateNumCandidates(10); got != 5 {
		t.Errorf("50%% of 10: %d", got)
	}
}

// TestDryRunStopsAtEnoughCandidates: with one candidate wanted, the dry
// run stops at the first node without PDB violations.
func TestDryRunStopsAtEnoughCandidates(t *testing.T) {
	var nodes []*framework.NodeInfo
	for i := 0; i < 5; i++ {
		nodes = append(nodes, ni(mkNode(fmt.Sprintf("n%d", i), "2"), mkPod(fmt.Sprintf("v%d", i), 1, "2", 0)))
	}
	pl, _ := setup(t, nodes)
	cands, _, err := pl.dryRunPreemption(context.Background(), framework.NewCycleState(), mkPod("p", 10, "2", -1), nodes, nil, 2, 1)
	if err != nil || len(cands) != 1 || cands[0].node != "n2" {
		t.Errorf("%v %+v", err, cands)
	}
}

// TestNoCandidatesClearsNomination: as upstream (ModeOverride with ""),
// a preemptor that no node can take any more loses its old nomination.
func TestNoCandidatesClearsNomination(t *testing.T) {
	preemptor := mkPod("p", 10, "2", -1)
	preemptor.Status.NominatedNodeName = "n1"
	nodes := []*framework.NodeInfo{ni(mkNode("n1", "2"), mkPod("a", 20, "2", 0))}
	pl, h := setup(t, nodes, preemptor)
	h.Client.ClearActions()
	_, st := pl.PostFilter(context.Background(), framework.NewCycleState(), preemptor, allUnschedulable(nodes, map[string]*framework.Status{
		"n1": framework.NewStatus(framework.UnschedulableAndUnresolvable, "gone")}))
	if st.Message() != "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling." {
		t.Errorf("%v", st)
	}
	var patches []string
	for _, a := range h.Client.Actions() {
		if p, ok := a.(clienttesting.PatchAction); ok {
			patches = append(patches, p.GetName()+" "+string(p.GetPatch()))
		}
	}
	if len(patches) != 1 || patches[0] != `p {"status":{"nominatedNodeName":null}}` {
		t.Errorf("patches %q", patches)
	}
}
