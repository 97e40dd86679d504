package persistentvolume

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func pv(name, size string, phase corev1.PersistentVolumePhase, labels map[string]string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:   corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}, AccessModes: modes},
		Status: corev1.PersistentVolumeStatus{Phase: phase}}
}

// TestFindBestMatch: upstream's order: volumes offering the fewest extra
// access modes first, the smallest that fits of those; Available only;
// the selector; a volume pre-bound to the claim wins; with
// WaitForFirstConsumer only the pre-bound one.
func TestFindBestMatch(t *testing.T) {
	rwo, rox, rwx := corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "u1"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(""), AccessModes: []corev1.PersistentVolumeAccessMode{rwo},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	for _, tc := range []struct {
		name     string
		pvs      []*corev1.PersistentVolume
		selector map[string]string
		delay    bool
		want     string
	}{
		{"fewest modes before smallest", []*corev1.PersistentVolume{
			pv("multi-small", "1Gi", corev1.VolumeAvailable, nil, rwo, rox, rwx),
			pv("rwo-big", "5Gi", corev1.VolumeAvailable, nil, rwo),
			pv("rwo-mid", "2Gi", corev1.VolumeAvailable, nil, rwo),
		}, nil, false, "rwo-mid"},
		{"too small or wrong modes", []*corev1.PersistentVolume{
			pv("small", "500Mi", corev1.VolumeAvailable, nil, rwo),
			pv("rox", "2Gi", corev1.VolumeAvailable, nil, rox),
		}, nil, false, ""},
		{"only Available", []*corev1.PersistentVolume{
			pv("released", "1Gi", corev1.VolumeReleased, nil, rwo),
			pv("avail", "3Gi", corev1.VolumeAvailable, nil, rwo),
		}, nil, false, "avail"},
		{"selector", []*corev1.PersistentVolume{
			pv("hdd", "1Gi", corev1.VolumeAvailable, map[string]string{"disk": "hdd"}, rwo),
			pv("ssd", "4Gi", corev1.VolumeAvailable, map[string]string{"disk": "ssd"}, rwo),
		}, map[string]string{"disk": "ssd"}, false, "ssd"},
		{"delay binding: none but pre-bound", []*corev1.PersistentVolume{
			pv("avail", "1Gi", corev1.VolumeAvailable, nil, rwo),
		}, nil, true, ""},
	} {
		c := claim.DeepCopy()
		if tc.selector != nil {
			c.Spec.Selector = &metav1.LabelSelector{MatchLabels: tc.selector}
		}
		b := fake.NewClientBuilder().WithScheme(scheme.Scheme)
		for _, p := range tc.pvs {
			b = b.WithObjects(p)
		}
		ctrl := &Controller{Client: b.Build()}
		got, err := ctrl.findBestMatch(context.Background(), c, tc.delay)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, name, tc.want)
		}
	}
	// Pre-bound to the claim: chosen even with delay binding, over a
	// smaller free one.
	pre := pv("pre", "9Gi", corev1.VolumeAvailable, nil, rwo)
	pre.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", Name: "c"}
	ctrl := &Controller{Client: fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(pre, pv("free", "1Gi", corev1.VolumeAvailable, nil, rwo)).Build()}
	if got, err := ctrl.findBestMatch(context.Background(), claim, true); err != nil || got == nil || got.Name != "pre" {
		t.Errorf("pre-bound: %v %v", got, err)
	}
}
