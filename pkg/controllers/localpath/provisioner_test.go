package localpath

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestVolumeFor(t *testing.T) {
	nodes := []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Labels: map[string]string{corev1.LabelHostname: "host-1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bare"}},
	}
	r := &Reconciler{Client: fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(nodes[0], nodes[1]).Build(), Path: "/var/lib/skiff/storage"}
	claim := func(node string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "u1", Annotations: map[string]string{}},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modes,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Gi")}}}}
		if node != "" {
			c.Annotations["volume.kubernetes.io/selected-node"] = node
		}
		return c
	}
	class := DefaultClass()
	pv, err := r.volumeFor(context.Background(), claim("labelled", corev1.ReadWriteOnce), class, "pvc-u1")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.HostPath.Path != "/var/lib/skiff/storage/pvc-u1" || *pv.Spec.HostPath.Type != corev1.HostPathDirectoryOrCreate ||
		pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != "host-1" ||
		pv.Spec.ClaimRef.UID != "u1" || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
		pv.Annotations["pv.kubernetes.io/provisioned-by"] != Provisioner {
		t.Errorf("PV %+v", pv.Spec)
	}
	// No hostname label: the node's name; the class's nodePath and Retain.
	retain := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "keep"}, Provisioner: Provisioner,
		Parameters: map[string]string{NodePathParameter: "/data"}, ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimRetain)}
	pv, err = r.volumeFor(context.Background(), claim("bare", corev1.ReadWriteOncePod), retain, "pvc-u1")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.HostPath.Path != "/data/pvc-u1" || pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != "bare" ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.StorageClassName != "keep" {
		t.Errorf("PV %+v", pv.Spec)
	}
	for _, tc := range []struct {
		claim *corev1.PersistentVolumeClaim
		class *storagev1.StorageClass
		want  string
	}{
		{claim("", corev1.ReadWriteOnce), class, "no node was specified"},
		{claim("labelled", corev1.ReadWriteMany), class, "only ReadWriteOnce and ReadWriteOncePod"},
		{claim("gone", corev1.ReadWriteOnce), class, "failed to get node gone"},
		{claim("labelled", corev1.ReadWriteOnce), &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "rel"}, Parameters: map[string]string{NodePathParameter: "rel/dir"}}, "not an absolute path"},
	} {
		if _, err := r.volumeFor(context.Background(), tc.claim, tc.class, "pvc-u1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
