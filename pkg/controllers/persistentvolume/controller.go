// Package persistentvolume is upstream's persistentvolume-binder-controller
// (the PV controller of kube-controller-manager), without in-tree volume
// plugins: every provisioner is external (skiff's own is the local-path
// provisioner, pkg/controllers/localpath).
//
// Claims: an unbound claim is bound to the smallest Available PV of its
// class that fits (capacity, access modes — fewest extra modes first —,
// volumeMode, selector, volumeAttributesClassName), or to the PV its
// volumeName names, or to the PV pre-bound to it (claimRef); binding
// writes the PV's claimRef (with pv.kubernetes.io/bound-by-controller
// when the controller chose it) and phase Bound, then the claim's
// volumeName, pv.kubernetes.io/bind-completed (and bound-by-controller)
// and status (phase Bound, accessModes and capacity of the PV). A claim
// of a WaitForFirstConsumer class waits (events WaitForFirstConsumer /
// WaitForPodScheduled) for the scheduler to bind it or to name a node
// (volume.kubernetes.io/selected-node); then, as for an Immediate class
// without a matching PV, provisioning is asked of the class's provisioner
// through volume.kubernetes.io/storage-provisioner (and the beta
// annotation) with the ExternalProvisioning event. A claim of no class
// without a PV gets FailedBinding "no persistent volumes available for
// this claim and no storage class is set"; a claim without a class gets
// the default class once there is one. A bound claim whose PV is gone or
// bound elsewhere is Lost (ClaimLost, ClaimMisbound).
//
// Volumes: Available without a claim (or pre-bound to a claim not bound
// yet), Bound while their claim is; Released once the claim is gone, then
// reclaimed by their persistentVolumeReclaimPolicy: Retain keeps them,
// Delete leaves volumes of external provisioners (provisioned-by) to
// them and fails others (no in-tree deleter: VolumeFailedDelete), Recycle
// fails ("No recycler plugin found for the volume!"). A dynamically
// provisioned volume whose claim got bound to another is Released and
// reclaimed; one the controller bound to a claim bound elsewhere is
// unbound.
//
// Everything is resynced every 15 s (upstream's --pvclaimbinder-sync-period
// default).
package persistentvolume

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume/podclaims"
)

const (
	// Name is upstream's name of the controller.
	Name = "persistentvolume-binder-controller"
	// Component is the source of its events, upstream's.
	Component = "persistentvolume-controller"
	// DefaultSyncPeriod is upstream's --pvclaimbinder-sync-period.
	DefaultSyncPeriod = 15 * time.Second
)

// Controller binds claims and volumes.
type Controller struct {
	// Client reads PVs, PVCs, StorageClasses, pods and nodes through the
	// manager's cache.
	Client client.Client
	// Core writes, and reads fresh where upstream does.
	Core     kubernetes.Interface
	Recorder record.EventRecorder
	// SyncPeriod: how often everything is synced again; 0: 15 s.
	SyncPeriod time.Duration
}

// SetupWithManager registers the claim and the volume loops (one worker
// each, as upstream) and the periodic resync.
func (c *Controller) SetupWithManager(mgr manager.Manager) error {
	if c.SyncPeriod <= 0 {
		c.SyncPeriod = DefaultSyncPeriod
	}
	if c.Recorder == nil {
		c.Recorder = &record.FakeRecorder{}
	}
	if err := podclaims.IndexPods(mgr); err != nil {
		return err
	}
	claimResync := make(chan event.GenericEvent)
	volumeResync := make(chan event.GenericEvent)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		c.resync(ctx, claimResync, volumeResync)
		return nil
	})); err != nil {
		return err
	}
	err := builder.ControllerManagedBy(mgr).Named("persistentvolume-claims").
		For(&corev1.PersistentVolumeClaim{}).
		// A volume's claim is synced on the volume's changes: a provisioned
		// or pre-bound volume gets its claim bound at once, a deleted one
		// makes it Lost at once.
		Watches(&corev1.PersistentVolume{}, handler.EnqueueRequestsFromMapFunc(volumeClaim)).
		WatchesRawSource(source.Channel(claimResync, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(reconcile.Func(c.reconcileClaim))
	if err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).Named("persistentvolume-volumes").
		For(&corev1.PersistentVolume{}).
		// A claim's volume is synced when the claim goes (Released at once)
		// or changes.
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(claimVolume)).
		WatchesRawSource(source.Channel(volumeResync, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(reconcile.Func(c.reconcileVolume))
}

func volumeClaim(_ context.Context, o client.Object) []reconcile.Request {
	pv, ok := o.(*corev1.PersistentVolume)
	if !ok || pv.Spec.ClaimRef == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pv.Spec.ClaimRef.Namespace, Name: pv.Spec.ClaimRef.Name}}}
}

func claimVolume(_ context.Context, o client.Object) []reconcile.Request {
	pvc, ok := o.(*corev1.PersistentVolumeClaim)
	if !ok || pvc.Spec.VolumeName == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: pvc.Spec.VolumeName}}}
}

// resync sends every claim and volume of the cache to the loops each
// SyncPeriod, until ctx ends.
func (c *Controller) resync(ctx context.Context, claims, volumes chan<- event.GenericEvent) {
	t := time.NewTicker(c.SyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		klog.FromContext(ctx).V(4).Info("Resyncing PV controller")
		var pvcs corev1.PersistentVolumeClaimList
		if err := c.Client.List(ctx, &pvcs); err != nil {
			klog.FromContext(ctx).Info("Cannot list claims", "err", err)
		}
		for i := range pvcs.Items {
			if !send(ctx, claims, &pvcs.Items[i]) {
				return
			}
		}
		var pvs corev1.PersistentVolumeList
		if err := c.Client.List(ctx, &pvs); err != nil {
			klog.FromContext(ctx).Info("Cannot list volumes", "err", err)
		}
		for i := range pvs.Items {
			if !send(ctx, volumes, &pvs.Items[i]) {
				return
			}
		}
	}
}

func send(ctx context.Context, ch chan<- event.GenericEvent, o client.Object) bool {
	select {
	case ch <- event.GenericEvent{Object: o}:
		return true
	case <-ctx.Done():
		return false
	}
}
