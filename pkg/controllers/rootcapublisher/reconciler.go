// Package rootcapublisher publishes the cluster CA bundle in every
// namespace as the ConfigMap kube-root-ca.crt (key ca.crt), restoring it
// when it is changed or deleted, as upstream's root-ca-cert-publisher. Pods
// read it through their projected kube-api-access volume.
package rootcapublisher

import (
	"context"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const (
	// ConfigMapName is the ConfigMap holding the CA bundle.
	ConfigMapName = "kube-root-ca.crt"
	// DataKey is its key.
	DataKey = "ca.crt"
	// DescriptionAnnotation and Description are upstream's note on it.
	DescriptionAnnotation = "kubernetes.io/description"
	Description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. " +
		"No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Reconciler keeps kube-root-ca.crt equal to RootCA in every namespace.
type Reconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	// RootCA is the PEM bundle to publish.
	RootCA []byte
}

// SetupWithManager registers the reconciler for Namespaces and for changes
// to the ConfigMaps it keeps.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ours := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(e event.UpdateEvent) bool { return e.ObjectNew.GetName() == ConfigMapName },
		DeleteFunc:  func(e event.DeleteEvent) bool { return e.Object.GetName() == ConfigMapName },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).Named("root-ca-cert-publisher").
		For(&corev1.Namespace{}).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(namespaceOf), builder.WithPredicates(ours)).
		Complete(r)
}

func namespaceOf(_ context.Context, obj client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: obj.GetNamespace()}}}
}

// Reconcile creates or corrects one namespace's ConfigMap.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: req.Name}, ns); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ns.Status.Phase == corev1.NamespaceTerminating || !ns.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	data := map[string]string{DataKey: string(r.RootCA)}
	cm := &corev1.ConfigMap{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: ConfigMapName}, cm)
	switch {
	case apierrors.IsNotFound(err):
		err = r.Client.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: ConfigMapName,
				Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data: data,
		})
		// Nothing to publish in a namespace that is gone or going.
		if apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	case err != nil:
		return ctrl.Result{}, err
	}
	if maps.Equal(cm.Data, data) && cm.Annotations[DescriptionAnnotation] != "" {
		return ctrl.Result{}, nil
	}
	cm = cm.DeepCopy()
	cm.Data = data
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[DescriptionAnnotation] = Description
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Update(ctx, cm))
}
