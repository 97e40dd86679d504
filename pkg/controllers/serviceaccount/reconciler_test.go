package serviceaccount

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

func namespace(name string, phase corev1.NamespacePhase) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: phase}}
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
		WithObjects(namespace("active", corev1.NamespaceActive), namespace("going", corev1.NamespaceTerminating)).Build()
	r := &Reconciler{Client: c, Names: []string{DefaultName}}
	for _, ns := range []string{"active", "going", "missing"} {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: ns}}); err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "active", Name: "default"}, &corev1.ServiceAccount{}); err != nil {
		t.Errorf("active namespace: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "going", Name: "default"}, &corev1.ServiceAccount{}); !apierrors.IsNotFound(err) {
		t.Errorf("terminating namespace got a ServiceAccount: %v", err)
	}
	// Idempotent: an existing ServiceAccount is left alone.
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "active"}}); err != nil {
		t.Fatal(err)
	}
}
