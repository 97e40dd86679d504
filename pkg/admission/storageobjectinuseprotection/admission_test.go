package storageobjectinuseprotection

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
)

func attrs(obj runtime.Object, resource, subresource string) admission.Attributes {
	m := obj.(metav1.Object)
	return admission.NewAttributesRecord(obj, nil, corev1.SchemeGroupVersion.WithKind("X"), m.GetNamespace(), m.GetName(),
		corev1.Resource(resource).WithVersion("v1"), subresource, admission.Create, &metav1.CreateOptions{}, false, nil)
}

func TestAdmit(t *testing.T) {
	p := New()
	if !p.Handles(admission.Create) || p.Handles(admission.Update) || p.Handles(admission.Delete) {
		t.Error("the plugin acts on Create only")
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv", Finalizers: []string{"other"}}}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}}
	already := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", Finalizers: []string{PVCProtectionFinalizer}}}
	status := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns"}}
	for _, a := range []admission.Attributes{attrs(pv, "persistentvolumes", ""), attrs(pvc, "persistentvolumeclaims", ""),
		attrs(already, "persistentvolumeclaims", ""), attrs(status, "persistentvolumeclaims", "status")} {
		if err := p.Admit(context.Background(), a, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(pv.Finalizers, []string{"other", PVProtectionFinalizer}) {
		t.Errorf("PV finalizers %v", pv.Finalizers)
	}
	if !slices.Equal(pvc.Finalizers, []string{PVCProtectionFinalizer}) || !slices.Equal(already.Finalizers, []string{PVCProtectionFinalizer}) {
		t.Errorf("PVC finalizers %v, %v", pvc.Finalizers, already.Finalizers)
	}
	if len(status.Finalizers) != 0 {
		t.Errorf("a subresource write got %v", status.Finalizers)
	}
	// Other resources are left alone.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}}
	if err := p.Admit(context.Background(), attrs(cm, "configmaps", ""), nil); err != nil || len(cm.Finalizers) != 0 {
		t.Errorf("configmap: %v %v", err, cm.Finalizers)
	}
}
