// Package namespace finishes the deletion of namespaces: it deletes every
// namespaced object in a Terminating namespace (pods first, and the rest
// only once they are gone), then removes the
// `kubernetes` finalizer through /finalize and deletes the namespace again,
// which lets the apiserver remove it. Meanwhile the namespace's status
// carries upstream's five deletion conditions.
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
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// retryAfter is how soon a namespace whose content is still going away
// (pods in their grace period, objects with finalizers) is looked at again.
const retryAfter = 2 * time.Second

// Discovery lists the namespaced resources to empty; a partial failure
// returns what was found with a *discovery.ErrGroupDiscoveryFailed.
type Discovery interface {
	ServerPreferredNamespacedResources() ([]*metav1.APIResourceList, error)
}

// Reconciler empties and finalizes Terminating namespaces.
type Reconciler struct {
	Core      kubernetes.Interface
	Metadata  metadata.Interface
	Discovery Discovery
}

// SetupWithManager registers the reconciler for Namespaces.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("namespace").For(&corev1.Namespace{}).Complete(r)
}

// Reconcile drives one namespace's deletion a step further. As upstream,
// the kubernetes finalizer stays until every resource could be discovered
// and emptied, so that a group failing discovery never has its objects
// orphaned; the namespace's deletion conditions say what holds it up.
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
	progress := r.deleteContent(ctx, ns.Name)
	if updateConditions(&ns.Status, progress.conditions()) {
		if ns, err = r.Core.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := progress.err(); err != nil {
		return ctrl.Result{}, err
	}
	if remaining := progress.remaining(); remaining > 0 {
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

// deletion is what one pass over a namespace's content found.
type deletion struct {
	discoveryErr, parseErr error
	contentErrs            []error
	// Objects left (e.g. in their grace period), per resource and per
	// finalizer they wait for.
	remainingByResource  map[schema.GroupVersionResource]int
	remainingByFinalizer map[string]int
	// waitingForPods: pods remain, so the rest was not deleted yet.
	waitingForPods bool
}

func (d *deletion) remaining() int {
	n := 0
	for _, c := range d.remainingByResource {
		n += c
	}
	return n
}

// err: the pass could not see or delete everything.
func (d *deletion) err() error {
	errs := append([]error{d.discoveryErr, d.parseErr}, d.contentErrs...)
	return utilerrors.NewAggregate(slices.DeleteFunc(errs, func(e error) bool { return e == nil }))
}

// podsGVR is emptied before anything else, as upstream's OrderedNamespaceDeletion
// (GA in 1.34) does: a pod still running keeps the ConfigMaps, Secrets,
// PVCs and policies it may depend on.
var podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

// deleteContent deletes every namespaced object it can discover, pods first:
// while pods remain nothing else is deleted.
func (r *Reconciler) deleteContent(ctx context.Context, namespace string) *deletion {
	d := &deletion{remainingByResource: map[schema.GroupVersionResource]int{}, remainingByFinalizer: map[string]int{}}
	lists, err := r.Discovery.ServerPreferredNamespacedResources()
	if err != nil {
		d.discoveryErr = err
	}
	var gvrs []schema.GroupVersionResource
	var parseErrs []error
	for _, list := range lists {
		if list == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			parseErrs = append(parseErrs, err)
			continue
		}
		for _, res := range list.APIResources {
			verbs := sets.New(res.Verbs...)
			if verbs.Has("list") && verbs.Has("deletecollection") {
				gvrs = append(gvrs, gv.WithResource(res.Name))
			}
		}
	}
	d.parseErr = utilerrors.NewAggregate(parseErrs)
	if slices.Contains(gvrs, podsGVR) {
		r.deleteResource(ctx, d, podsGVR, namespace)
		if d.remainingByResource[podsGVR] > 0 {
			d.waitingForPods = true
			return d
		}
	}
	for _, gvr := range gvrs {
		if gvr != podsGVR {
			r.deleteResource(ctx, d, gvr, namespace)
		}
	}
	return d
}

// deleteResource deletes the namespace's objects of gvr and records what is
// left of them.
func (r *Reconciler) deleteResource(ctx context.Context, d *deletion, gvr schema.GroupVersionResource, namespace string) {
	background := metav1.DeletePropagationBackground
	client := r.Metadata.Resource(gvr).Namespace(namespace)
	err := client.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
		d.contentErrs = append(d.contentErrs, fmt.Errorf("failed to delete %s: %w", gvr, err))
		return
	}
	left, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			d.contentErrs = append(d.contentErrs, fmt.Errorf("failed to list %s: %w", gvr, err))
		}
		return
	}
	if len(left.Items) > 0 {
		d.remainingByResource[gvr] += len(left.Items)
	}
	for _, item := range left.Items {
		for _, f := range item.Finalizers {
			d.remainingByFinalizer[f]++
		}
	}
}
