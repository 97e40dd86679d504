package rootcapublisher

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	active := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "active"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	going := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "going"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	stale := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stale"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	wrong := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "stale", Name: ConfigMapName, Labels: map[string]string{"keep": "me"}},
		Data: map[string]string{DataKey: "old", "extra": "x"}}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(active, going, stale, wrong).Build()
	r := &Reconciler{Client: c, RootCA: []byte(ca)}
	for _, ns := range []string{"active", "going", "stale", "missing"} {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: ns}}); err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
	}
	for _, ns := range []string{"active", "stale"} {
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ConfigMapName}, cm); err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		if len(cm.Data) != 1 || cm.Data[DataKey] != ca || cm.Annotations[DescriptionAnnotation] != Description {
			t.Errorf("%s: data %v annotations %v", ns, cm.Data, cm.Annotations)
		}
	}
	kept := &corev1.ConfigMap{}
	_ = c.Get(ctx, client.ObjectKey{Namespace: "stale", Name: ConfigMapName}, kept)
	if kept.Labels["keep"] != "me" {
		t.Errorf("the correction dropped the ConfigMap's labels: %v", kept.Labels)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "going", Name: ConfigMapName}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("terminating namespace got the ConfigMap: %v", err)
	}
}
