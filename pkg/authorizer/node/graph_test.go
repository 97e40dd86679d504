package node

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// podOn is a pod bound to node using the secret s1 (volume), the
// configmap c1 (env), the claim pvc1 and the service account sa1.
func podOn(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: "sa1",
			Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c1"}, Key: "k"}}}}}},
			Volumes: []corev1.Volume{
				{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s1"}}},
				{Name: "p", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc1"}}},
			},
		},
	}
}

func TestGraphPodRelations(t *testing.T) {
	g := NewGraph()
	g.SetPod(podOn("p1", "n1"))
	for _, tc := range []struct {
		node string
		kind Kind
		name string
		want bool
	}{
		{"n1", Pod, "p1", true},
		{"n1", Secret, "s1", true},
		{"n1", ConfigMap, "c1", true},
		{"n1", PersistentVolumeClaim, "pvc1", true},
		{"n1", ServiceAccount, "sa1", true},
		{"n2", Pod, "p1", false},
		{"n2", Secret, "s1", false},
		{"n1", Secret, "other", false},
		{"n1", ConfigMap, "s1", false}, // the kind matters
	} {
		if got := g.Related(tc.node, tc.kind, "ns", tc.name); got != tc.want {
			t.Errorf("Related(%s, %s, ns/%s) = %v, want %v", tc.node, kindNames[tc.kind], tc.name, got, tc.want)
		}
	}
	if g.Related("n1", Secret, "other-ns", "s1") {
		t.Error("a secret of another namespace is related")
	}
}

func TestGraphSharedObjectsAreCounted(t *testing.T) {
	g := NewGraph()
	g.SetPod(podOn("p1", "n1"))
	g.SetPod(podOn("p2", "n1"))
	g.SetPod(podOn("p3", "n2"))
	g.DeletePod("ns", "p1")
	if !g.Related("n1", Secret, "ns", "s1") {
		t.Fatal("deleting one of two pods on n1 forgot the secret both use")
	}
	g.DeletePod("ns", "p2")
	if g.Related("n1", Secret, "ns", "s1") {
		t.Fatal("the secret is still related to n1 without pods there")
	}
	if !g.Related("n2", Secret, "ns", "s1") {
		t.Fatal("n2's pod lost its secret")
	}
	g.DeletePod("ns", "p3")
	if len(g.used) != 0 || len(g.pods) != 0 {
		t.Fatalf("graph not empty after every pod went: %d used, %d pods", len(g.used), len(g.pods))
	}
}

func TestGraphSetPodReplaces(t *testing.T) {
	g := NewGraph()
	g.SetPod(podOn("p1", "n1"))
	p := podOn("p1", "n1")
	p.Spec.Volumes = p.Spec.Volumes[:1]
	p.Spec.Volumes[0].Secret.SecretName = "s2"
	g.SetPod(p)
	if g.Related("n1", Secret, "ns", "s1") || g.Related("n1", PersistentVolumeClaim, "ns", "pvc1") {
		t.Error("references of the replaced pod are still related")
	}
	if !g.Related("n1", Secret, "ns", "s2") {
		t.Error("the new secret is not related")
	}
	unbound := podOn("p1", "")
	g.SetPod(unbound)
	if g.Related("n1", Pod, "ns", "p1") || g.Related("n1", Secret, "ns", "s2") {
		t.Error("an unbound pod is related")
	}
}

func TestGraphMirrorPodRelatesOnlyItself(t *testing.T) {
	g := NewGraph()
	p := podOn("static-n1", "n1")
	p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
	g.SetPod(p)
	if !g.Related("n1", Pod, "ns", "static-n1") {
		t.Error("the mirror pod is not related to its node")
	}
	for _, k := range []Kind{Secret, ConfigMap, PersistentVolumeClaim, ServiceAccount} {
		if g.Related("n1", k, "ns", map[Kind]string{Secret: "s1", ConfigMap: "c1", PersistentVolumeClaim: "pvc1", ServiceAccount: "sa1"}[k]) {
			t.Errorf("a mirror pod relates a %s to its node", kindNames[k])
		}
	}
}

func TestGraphPersistentVolumes(t *testing.T) {
	g := NewGraph()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{
			ClaimRef: &corev1.ObjectReference{Namespace: "ns", Name: "pvc1"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver:                     "d",
				NodePublishSecretRef:       &corev1.SecretReference{Namespace: "secrets", Name: "publish"},
				ControllerPublishSecretRef: &corev1.SecretReference{Namespace: "secrets", Name: "controller"},
			}},
		},
	}
	g.SetPV(pv)
	if g.Related("n1", PersistentVolume, "", "pv1") {
		t.Fatal("a PV whose claim no pod uses is related")
	}
	g.SetPod(podOn("p1", "n1"))
	if !g.Related("n1", PersistentVolume, "", "pv1") || !g.Related("n1", Secret, "secrets", "publish") {
		t.Fatal("the PV of the pod's claim, or its node-publish secret, is not related")
	}
	if g.Related("n1", Secret, "secrets", "controller") {
		t.Error("the controller's secret of a CSI PV is related to the node")
	}
	if g.Related("n2", PersistentVolume, "", "pv1") {
		t.Error("the PV is related to another node")
	}
	unclaimed := pv.DeepCopy()
	unclaimed.Spec.ClaimRef = nil
	g.SetPV(unclaimed)
	if g.Related("n1", PersistentVolume, "", "pv1") || g.Related("n1", Secret, "secrets", "publish") {
		t.Error("a released PV is still related")
	}
	g.SetPV(pv)
	g.DeletePV("pv1")
	if g.Related("n1", Secret, "secrets", "publish") || len(g.pvsUsing) != 0 {
		t.Error("a deleted PV's secret is still related")
	}
}

func TestGraphPVSecretInClaimNamespace(t *testing.T) {
	g := NewGraph()
	g.SetPod(podOn("p1", "n1"))
	g.SetPV(&corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{
			ClaimRef: &corev1.ObjectReference{Namespace: "ns", Name: "pvc1"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				SecretRef: &corev1.SecretReference{Name: "chap"}}},
		},
	})
	if !g.Related("n1", Secret, "ns", "chap") {
		t.Error("a PV secret without a namespace is not the claim namespace's")
	}
}

func TestGraphClaimsOfPods(t *testing.T) {
	g := NewGraph()
	p := podOn("p1", "n1")
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{
		Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{}}}})
	p.Spec.ResourceClaims = []corev1.PodResourceClaim{
		{Name: "named", ResourceClaimName: ptr.To("gpu")},
		{Name: "templated", ResourceClaimTemplateName: ptr.To("tmpl")},
		{Name: "pending", ResourceClaimTemplateName: ptr.To("tmpl")},
	}
	p.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "templated", ResourceClaimName: ptr.To("p1-templated-xyz")}}
	p.Status.ExtendedResourceClaimStatus = &corev1.PodExtendedResourceClaimStatus{ResourceClaimName: "p1-extended"}
	g.SetPod(p)
	for _, tc := range []struct {
		kind Kind
		name string
	}{{PersistentVolumeClaim, "p1-scratch"}, {ResourceClaim, "gpu"}, {ResourceClaim, "p1-templated-xyz"}, {ResourceClaim, "p1-extended"}} {
		if !g.Related("n1", tc.kind, "ns", tc.name) {
			t.Errorf("%s %s is not related", kindNames[tc.kind], tc.name)
		}
	}
	if g.Related("n1", ResourceClaim, "ns", "tmpl") {
		t.Error("a claim template's name is related")
	}
}

func TestGraphNodeOf(t *testing.T) {
	g := NewGraph()
	g.SetNodeOf(VolumeAttachment, "va1", "n1")
	if !g.Related("n1", VolumeAttachment, "", "va1") || g.Related("n2", VolumeAttachment, "", "va1") {
		t.Fatal("the attachment is not n1's alone")
	}
	g.SetNodeOf(VolumeAttachment, "va1", "")
	if g.Related("n1", VolumeAttachment, "", "va1") {
		t.Fatal("a forgotten attachment is related")
	}
	if g.Related("", VolumeAttachment, "", "unknown") {
		t.Fatal("an unknown attachment is related to the empty node")
	}
}
