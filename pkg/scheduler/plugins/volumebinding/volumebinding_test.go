package volumebinding

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

func node(name string) *framework.NodeInfo {
	n := framework.NewNodeInfo()
	n.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}}})
	return n
}

func podWith(claims ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-p"}}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: c, VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

func claim(name, class, volume string, bound bool) *v1.PersistentVolumeClaim {
	c := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: v1.PersistentVolumeClaimSpec{VolumeName: volume}}
	if class != "" {
		c.Spec.StorageClassName = &class
	}
	if bound {
		c.Annotations = map[string]string{storagehelpers.AnnBindCompleted: "yes"}
		c.Status.Phase = v1.ClaimBound
	}
	return c
}

// localPV: a PV only node can reach.
func localPV(name, node string) *v1.PersistentVolume {
	return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.PersistentVolumeSpec{NodeAffinity: &v1.VolumeNodeAffinity{
		Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{
			{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{node}}}}}}}}}
}

func class(name string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, VolumeBindingMode: &mode}
}

func setup(t *testing.T, objs ...runtime.Object) *VolumeBinding {
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
	return p.(*VolumeBinding)
}

func TestVolumeBinding(t *testing.T) {
	deleting := claim("deleting", "", "pv1", true)
	deleting.DeletionTimestamp = &metav1.Time{}
	lost := claim("lost", "", "pv-x", true)
	lost.Status.Phase = v1.ClaimLost
	pl := setup(t,
		claim("local", "", "pv-n1", true), localPV("pv-n1", "n1"),
		claim("dangling", "", "pv-none", true),
		claim("wait", "wffc", "", false), class("wffc", storagev1.VolumeBindingWaitForFirstConsumer),
		claim("now", "imm", "", false), class("imm", storagev1.VolumeBindingImmediate),
		claim("prebound", "wffc", "pv-n1", false),
		deleting, lost,
	)
	unresolvable := func(msg string) *framework.Status {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, msg)
	}
	ephemeral := podWith()
	ephemeral.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}}}
	nodes := []*framework.NodeInfo{node("n1"), node("n2")}
	for _, c := range []struct {
		name      string
		pod       *v1.Pod
		preFilter *framework.Status
		filter    map[string]*framework.Status
	}{
		{"no claims", podWith(), framework.NewStatus(framework.Skip), nil},
		{"missing claim", podWith("missing"), unresolvable(`persistentvolumeclaim "missing" not found`), nil},
		{"claim being deleted", podWith("deleting"), unresolvable(`persistentvolumeclaim "deleting" is being deleted`), nil},
		{"claim lost", podWith("lost"), unresolvable(`persistentvolumeclaim "lost" bound to non-existent persistentvolume "pv-x"`), nil},
		{"ephemeral claim not created yet", ephemeral, unresolvable(`waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch"`), nil},
		{"unbound immediate claim", podWith("now"), unresolvable(ErrReasonUnboundImmediate), nil},
		{"pre-bound claim not yet bound", podWith("prebound"), unresolvable(ErrReasonUnboundImmediate), nil},
		{"bound to a local PV", podWith("local"), nil, map[string]*framework.Status{"n2": unresolvable(ErrReasonNodeConflict)}},
		{"bound to a missing PV", podWith("dangling"), nil, map[string]*framework.Status{"n1": unresolvable(ErrReasonPVNotExist), "n2": unresolvable(ErrReasonPVNotExist)}},
		{"WaitForFirstConsumer without PVs or provisioner", podWith("wait"), nil, map[string]*framework.Status{"n1": unresolvable(ErrReasonBindConflict), "n2": unresolvable(ErrReasonBindConflict)}},
		{"bound and unbindable together: both reasons", podWith("wait", "local"), nil, map[string]*framework.Status{
			"n1": unresolvable(ErrReasonBindConflict),
			"n2": framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeConflict, ErrReasonBindConflict)}},
	} {
		cs := framework.NewCycleState()
		_, st := pl.PreFilter(context.Background(), cs, c.pod, nodes)
		if !st.Equal(c.preFilter) {
			t.Errorf("%s: PreFilter %v, want %v", c.name, st, c.preFilter)
			continue
		}
		if c.filter == nil {
			continue
		}
		for _, n := range nodes {
			if got, want := pl.Filter(context.Background(), cs, c.pod, n), c.filter[n.Node().Name]; !got.Equal(want) {
				t.Errorf("%s on %s: %v, want %v", c.name, n.Node().Name, got, want)
			}
		}
	}
}

func sized(c *v1.PersistentVolumeClaim, size string) *v1.PersistentVolumeClaim {
	c.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	c.Spec.Resources.Requests = v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}
	return c
}

// availablePV: an Available local PV of class on node.
func availablePV(name, class, node, size string) *v1.PersistentVolume {
	pv := localPV(name, node)
	pv.Spec.StorageClassName = class
	pv.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	pv.Spec.Capacity = v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}
	pv.Status.Phase = v1.VolumeAvailable
	return pv
}

// TestDelayBinding: unbound WaitForFirstConsumer claims are bindable where
// an available PV matches them or their class can provision.
func TestDelayBinding(t *testing.T) {
	local := class("local", storagev1.VolumeBindingWaitForFirstConsumer)
	local.Provisioner = storagehelpers.NotSupportedProvisioner
	csi := class("csi", storagev1.VolumeBindingWaitForFirstConsumer)
	csi.Provisioner = "example.com/csi"
	csi.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{
		{Key: v1.LabelHostname, Values: []string{"n1", "n3"}}}}}
	selected := sized(claim("selected", "csi", "", false), "1Gi")
	selected.Annotations = map[string]string{storagehelpers.AnnSelectedNode: "n3"}
	pl := setup(t, local, csi,
		sized(claim("small", "local", "", false), "5Gi"), sized(claim("small2", "local", "", false), "5Gi"),
		sized(claim("huge", "local", "", false), "50Gi"),
		sized(claim("dyn", "csi", "", false), "1Gi"), selected,
		availablePV("pv-n1", "local", "n1", "10Gi"), availablePV("pv-n2-big", "local", "n2", "100Gi"),
	)
	bind := framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonBindConflict)
	nodes := []*framework.NodeInfo{node("n1"), node("n2"), node("n3")}
	for _, c := range []struct {
		name string
		pod  *v1.Pod
		want map[string]*framework.Status
	}{
		{"a local PV where it is", podWith("small"), map[string]*framework.Status{"n3": bind}},
		{"too small PVs do not match", podWith("huge"), map[string]*framework.Status{"n1": bind, "n3": bind}},
		{"one PV for two claims is not enough", podWith("small", "small2"), map[string]*framework.Status{"n1": bind, "n2": bind, "n3": bind}},
		{"provisioning within allowedTopologies", podWith("dyn"), map[string]*framework.Status{"n2": bind}},
		{"selected-node annotation", podWith("selected"), map[string]*framework.Status{"n1": bind, "n2": bind}},
	} {
		cs := framework.NewCycleState()
		if _, st := pl.PreFilter(context.Background(), cs, c.pod, nodes); !st.IsSuccess() {
			t.Fatalf("%s: PreFilter %v", c.name, st)
		}
		for _, n := range nodes {
			if got, want := pl.Filter(context.Background(), cs, c.pod, n), c.want[n.Node().Name]; !got.Equal(want) {
				t.Errorf("%s on %s: %v, want %v", c.name, n.Node().Name, got, want)
			}
		}
	}
}

func TestArgs(t *testing.T) {
	h := testhandle.New(nil)
	neg := int64(-1)
	if _, err := New(context.Background(), &configv1.VolumeBindingArgs{BindTimeoutSeconds: &neg}, h); err == nil {
		t.Error("negative bindTimeoutSeconds accepted")
	}
}
