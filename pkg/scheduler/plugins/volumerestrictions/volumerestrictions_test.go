package volumerestrictions

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

func pod(name string, vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)}, Spec: v1.PodSpec{Volumes: vols}}
}

func claimVol(claim string) v1.Volume {
	return v1.Volume{Name: claim, VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
}

func gce(pd string, ro bool) v1.Volume {
	return v1.Volume{Name: "g", VolumeSource: v1.VolumeSource{GCEPersistentDisk: &v1.GCEPersistentDiskVolumeSource{PDName: pd, ReadOnly: ro}}}
}

func pvc(name string, modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: v1.PersistentVolumeClaimSpec{AccessModes: modes}}
}

func node(name string, pods ...*v1.Pod) *framework.NodeInfo {
	n := framework.NewNodeInfo()
	n.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
	for _, p := range pods {
		p.Spec.NodeName = name
		n.AddPod(p)
	}
	return n
}

func setup(t *testing.T, nodes []*framework.NodeInfo, pvcs ...*v1.PersistentVolumeClaim) *VolumeRestrictions {
	t.Helper()
	h := testhandle.New(nodes)
	for _, c := range pvcs {
		if err := h.Informers.Core().V1().PersistentVolumeClaims().Informer().GetIndexer().Add(c); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(context.Background(), nil, h)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*VolumeRestrictions)
}

func TestReadWriteOncePod(t *testing.T) {
	holder := pod("holder", claimVol("rwop"))
	nodes := []*framework.NodeInfo{node("n1", holder), node("n2")}
	pl := setup(t, nodes, pvc("rwop", v1.ReadWriteOncePod), pvc("rwo", v1.ReadWriteOnce))
	p := pod("p", claimVol("rwop"))
	cs := framework.NewCycleState()
	if _, st := pl.PreFilter(context.Background(), cs, p, nodes); !st.IsSuccess() {
		t.Fatal(st)
	}
	want := framework.NewStatus(framework.Unschedulable, ErrReasonReadWriteOncePodConflict)
	for _, n := range nodes {
		if st := pl.Filter(context.Background(), cs, p, n); !st.Equal(want) {
			t.Errorf("%s: %v", n.Node().Name, st)
		}
	}
	// Preemption removing the holder frees the claim, on a cloned state.
	clone := cs.Clone()
	if st := pl.RemovePod(context.Background(), clone, p, nodes[0].Pods[0], nodes[0]); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := pl.Filter(context.Background(), clone, p, nodes[1]); !st.IsSuccess() {
		t.Errorf("after removing the holder: %v", st)
	}
	if st := pl.Filter(context.Background(), cs, p, nodes[1]); st.IsSuccess() {
		t.Error("the original state changed with the clone")
	}
	pl.AddPod(context.Background(), clone, p, nodes[0].Pods[0], nodes[0])
	if st := pl.Filter(context.Background(), clone, p, nodes[1]); !st.Equal(want) {
		t.Errorf("after adding back: %v", st)
	}

	// A ReadWriteOnce claim shared by pods is not this plugin's business.
	if _, st := pl.PreFilter(context.Background(), framework.NewCycleState(), pod("q", claimVol("rwo")), nodes); !st.IsSkip() {
		t.Errorf("RWO claim: %v, want Skip", st)
	}
	_, st := pl.PreFilter(context.Background(), framework.NewCycleState(), pod("q", claimVol("missing")), nodes)
	if !st.Equal(framework.NewStatus(framework.UnschedulableAndUnresolvable, `persistentvolumeclaim "missing" not found`)) {
		t.Errorf("missing claim: %v", st)
	}
}

func TestDiskConflicts(t *testing.T) {
	conflict := framework.NewStatus(framework.Unschedulable, ErrReasonDiskConflict)
	ebs := func(id string, ro bool) v1.Volume {
		return v1.Volume{Name: "e", VolumeSource: v1.VolumeSource{AWSElasticBlockStore: &v1.AWSElasticBlockStoreVolumeSource{VolumeID: id, ReadOnly: ro}}}
	}
	rbd := func(mons []string, image string) v1.Volume {
		return v1.Volume{Name: "r", VolumeSource: v1.VolumeSource{RBD: &v1.RBDVolumeSource{CephMonitors: mons, RBDPool: "p", RBDImage: image}}}
	}
	iscsi := func(iqn string, ro bool) v1.Volume {
		return v1.Volume{Name: "i", VolumeSource: v1.VolumeSource{ISCSI: &v1.ISCSIVolumeSource{IQN: iqn, ReadOnly: ro}}}
	}
	for _, c := range []struct {
		name          string
		existing, new v1.Volume
		want          *framework.Status
	}{
		{"same GCE PD read-write", gce("a", false), gce("a", false), conflict},
		{"same GCE PD both read-only", gce("a", true), gce("a", true), nil},
		{"same GCE PD one read-only", gce("a", true), gce("a", false), conflict},
		{"other GCE PD", gce("a", false), gce("b", false), nil},
		{"same EBS even read-only", ebs("v", true), ebs("v", true), conflict},
		{"RBD with a shared monitor", rbd([]string{"m1", "m2"}, "img"), rbd([]string{"m2"}, "img"), conflict},
		{"RBD other image", rbd([]string{"m1"}, "img"), rbd([]string{"m1"}, "other"), nil},
		{"same ISCSI IQN", iscsi("iqn.x", false), iscsi("iqn.x", true), conflict},
		{"same ISCSI IQN both read-only", iscsi("iqn.x", true), iscsi("iqn.x", true), nil},
	} {
		nodes := []*framework.NodeInfo{node("n1", pod("e", c.existing))}
		pl := setup(t, nodes)
		p := pod("p", c.new)
		cs := framework.NewCycleState()
		if _, st := pl.PreFilter(context.Background(), cs, p, nodes); !st.IsSuccess() {
			t.Fatalf("%s: PreFilter %v", c.name, st)
		}
		if st := pl.Filter(context.Background(), cs, p, nodes[0]); !st.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, st, c.want)
		}
		if st := pl.Filter(context.Background(), cs, p, node("empty")); !st.IsSuccess() {
			t.Errorf("%s on an empty node: %v", c.name, st)
		}
	}
}

func TestQueueingHints(t *testing.T) {
	pl := setup(t, nil)
	p := pod("p", claimVol("c"), gce("a", false))
	logger := framework.Logger(context.Background())
	for _, c := range []struct {
		name string
		fn   framework.QueueingHintFn
		old  any
		new  any
		want framework.QueueingHint
	}{
		{"claim created", pl.isSchedulableAfterPVCAdded, nil, pvc("c"), framework.Queue},
		{"other claim created", pl.isSchedulableAfterPVCAdded, nil, pvc("d"), framework.QueueSkip},
		{"pod with the disk deleted", pl.isSchedulableAfterAssignedPodDeleted, pod("x", gce("a", false)), nil, framework.Queue},
		{"pod with the claim deleted", pl.isSchedulableAfterAssignedPodDeleted, pod("x", claimVol("c")), nil, framework.Queue},
		{"unrelated pod deleted", pl.isSchedulableAfterAssignedPodDeleted, pod("x", gce("b", false)), nil, framework.QueueSkip},
	} {
		if got, err := c.fn(logger, p, c.old, c.new); err != nil || got != c.want {
			t.Errorf("%s: %v %v", c.name, got, err)
		}
	}
}
