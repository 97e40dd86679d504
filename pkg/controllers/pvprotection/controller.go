// Package pvprotection is upstream's persistentvolume-protection-controller:
// a PersistentVolume being deleted keeps its kubernetes.io/pv-protection
// finalizer while it is Bound (status.phase, as the PV controller keeps
// it) and loses it afterwards, so the API server removes it; a PV without
// the finalizer and not being deleted gets it (PVs created before the
// StorageObjectInUseProtection admission plugin added it).
package pvprotection

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/admission/storageobjectinuseprotection"
)

// Name is upstream's name of the controller.
const Name = "persistentvolume-protection-controller"

// Finalizer is the finalizer it manages.
const Finalizer = storageobjectinuseprotection.PVProtectionFinalizer

// Reconciler adds and removes the pv-protection finalizer.
type Reconciler struct {
	// Client reads PVs through the manager's cache.
	Client client.Client
	// Core writes them.
	Core kubernetes.Interface
}

// SetupWithManager registers the controller for the PVs that need it
// (one worker, as upstream).
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	interesting := func(o client.Object) bool { return needsAdding(o) || isDeletionCandidate(o) }
	return ctrl.ControllerManagedBy(mgr).Named("pvprotection").
		For(&corev1.PersistentVolume{}, ctrl.WithPredicates(predicate.Funcs{
			CreateFunc:  func(e event.CreateEvent) bool { return interesting(e.Object) },
			UpdateFunc:  func(e event.UpdateEvent) bool { return interesting(e.ObjectNew) },
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(e event.GenericEvent) bool { return interesting(e.Object) },
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

func isDeletionCandidate(o client.Object) bool {
	return o.GetDeletionTimestamp() != nil && slices.Contains(o.GetFinalizers(), Finalizer)
}

func needsAdding(o client.Object) bool {
	return o.GetDeletionTimestamp() == nil && !slices.Contains(o.GetFinalizers(), Finalizer)
}

// Reconcile removes the finalizer of a deleted PV no longer Bound, or adds
// it to a PV that lacks it.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := klog.FromContext(ctx)
	pv := &corev1.PersistentVolume{}
	if err := r.Client.Get(ctx, req.NamespacedName, pv); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("PV not found, ignoring", "PV", klog.KRef("", req.Name))
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if isDeletionCandidate(pv) {
		if pv.Status.Phase != corev1.VolumeBound {
			return reconcile.Result{}, r.update(ctx, pv, slices.DeleteFunc(slices.Clone(pv.Finalizers), func(f string) bool { return f == Finalizer }), "Removed protection finalizer from PV")
		}
		logger.V(4).Info("Keeping PV because it is being used", "PV", klog.KObj(pv))
	}
	if needsAdding(pv) {
		return reconcile.Result{}, r.update(ctx, pv, append(slices.Clone(pv.Finalizers), Finalizer), "Added protection finalizer to PV")
	}
	return reconcile.Result{}, nil
}

func (r *Reconciler) update(ctx context.Context, pv *corev1.PersistentVolume, finalizers []string, done string) error {
	clone := pv.DeepCopy()
	clone.Finalizers = finalizers
	_, err := r.Core.CoreV1().PersistentVolumes().Update(ctx, clone, metav1.UpdateOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		klog.FromContext(ctx).V(3).Info("Error updating the protection finalizer of PV", "PV", klog.KObj(pv), "err", err)
		return err
	}
	klog.FromContext(ctx).V(3).Info(done, "PV", klog.KObj(pv))
	return nil
}
