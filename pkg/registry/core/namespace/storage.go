// Package namespace gives namespaces upstream's two-step deletion: the first
// DELETE marks the namespace Terminating; it is removed only once its
// spec.finalizers are empty (the namespace controller empties the namespace,
// then removes the `kubernetes` finalizer through /finalize and deletes again).
package namespace

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"

	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// REST is the namespaces storage.
type REST struct {
	*store.REST
}

// New wraps the generic namespaces storage.
func New(s *store.REST) *REST { return &REST{REST: s} }

// PrepareForCreate is the strategy hook: a new namespace is Active and
// carries the `kubernetes` finalizer.
func PrepareForCreate(obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return
		}
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

// KeepFinalizers is the update rule of the main resource: spec.finalizers
// change only through /finalize.
func KeepFinalizers(obj, old runtime.Object) {
	obj.(*corev1.Namespace).Spec.Finalizers = old.(*corev1.Namespace).Spec.Finalizers
}

// ShouldDeleteDuringUpdate: an update (of the namespace, its status or
// its finalizers) removes a Terminating namespace only once its
// spec.finalizers are empty too, as upstream's.
func ShouldDeleteDuringUpdate(ctx context.Context, key string, obj, existing runtime.Object) bool {
	return len(obj.(*corev1.Namespace).Spec.Finalizers) == 0 && genericregistry.ShouldDeleteDuringUpdate(ctx, key, obj, existing)
}

// DeleteCollection shadows the generic store's, so that namespaces do not
// implement rest.CollectionDeleter: as upstream, DELETE on the collection is
// 405 MethodNotAllowed rather than removing every namespace at once.
func (r *REST) DeleteCollection() {}

// Delete starts termination, or finishes it once no finalizer is left.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, err := r.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	ns := obj.(*corev1.Namespace)
	if options == nil {
		options = &metav1.DeleteOptions{}
	}
	if options.Preconditions != nil && options.Preconditions.UID != nil && *options.Preconditions.UID != ns.UID {
		return nil, false, apierrors.NewConflict(corev1.Resource("namespaces"), name,
			fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *options.Preconditions.UID, ns.UID))
	}
	if ns.DeletionTimestamp.IsZero() {
		return r.startTermination(ctx, name, deleteValidation, options)
	}
	if len(ns.Spec.Finalizers) != 0 {
		return ns, false, nil
	}
	return r.REST.Delete(ctx, name, deleteValidation, options)
}

func (r *REST) startTermination(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	key, err := r.KeyFunc(ctx, name)
	if err != nil {
		return nil, false, err
	}
	preconditions := &storage.Preconditions{}
	if options.Preconditions != nil {
		preconditions.UID = options.Preconditions.UID
		preconditions.ResourceVersion = options.Preconditions.ResourceVersion
	}
	out := &corev1.Namespace{}
	err = r.Storage.GuaranteedUpdate(ctx, key, out, false, preconditions, storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
		ns := existing.(*corev1.Namespace)
		if deleteValidation != nil {
			if err := deleteValidation(ctx, ns); err != nil {
				return nil, err
			}
		}
		if ns.DeletionTimestamp.IsZero() {
			now := metav1.Now()
			ns.DeletionTimestamp = &now
		}
		ns.Status.Phase = corev1.NamespaceTerminating
		return ns, nil
	}), len(options.DryRun) > 0, nil)
	if err != nil {
		return nil, false, err
	}
	if len(out.Spec.Finalizers) == 0 {
		return r.REST.Delete(ctx, name, deleteValidation, options)
	}
	return out, false, nil
}
