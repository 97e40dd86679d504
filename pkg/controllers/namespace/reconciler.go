// Package namespace finishes the deletion of namespaces: it deletes every
// namespaced object in a Terminating namespace, then removes the
// `kubernetes` finalizer through /finalize and deletes the namespace again,
// which lets the apiserver remove it.
package namespace

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// retryAfter is how soon a namespace whose content is still going away
// (pods in their grace period, objects with finalizers) is looked at again.
const retryAfter = 2 * time.Second

// Reconciler empties and finalizes Terminating namespaces.
type Reconciler struct {
	Core      kubernetes.Interface
	Metadata  metadata.Interface
	Discovery discovery.DiscoveryInterface
}

// SetupWithManager registers the reconciler for Namespaces.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("namespace").For(&corev1.Namespace{}).Complete(r)
}

// Reconcile drives one namespace's deletion a step further.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns, err := r.Core.CoreV1().Namespaces().Get(ctx, req.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if ns.DeletionTimestamp.IsZero() || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return ctrl.Result{}, nil
	}
	remaining, err := r.deleteContent(ctx, ns.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if remaining > 0 {
		log.FromContext(ctx).V(1).Info("Namespace still has content", "namespace", ns.Name, "objects", remaining)
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	if _, err := r.Core.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		return ctrl.Result{}, err
	}
	err = r.Core.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	return ctrl.Result{}, err
}

// deleteContent deletes every namespaced object and returns how many remain.
func (r *Reconciler) deleteContent(ctx context.Context, namespace string) (int, error) {
	lists, err := r.Discovery.ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return 0, fmt.Errorf("discovering namespaced resources: %w", err)
	}
	remaining := 0
	background := metav1.DeletePropagationBackground
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range list.APIResources {
			verbs := sets.New(res.Verbs...)
			if !verbs.Has("list") || !verbs.Has("deletecollection") {
				continue
			}
			client := r.Metadata.Resource(gv.WithResource(res.Name)).Namespace(namespace)
			err := client.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
				return 0, fmt.Errorf("deleting %s in %s: %w", res.Name, namespace, err)
			}
			left, err := client.List(ctx, metav1.ListOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return 0, err
			}
			remaining += len(left.Items)
		}
	}
	return remaining, nil
}
