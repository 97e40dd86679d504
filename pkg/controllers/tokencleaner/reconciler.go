// Package tokencleaner deletes expired bootstrap token Secrets of
// kube-system, as upstream's tokencleaner controller: a Secret of type
// bootstrap.kubernetes.io/token whose expiration has passed is deleted
// (with its UID as precondition), one that will expire is looked at again
// then.
package tokencleaner

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/skiff-dev/skiff/pkg/bootstraptoken"
)

// Reconciler deletes expired bootstrap token Secrets.
type Reconciler struct {
	// Client reads through the manager's cache and deletes through the API.
	Client client.Client
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// SetupWithManager registers the reconciler for kube-system's bootstrap
// token Secrets.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	isToken := predicate.NewPredicateFuncs(func(obj client.Object) bool {
		s, ok := obj.(*corev1.Secret)
		return ok && s.Namespace == bootstraptoken.Namespace && s.Type == bootstraptoken.SecretType
	})
	return ctrl.NewControllerManagedBy(mgr).Named("tokencleaner").
		For(&corev1.Secret{}, builder.WithPredicates(isToken)).
		Complete(r)
}

// Reconcile deletes the Secret if it has expired, else comes back when it
// expires.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, req.NamespacedName, secret); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if secret.Type != bootstraptoken.SecretType || secret.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	remaining, expired := bootstraptoken.Expiration(secret, now())
	if !expired {
		if remaining > 0 {
			return ctrl.Result{RequeueAfter: remaining}, nil
		}
		return ctrl.Result{}, nil
	}
	log.FromContext(ctx).V(2).Info("Deleting expired bootstrap token secret", "secret", req.NamespacedName)
	uid := secret.UID
	err := r.Client.Delete(ctx, secret, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}
