package cache

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"
)

func node(name, zone string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourcePods: resource.MustParse("10")}}}
	if zone != "" {
		n.Labels[v1.LabelTopologyZone] = zone
	}
	return n
}

func pod(name, nodeName, cpu string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)},
		Spec: v1.PodSpec{NodeName: nodeName, Containers: []v1.Container{{Name: "c",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}}}
}

func requested(t *testing.T, s *Snapshot, name string) int64 {
	t.Helper()
	ni, err := s.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return ni.Requested.MilliCPU
}

// TestAssumeConfirmForget: an assumed pod counts at once, its Add
// confirms it, a forgotten one no longer counts.
func TestAssumeConfirmForget(t *testing.T) {
	l := klog.Background()
	c := New(0, nil)
	c.AddNode(l, node("n1", ""))
	s := NewEmptySnapshot()
	p := pod("p", "n1", "1")
	if err := c.AssumePod(l, p); err != nil {
		t.Fatal(err)
	}
	if err := c.AssumePod(l, p); err == nil {
		t.Error("assuming a pod twice succeeded")
	}
	c.UpdateSnapshot(s)
	if got := requested(t, s, "n1"); got != 1000 {
		t.Fatalf("requested %dm with the pod assumed, want 1000m", got)
	}
	c.AddPod(l, p)
	if c.IsAssumedPod(p) {
		t.Error("pod still assumed after its Add")
	}
	if err := c.ForgetPod(l, p); err == nil {
		t.Error("a confirmed pod was forgotten")
	}
	q := pod("q", "n1", "2")
	_ = c.AssumePod(l, q)
	if err := c.ForgetPod(l, q); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(s)
	if got := requested(t, s, "n1"); got != 1000 {
		t.Fatalf("requested %dm after forgetting q, want 1000m", got)
	}
	c.RemovePod(l, p)
	c.UpdateSnapshot(s)
	if got := requested(t, s, "n1"); got != 0 {
		t.Fatalf("requested %dm after the pod's delete", got)
	}
}

// TestAddOnOtherNode: a pod bound elsewhere than assumed moves.
func TestAddOnOtherNode(t *testing.T) {
	l := klog.Background()
	c := New(0, nil)
	c.AddNode(l, node("n1", ""))
	c.AddNode(l, node("n2", ""))
	_ = c.AssumePod(l, pod("p", "n1", "1"))
	c.AddPod(l, pod("p", "n2", "1"))
	s := NewEmptySnapshot()
	c.UpdateSnapshot(s)
	if requested(t, s, "n1") != 0 || requested(t, s, "n2") != 1000 {
		t.Errorf("n1 %dm n2 %dm, want 0 and 1000", requested(t, s, "n1"), requested(t, s, "n2"))
	}
}

// TestExpire: an assumed pod expires only after its binding finished and
// the TTL passed.
func TestExpire(t *testing.T) {
	l := klog.Background()
	clk := clocktesting.NewFakeClock(time.Now())
	c := New(time.Minute, clk)
	c.AddNode(l, node("n1", ""))
	p := pod("p", "n1", "1")
	_ = c.AssumePod(l, p)
	clk.Step(time.Hour)
	c.CleanupExpiredAssumedPods(l)
	if !c.IsAssumedPod(p) {
		t.Fatal("expired while binding")
	}
	_ = c.FinishBinding(l, p)
	clk.Step(59 * time.Second)
	c.CleanupExpiredAssumedPods(l)
	if !c.IsAssumedPod(p) {
		t.Fatal("expired before the TTL")
	}
	clk.Step(2 * time.Second)
	c.CleanupExpiredAssumedPods(l)
	if c.IsAssumedPod(p) || c.PodCount() != 0 {
		t.Fatal("not expired after the TTL")
	}
	s := NewEmptySnapshot()
	c.UpdateSnapshot(s)
	if requested(t, s, "n1") != 0 {
		t.Error("expired pod still counted")
	}
}

// TestSnapshotGenerations: only changed NodeInfos are copied; removed
// nodes leave; pods that arrive before their node are kept.
func TestSnapshotGenerations(t *testing.T) {
	l := klog.Background()
	c := New(0, nil)
	c.AddNode(l, node("a", "z1"))
	c.AddNode(l, node("b", "z1"))
	c.AddNode(l, node("c", "z2"))
	s := NewEmptySnapshot()
	c.UpdateSnapshot(s)
	if s.NumNodes() != 3 {
		t.Fatalf("%d nodes", s.NumNodes())
	}
	list, _ := s.List()
	if got := list[0].Node().Name + list[1].Node().Name + list[2].Node().Name; got != "acb" {
		t.Errorf("order %s, want zones interleaved: acb", got)
	}
	a, _ := s.Get("a")
	b, _ := s.Get("b")
	genA, genB := a.Generation, b.Generation
	c.AddPod(l, pod("p", "b", "1"))
	c.UpdateSnapshot(s)
	if a2, _ := s.Get("a"); a2.Generation != genA {
		t.Error("unchanged node a was copied again")
	}
	if b2, _ := s.Get("b"); b2.Generation == genB || b2.Requested.MilliCPU != 1000 {
		t.Error("changed node b was not copied")
	}
	if s.Generation() < b.Generation {
		t.Error("snapshot generation did not move")
	}
	// A pod before its node, then the node.
	c.AddPod(l, pod("early", "d", "1"))
	c.UpdateSnapshot(s)
	if _, err := s.Get("d"); err == nil {
		t.Error("a node-less NodeInfo is in the snapshot")
	}
	c.AddNode(l, node("d", ""))
	c.RemoveNode(l, node("c", "z2"))
	c.UpdateSnapshot(s)
	if _, err := s.Get("c"); err == nil {
		t.Error("removed node c still in the snapshot")
	}
	if got := requested(t, s, "d"); got != 1000 {
		t.Errorf("node d: %dm, want the early pod's 1000m", got)
	}
	if s.NumNodes() != 3 {
		t.Errorf("%d nodes, want a, b, d", s.NumNodes())
	}
}

// TestAffinityLists and images.
func TestAffinityListsAndImages(t *testing.T) {
	l := klog.Background()
	c := New(0, nil)
	n1, n2 := node("n1", ""), node("n2", "")
	n1.Status.Images = []v1.ContainerImage{{Names: []string{"img:1"}, SizeBytes: 100}}
	c.AddNode(l, n1)
	s := NewEmptySnapshot()
	c.UpdateSnapshot(s)
	p := pod("anti", "n2", "0")
	p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname"}}}}
	n2.Status.Images = n1.Status.Images
	c.AddNode(l, n2)
	c.AddPod(l, p)
	c.UpdateSnapshot(s)
	anti, _ := s.HavePodsWithRequiredAntiAffinityList()
	aff, _ := s.HavePodsWithAffinityList()
	if len(anti) != 1 || anti[0].Node().Name != "n2" || len(aff) != 1 {
		t.Errorf("anti-affinity list %d, affinity list %d", len(anti), len(aff))
	}
	ni, _ := s.Get("n1")
	if got := ni.ImageStates["img:1"]; got == nil || got.NumNodes != 2 || got.Size != 100 {
		t.Errorf("n1's image state %+v, want on 2 nodes", got)
	}
	c.RemovePod(l, p)
	c.UpdateSnapshot(s)
	if anti, _ := s.HavePodsWithRequiredAntiAffinityList(); len(anti) != 0 {
		t.Error("anti-affinity list kept a node without such pods")
	}
}
