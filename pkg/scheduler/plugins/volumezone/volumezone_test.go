package volumezone

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

func node(name string, labels map[string]string) *framework.NodeInfo {
	n := framework.NewNodeInfo()
	n.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	return n
}

func podWith(claims ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: c, VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

func boundPVC(name, pv string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: v1.PersistentVolumeClaimSpec{VolumeName: pv}}
}

func classPVC(name, class string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &class}}
}

func pv(name string, labels map[string]string) *v1.PersistentVolume {
	return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func class(name string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, VolumeBindingMode: &mode}
}

func setup(t *testing.T, objs ...runtime.Object) *VolumeZone {
	t.Helper()
	h := testhandle.New(nil)
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
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(context.Background(), nil, h)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*VolumeZone)
}

func TestFilter(t *testing.T) {
	conflict := framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonConflict)
	pl := setup(t,
		boundPVC("zoned", "pv-zoned"), pv("pv-zoned", map[string]string{v1.LabelTopologyZone: "z1__z2"}),
		boundPVC("beta", "pv-beta"), pv("pv-beta", map[string]string{v1.LabelFailureDomainBetaZone: "z1"}),
		boundPVC("region", "pv-region"), pv("pv-region", map[string]string{v1.LabelTopologyRegion: "r1", v1.LabelTopologyZone: "z1"}),
	)
	nodes := map[string]*framework.NodeInfo{
		"z1":     node("z1", map[string]string{v1.LabelTopologyZone: "z1", v1.LabelTopologyRegion: "r1"}),
		"z2":     node("z2", map[string]string{v1.LabelTopologyZone: "z2", v1.LabelTopologyRegion: "r2"}),
		"z3":     node("z3", map[string]string{v1.LabelTopologyZone: "z3"}),
		"nozone": node("nozone", map[string]string{"other": "x"}),
	}
	for _, c := range []struct {
		claim string
		want  map[string]*framework.Status
	}{
		{"zoned", map[string]*framework.Status{"z3": conflict}},
		// The beta label on the PV matches the GA label on the node.
		{"beta", map[string]*framework.Status{"z2": conflict, "z3": conflict}},
		// Both the region and the zone must match; z3 has no region label.
		{"region", map[string]*framework.Status{"z2": conflict, "z3": conflict}},
	} {
		p := podWith(c.claim)
		cs := framework.NewCycleState()
		if _, st := pl.PreFilter(context.Background(), cs, p, nil); !st.IsSuccess() {
			t.Fatalf("%s: %v", c.claim, st)
		}
		for name, n := range nodes {
			if st := pl.Filter(context.Background(), cs, p, n); !st.Equal(c.want[name]) {
				t.Errorf("%s on %s: %v, want %v", c.claim, name, st, c.want[name])
			}
		}
	}
}

func TestPreFilter(t *testing.T) {
	pl := setup(t,
		classPVC("wait", "wffc"), class("wffc", storagev1.VolumeBindingWaitForFirstConsumer),
		classPVC("now", "imm"), class("imm", storagev1.VolumeBindingImmediate),
		boundPVC("nolabels", "pv-plain"), pv("pv-plain", nil),
		boundPVC("gone", "pv-gone"),
		&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "noclass", Namespace: "default"}},
	)
	for _, c := range []struct {
		claim string
		want  *framework.Status
	}{
		{"wait", framework.NewStatus(framework.Skip)},
		{"nolabels", framework.NewStatus(framework.Skip)},
		{"now", framework.NewStatus(framework.UnschedulableAndUnresolvable, "PersistentVolume had no name")},
		{"noclass", framework.NewStatus(framework.UnschedulableAndUnresolvable, "PersistentVolumeClaim had no pv name and storageClass name")},
		{"missing", framework.NewStatus(framework.UnschedulableAndUnresolvable, `persistentvolumeclaim "missing" not found`)},
		{"gone", framework.NewStatus(framework.UnschedulableAndUnresolvable, `persistentvolume "pv-gone" not found`)},
	} {
		if _, st := pl.PreFilter(context.Background(), framework.NewCycleState(), podWith(c.claim), nil); !st.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.claim, st, c.want)
		}
	}
}

func TestLabelZonesToSet(t *testing.T) {
	s, err := labelZonesToSet("a__ b__c")
	if err != nil || s.Len() != 3 || !s.Has("b") {
		t.Errorf("%v %v", s, err)
	}
	if _, err := labelZonesToSet("a____b"); err == nil {
		t.Error("empty zone accepted")
	}
}
