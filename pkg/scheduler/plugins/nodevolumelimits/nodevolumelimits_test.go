package nodevolumelimits

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

const driver = "ebs.csi.aws.com"

func podWith(name string, claims ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)}}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: c, VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
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

func csiNode(name string, count int32) *storagev1.CSINode {
	return &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
		{Name: driver, NodeID: name, Allocatable: &storagev1.VolumeNodeResources{Count: &count}},
		{Name: "unlimited.csi", NodeID: name},
	}}}
}

// csiClaim: claim bound to a CSI PV of drv with the handle vol-<name>.
func csiClaim(name, drv string) []runtime.Object {
	return []runtime.Object{
		&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: v1.PersistentVolumeClaimSpec{VolumeName: "pv-" + name}},
		&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + name}, Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			CSI: &v1.CSIPersistentVolumeSource{Driver: drv, VolumeHandle: "vol-" + name}}}},
	}
}

func setup(t *testing.T, objs ...runtime.Object) *CSILimits {
	t.Helper()
	h := testhandle.New(nil)
	p, err := New(context.Background(), nil, h)
	if err != nil {
		t.Fatal(err)
	}
	f := h.Informers
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *v1.PersistentVolumeClaim:
			err = f.Core().V1().PersistentVolumeClaims().Informer().GetIndexer().Add(o)
		case *v1.PersistentVolume:
			err = f.Core().V1().PersistentVolumes().Informer().GetIndexer().Add(o)
		case *storagev1.StorageClass:
			err = f.Storage().V1().StorageClasses().Informer().GetIndexer().Add(o)
		case *storagev1.CSINode:
			err = f.Storage().V1().CSINodes().Informer().GetIndexer().Add(o)
		case *storagev1.VolumeAttachment:
			err = f.Storage().V1().VolumeAttachments().Informer().GetIndexer().Add(o)
		default:
			err = fmt.Errorf("unexpected %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return p.(*CSILimits)
}

func TestFilter(t *testing.T) {
	var objs []runtime.Object
	for _, c := range []string{"a", "b", "c", "d"} {
		objs = append(objs, csiClaim(c, driver)...)
	}
	objs = append(objs, csiClaim("other", "unlimited.csi")...)
	sc := "ebs"
	objs = append(objs,
		csiNode("n1", 2), csiNode("n3", 3),
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "ebs"}, Provisioner: driver},
		&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "unbound", Namespace: "default"}, Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &sc}},
		// n3 has one more volume attached that no pod on it uses.
		&storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "va"}, Spec: storagev1.VolumeAttachmentSpec{
			Attacher: driver, NodeName: "n3", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr("pv-d")}}},
	)
	pl := setup(t, objs...)
	exceeded := framework.NewStatus(framework.Unschedulable, ErrReasonMaxVolumeCountExceeded)
	n1 := node("n1", podWith("x", "a"), podWith("y", "b")) // at its limit of 2
	n2 := node("n2", podWith("x2", "a"), podWith("y2", "b"))
	n3 := node("n3", podWith("x3", "a")) // 1 in use + 1 attached, of 3
	for _, c := range []struct {
		name string
		pod  *v1.Pod
		ni   *framework.NodeInfo
		want *framework.Status
	}{
		{"one more volume over the limit", podWith("p", "c"), n1, exceeded},
		{"a volume the node already has", podWith("p", "a"), n1, nil},
		{"another driver's volume", podWith("p", "other"), n1, nil},
		{"a claim still to be provisioned counts", podWith("p", "unbound"), n1, exceeded},
		{"no CSINode: no limit", podWith("p", "c", "d"), n2, nil},
		{"attachments count", podWith("p", "b"), n3, nil},
		{"attachments count: two more is too many", podWith("p", "b", "c"), n3, exceeded},
		// As upstream, only volumes of the node's pods are taken off the new ones.
		{"an attachment without a pod still counts its volume as new", podWith("p", "b", "d"), n3, exceeded},
		{"missing claim", podWith("p", "missing"), n1, framework.NewStatus(framework.UnschedulableAndUnresolvable, `looking up PVC default/missing: persistentvolumeclaim "missing" not found`)},
	} {
		if got := pl.Filter(context.Background(), framework.NewCycleState(), c.pod, c.ni); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if _, st := pl.PreFilter(context.Background(), framework.NewCycleState(), podWith("p"), nil); !st.IsSkip() {
		t.Errorf("no claims: %v, want Skip", st)
	}
}

func ptr[T any](v T) *T { return &v }
