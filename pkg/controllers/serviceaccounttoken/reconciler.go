// Package serviceaccounttoken fills in the Secrets of type
// kubernetes.io/service-account-token, as upstream's tokens controller
// (serviceaccount-token-controller): a Secret annotated
// kubernetes.io/service-account.name gets a legacy token of that
// ServiceAccount, the root CA and the namespace, and the
// kubernetes.io/service-account.uid annotation; a Secret whose
// ServiceAccount does not exist (or has another UID) is deleted, so the
// token Secrets of a deleted ServiceAccount go with it; a deleted token
// Secret is dropped from its ServiceAccount's `secrets`.
package serviceaccounttoken

import (
	"bytes"
	"context"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/serviceaccount"
)

// concurrentSyncs is kube-controller-manager's
// --concurrent-serviceaccount-token-syncs default.
const concurrentSyncs = 5

// Reconciler keeps the token Secrets.
type Reconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	// APIReader reads the API itself, for a ServiceAccount the cache does
	// not hold yet; nil: Client.
	APIReader client.Reader
	// Generator signs the tokens; its issuer is serviceaccount.LegacyIssuer.
	Generator serviceaccount.Generator
	// RootCA is written as ca.crt (and rewritten when it differs); empty:
	// none.
	RootCA []byte

	mu sync.Mutex
	// gone holds, for each token Secret seen deleted and not reconciled
	// since, the ServiceAccount it named: the deleted object is the only
	// place that says so.
	gone map[types.NamespacedName]saRef
}

type saRef struct {
	name string
	uid  types.UID
}

func isToken(obj client.Object) bool {
	s, ok := obj.(*corev1.Secret)
	return ok && s.Type == corev1.SecretTypeServiceAccountToken
}

// SetupWithManager registers the reconciler for token Secrets and for the
// ServiceAccounts they name.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.gone = map[types.NamespacedName]saRef{}
	if r.APIReader == nil {
		r.APIReader = r.Client
	}
	enqueue := func(obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if isToken(obj) {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
	}
	secrets := handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.ObjectNew, q)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if isToken(e.Object) {
				r.SecretDeleted(e.Object.(*corev1.Secret))
			}
			enqueue(e.Object, q)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q)
		},
	}
	return ctrl.NewControllerManagedBy(mgr).Named("serviceaccount-token").
		Watches(&corev1.Secret{}, secrets).
		// A deleted ServiceAccount takes its tokens along. (A Secret that
		// names a ServiceAccount yet to be created is deleted at once, as
		// upstream's: creations need no watch.)
		Watches(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.tokensOf), builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(event.CreateEvent) bool { return false },
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrentSyncs}).
		Complete(r)
}

// SecretDeleted records the ServiceAccount a deleted token Secret named.
func (r *Reconciler) SecretDeleted(secret *corev1.Secret) {
	name := secret.Annotations[corev1.ServiceAccountNameKey]
	if name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone == nil {
		r.gone = map[types.NamespacedName]saRef{}
	}
	r.gone[client.ObjectKeyFromObject(secret)] = saRef{name: name, uid: types.UID(secret.Annotations[corev1.ServiceAccountUIDKey])}
}

// tokensOf are the cached token Secrets naming the ServiceAccount.
func (r *Reconciler) tokensOf(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &corev1.SecretList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		log.FromContext(ctx).Error(err, "Listing the token secrets of a service account", "serviceAccount", klog.KObj(obj))
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		s := &list.Items[i]
		if isToken(s) && s.Annotations[corev1.ServiceAccountNameKey] == obj.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(s)})
		}
	}
	return reqs
}

// Reconcile brings one token Secret in line with its ServiceAccount.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, req.NamespacedName, secret); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, r.removeReference(ctx, req.NamespacedName)
	}
	r.mu.Lock()
	delete(r.gone, req.NamespacedName)
	r.mu.Unlock()
	saName := secret.Annotations[corev1.ServiceAccountNameKey]
	if secret.Type != corev1.SecretTypeServiceAccountToken || saName == "" {
		return ctrl.Result{}, nil
	}
	sa, err := r.serviceAccount(ctx, secret.Namespace, saName, types.UID(secret.Annotations[corev1.ServiceAccountUIDKey]))
	if err != nil {
		return ctrl.Result{}, err
	}
	if sa == nil {
		logger.V(4).Info("Service account does not exist, deleting token", "secret", klog.KObj(secret), "serviceAccount", klog.KRef(secret.Namespace, saName))
		uid := secret.UID
		err := r.Client.Delete(ctx, secret, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		// Gone already, or (UID precondition) another Secret by now.
		if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.populate(ctx, sa, secret)
}

// serviceAccount is the ServiceAccount of that name (and UID, unless
// empty): from the cache, else from the API, which holds a ServiceAccount
// created just before its Secret before the cache does; nil if none.
func (r *Reconciler) serviceAccount(ctx context.Context, namespace, name string, uid types.UID) (*corev1.ServiceAccount, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	for _, reader := range []client.Reader{r.Client, r.APIReader} {
		sa := &corev1.ServiceAccount{}
		err := reader.Get(ctx, key, sa)
		switch {
		case err == nil:
			if uid == "" || uid == sa.UID {
				return sa, nil
			}
		case !apierrors.IsNotFound(err):
			return nil, err
		}
	}
	return nil, nil
}

// populate writes what the Secret lacks: the CA (or the current one), the
// namespace, a token; and the ServiceAccount's annotations with them. The
// update carries the cached resourceVersion: if the Secret changed since,
// it fails with a conflict and the change's event brings the Secret back.
func (r *Reconciler) populate(ctx context.Context, sa *corev1.ServiceAccount, secret *corev1.Secret) error {
	needsCA := len(r.RootCA) > 0 && !bytes.Equal(secret.Data[corev1.ServiceAccountRootCAKey], r.RootCA)
	needsNamespace := len(secret.Data[corev1.ServiceAccountNamespaceKey]) == 0
	needsToken := len(secret.Data[corev1.ServiceAccountTokenKey]) == 0
	if !needsCA && !needsNamespace && !needsToken {
		return nil
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if needsCA {
		secret.Data[corev1.ServiceAccountRootCAKey] = r.RootCA
	}
	if needsNamespace {
		secret.Data[corev1.ServiceAccountNamespaceKey] = []byte(secret.Namespace)
	}
	if needsToken {
		public, private := serviceaccount.LegacyClaims(sa, secret)
		token, err := r.Generator.GenerateToken(public, private)
		if err != nil {
			// Upstream does not retry a failed signature either.
			log.FromContext(ctx).Error(err, "Populating serviceaccount token", "secret", klog.KObj(secret), "serviceAccount", klog.KObj(sa))
			return nil
		}
		secret.Data[corev1.ServiceAccountTokenKey] = []byte(token)
	}
	secret.Annotations[corev1.ServiceAccountNameKey] = sa.Name
	secret.Annotations[corev1.ServiceAccountUIDKey] = string(sa.UID)
	err := r.Client.Update(ctx, secret)
	if err == nil {
		log.FromContext(ctx).V(2).Info("Populated serviceaccount token secret", "secret", klog.KObj(secret), "serviceAccount", klog.KObj(sa))
	}
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// removeReference drops a deleted token Secret from the `secrets` of the
// ServiceAccount it named, if that ServiceAccount (same UID) still lists it.
func (r *Reconciler) removeReference(ctx context.Context, key types.NamespacedName) error {
	r.mu.Lock()
	ref, ok := r.gone[key]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	sa := &corev1.ServiceAccount{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: ref.name}, sa)
	if err == nil && (ref.uid == "" || ref.uid == sa.UID) {
		kept := slices.DeleteFunc(slices.Clone(sa.Secrets), func(s corev1.ObjectReference) bool { return s.Name == key.Name })
		if len(kept) != len(sa.Secrets) {
			sa.Secrets = kept
			err = r.Client.Update(ctx, sa)
		}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		// Conflict included: tried again with the newer ServiceAccount.
		return err
	}
	r.mu.Lock()
	delete(r.gone, key)
	r.mu.Unlock()
	return nil
}
