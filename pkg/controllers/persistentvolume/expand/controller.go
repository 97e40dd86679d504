// Package expand is the part of upstream's
// persistentvolume-expander-controller that needs no volume plugin: a
// Bound claim whose storage request grew beyond its status.capacity (the
// PersistentVolumeClaimResize admission lets that happen only for classes
// with allowVolumeExpansion) is an expansion for someone else to do, as
// upstream says of volumes no in-tree plugin expands: the event
// ExternalExpanding "waiting for an external controller to expand this
// PVC". skiff has no in-tree expandable plugin, and the CSI path (the
// external-resizer's status.allocatedResources,
// allocatedResourceStatuses and the Resizing / FileSystemResizePending
// conditions) belongs to a CSI driver's sidecars, so nothing more is
// written; local-path volumes, as k3s's, do not grow.
package expand

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const (
	// Name is upstream's name of the controller.
	Name = "persistentvolume-expander-controller"
	// Component is the source of its events, upstream's.
	Component = "volume_expand"
	// ReasonExternalExpanding and MessageExternal are upstream's.
	ReasonExternalExpanding = "ExternalExpanding"
	MessageExternal         = "waiting for an external controller to expand this PVC"
	annPreResizeCapacity    = "volume.alpha.kubernetes.io/pre-resize-capacity"
)

// Reconciler reports expansions it leaves to others.
type Reconciler struct {
	// Client reads claims and PVs through the manager's cache.
	Client   client.Client
	Recorder record.EventRecorder
}

// SetupWithManager registers the controller for Bound claims whose
// request changed (upstream queues every Bound claim's add and update).
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Recorder == nil {
		r.Recorder = &record.FakeRecorder{}
	}
	bound := func(o client.Object) bool {
		pvc, ok := o.(*corev1.PersistentVolumeClaim)
		return ok && pvc.Status.Phase == corev1.ClaimBound
	}
	return builder.ControllerManagedBy(mgr).Named("volumeexpand").
		For(&corev1.PersistentVolumeClaim{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(e event.CreateEvent) bool { return bound(e.Object) },
			// Only a change of the request can start an expansion.
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*corev1.PersistentVolumeClaim), e.ObjectNew.(*corev1.PersistentVolumeClaim)
				return bound(n) && (o.Status.Phase != n.Status.Phase ||
					!o.Spec.Resources.Requests.Storage().Equal(*n.Spec.Resources.Requests.Storage()))
			},
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(e event.GenericEvent) bool { return bound(e.Object) },
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

// Reconcile emits ExternalExpanding for a claim asking for more than it
// has, once its PV is bound to it.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, req.NamespacedName, pvc); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if pvc.Spec.VolumeName == "" {
		return reconcile.Result{}, nil
	}
	pv := &corev1.PersistentVolume{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: pvc.Spec.VolumeName}, pv); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != pvc.Namespace || pv.Spec.ClaimRef.UID != pvc.UID {
		klog.FromContext(ctx).V(4).Info("Persistent Volume is not bound to PVC being updated", "PVC", klog.KObj(pvc))
		return reconcile.Result{}, nil
	}
	requested, current := pvc.Spec.Resources.Requests[corev1.ResourceStorage], pvc.Status.Capacity[corev1.ResourceStorage]
	if requested.Cmp(current) <= 0 && !metav1.HasAnnotation(pv.ObjectMeta, annPreResizeCapacity) {
		return reconcile.Result{}, nil
	}
	r.Recorder.Event(pvc, corev1.EventTypeNormal, ReasonExternalExpanding, MessageExternal)
	klog.FromContext(ctx).Info("Waiting for an external controller to expand the PVC", "pvcKey", req.String(), "pvcUID", pvc.UID)
	return reconcile.Result{}, nil
}
