package defaultstorageclass

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func class(name string, created time.Time, ann map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created), Annotations: ann}}
}

func plugin(t *testing.T, classes ...*storagev1.StorageClass) *Plugin {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, c := range classes {
		if err := idx.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	return &Plugin{Handler: admission.NewHandler(admission.Create), classes: storagelisters.NewStorageClassLister(idx)}
}

func admit(t *testing.T, p *Plugin, pvc *corev1.PersistentVolumeClaim) {
	t.Helper()
	a := admission.NewAttributesRecord(pvc, nil, corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"), "ns", pvc.Name,
		corev1.Resource("persistentvolumeclaims").WithVersion("v1"), "", admission.Create, &metav1.CreateOptions{}, false, nil)
	if err := p.Admit(context.Background(), a, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultClass(t *testing.T) {
	now := time.Now()
	def := map[string]string{IsDefaultAnnotation: "true"}
	p := plugin(t, class("plain", now, nil), class("old", now.Add(-time.Hour), def), class("b", now, def),
		class("a", now, map[string]string{BetaIsDefaultAnnotation: "true"}), class("off", now.Add(time.Hour), map[string]string{IsDefaultAnnotation: "false"}))
	// The newest default, then the first by name.
	none := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "none"}}
	admit(t, p, none)
	if got := ptr.Deref(none.Spec.StorageClassName, "<nil>"); got != "a" {
		t.Errorf("class-less claim got %q, want a", got)
	}
	empty := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "empty"}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("")}}
	admit(t, p, empty)
	beta := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "beta", Annotations: map[string]string{corev1.BetaStorageClassAnnotation: "plain"}}}
	admit(t, p, beta)
	if *empty.Spec.StorageClassName != "" || beta.Spec.StorageClassName != nil {
		t.Errorf("claims with a class changed: %v, %v", empty.Spec.StorageClassName, beta.Spec.StorageClassName)
	}
	// No default: nothing set.
	p = plugin(t, class("plain", now, nil))
	none = &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "none"}}
	admit(t, p, none)
	if none.Spec.StorageClassName != nil {
		t.Errorf("without a default class the claim got %q", *none.Spec.StorageClassName)
	}
}
