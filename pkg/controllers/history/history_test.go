package history

import (
	"context"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestTemplatePatch: upstream's revision data, the template replacing
// the whole of it, keys sorted.
func TestTemplatePatch(t *testing.T) {
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{"a": "b"}},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx<1>"}}},
		}},
	}
	got, err := TemplatePatch(set)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx\u003c1\u003e","name":"nginx","resources":{}}]}}}}`
	if string(got) != want {
		t.Errorf("patch\n%s\nwant\n%s", got, want)
	}
	cr := New(set, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), set.Spec.Template.Labels, got, 1, ptr.To[int32](0))
	if cr.Name != "web-"+cr.Labels[ControllerRevisionHashLabel] || cr.Labels["app"] != "web" || cr.Revision != 1 || !metav1.IsControlledBy(cr, set) {
		t.Errorf("revision %s labels %v revision %d owners %v", cr.Name, cr.Labels, cr.Revision, cr.OwnerReferences)
	}
	if other := Hash(cr, ptr.To[int32](1)); other == cr.Labels[ControllerRevisionHashLabel] {
		t.Errorf("the collision count does not change the hash %s", other)
	}
}

// TestClaim: matching orphans adopted (after one recheck), controlled
// objects that stop matching released, others' objects left alone.
func TestClaim(t *testing.T) {
	owner := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "owner"}}
	kind := appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	pod := func(name string, lbl string, ref *metav1.OwnerReference) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": lbl}}}
		if ref != nil {
			p.OwnerReferences = []metav1.OwnerReference{*ref}
		}
		return p
	}
	mine := metav1.NewControllerRef(owner, kind)
	theirs := &metav1.OwnerReference{Kind: "ReplicaSet", Name: "rs", UID: "other", Controller: ptr.To(true)}
	pods := []*corev1.Pod{pod("kept", "web", mine), pod("released", "db", mine), pod("orphan", "web", nil), pod("skipped", "web", nil), pod("theirs", "web", theirs)}
	var patched []string
	rechecks := 0
	c := Claimer{Owner: owner, Kind: kind, Selector: labels.SelectorFromSet(labels.Set{"app": "web"}),
		Recheck: func(context.Context) error { rechecks++; return nil },
		Patch: func(_ context.Context, o client.Object, patch []byte) error {
			patched = append(patched, o.GetName()+" "+string(patch))
			return nil
		}}
	got, err := Claim(context.Background(), c, pods, func(p *corev1.Pod) bool { return p.Name != "skipped" })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"kept", "orphan"}) || rechecks != 1 {
		t.Errorf("claimed %v after %d rechecks, want kept, orphan after 1", names, rechecks)
	}
	want := []string{
		`released {"metadata":{"ownerReferences":[{"$patch":"delete","uid":"owner"}],"uid":"uid-released"}}`,
		`orphan {"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"StatefulSet","name":"web","uid":"owner","controller":true,"blockOwnerDeletion":true}],"uid":"uid-orphan"}}`,
	}
	if !slices.Equal(patched, want) {
		t.Errorf("patches:\n%v\nwant\n%v", patched, want)
	}
}
