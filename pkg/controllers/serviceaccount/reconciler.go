// Package serviceaccount keeps the `default` ServiceAccount in every active
// namespace, creating it with the namespace and again whenever it is
// deleted, as upstream's serviceaccount controller.
package serviceaccount

import (
	"context"

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

// DefaultName is the ServiceAccount every namespace gets.
const DefaultName = "default"

// Reconciler ensures the ServiceAccounts named Names (default: `default`)
// exist in every active namespace.
type Reconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	Names  []string
}

// SetupWithManager registers the reconciler for Namespaces and for the
// deletion of the ServiceAccounts it keeps.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if len(r.Names) == 0 {
		r.Names = []string{DefaultName}
	}
	kept := func(obj client.Object) bool {
		for _, n := range r.Names {
			if obj.GetName() == n {
				return true
			}
		}
		return false
	}
	onDelete := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		DeleteFunc:  func(e event.DeleteEvent) bool { return kept(e.Object) },
	}
	return ctrl.NewControllerManagedBy(mgr).Named("serviceaccount").
		For(&corev1.Namespace{}).
		Watches(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(namespaceOf), builder.WithPredicates(onDelete)).
		Complete(r)
}

func namespaceOf(_ context.Context, obj client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: obj.GetNamespace()}}}
}

// Reconcile creates the missing ServiceAccounts of one namespace.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: req.Name}, ns); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ns.Status.Phase != corev1.NamespaceActive || !ns.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	for _, name := range r.Names {
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name}, &corev1.ServiceAccount{})
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		err = r.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name}})
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
		case apierrors.IsNotFound(err), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			// The namespace went away or is going: nothing to keep.
			return ctrl.Result{}, nil
		default:
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}
