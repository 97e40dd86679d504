package persistentvolume

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func (c *Controller) reconcileVolume(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	volume, err := c.getVolume(ctx, req.Name)
	if err != nil || volume == nil {
		return reconcile.Result{}, err
	}
	err = c.syncVolume(ctx, volume)
	if apierrors.IsConflict(err) {
		klog.FromContext(ctx).V(3).Info("Could not sync volume", "volumeName", volume.Name, "err", err)
	} else if err != nil {
		klog.FromContext(ctx).Error(err, "Could not sync volume", "volumeName", volume.Name)
	}
	return reconcile.Result{}, err
}

// getClaimOf is the claim of the volume's claimRef: from the cache, and
// if it is not there (or has another UID) from the API, so that a volume
// is never released for a claim the cache does not have yet.
func (c *Controller) getClaimOf(ctx context.Context, volume *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	ref := volume.Spec.ClaimRef
	claim := &corev1.PersistentVolumeClaim{}
	err := c.Client.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, claim)
	switch {
	case err == nil && claim.UID == ref.UID:
		return claim, nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, err
	case err != nil && (volume.Status.Phase == corev1.VolumeReleased || volume.Status.Phase == corev1.VolumeFailed):
		return nil, nil
	}
	fresh, err := c.Core.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fresh.UID != ref.UID {
		// The claim was deleted and another made under its name.
		return nil, nil
	}
	return fresh, nil
}

func (c *Controller) syncVolume(ctx context.Context, volume *corev1.PersistentVolume) error {
	logger := klog.FromContext(ctx)
	logger.V(4).Info("Synchronizing PersistentVolume", "volumeName", volume.Name, "phase", volume.Status.Phase)
	if volume.Spec.ClaimRef == nil || volume.Spec.ClaimRef.UID == "" {
		// Unused, or pre-bound to a claim the claim sync will bind.
		_, err := c.updateVolumePhase(ctx, volume, corev1.VolumeAvailable, "")
		return err
	}
	claim, err := c.getClaimOf(ctx, volume)
	if err != nil {
		return err
	}
	switch {
	case claim == nil:
		// The claim is gone: release and reclaim, keeping a Failed phase
		// for the user to see while retrying.
		if volume.Status.Phase != corev1.VolumeReleased && volume.Status.Phase != corev1.VolumeFailed {
			logger.V(2).Info("Volume is released and reclaim policy will be executed", "volumeName", volume.Name, "reclaimPolicy", volume.Spec.PersistentVolumeReclaimPolicy)
			if volume, err = c.updateVolumePhase(ctx, volume, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaimVolume(ctx, volume)
	case claim.Spec.VolumeName == "":
		if storagehelpers.CheckVolumeModeMismatches(&claim.Spec, &volume.Spec) {
			c.Recorder.Event(volume, corev1.EventTypeWarning, VolumeMismatch, fmt.Sprintf("Cannot bind PersistentVolume to requested PersistentVolumeClaim %q due to incompatible volumeMode.", claim.Name))
			c.Recorder.Event(claim, corev1.EventTypeWarning, VolumeMismatch, fmt.Sprintf("Cannot bind PersistentVolume %q to requested PersistentVolumeClaim due to incompatible volumeMode.", volume.Name))
		}
		// Otherwise the claim sync (queued by the volume watch) binds it.
		return nil
	case claim.Spec.VolumeName == volume.Name:
		_, err = c.updateVolumePhase(ctx, volume, corev1.VolumeBound, "")
		return err
	case metav1.HasAnnotation(volume.ObjectMeta, storagehelpers.AnnDynamicallyProvisioned) && volume.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		// Provisioned for a claim that got bound to another volume: not
		// needed any more.
		if volume.Status.Phase != corev1.VolumeReleased && volume.Status.Phase != corev1.VolumeFailed {
			logger.V(2).Info("Dynamically provisioned volume is released and it will be deleted", "volumeName", volume.Name)
			if volume, err = c.updateVolumePhase(ctx, volume, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaimVolume(ctx, volume)
	default:
		// Bound to a claim bound elsewhere: undo the controller's binding,
		// or keep the user's pre-binding without its UID.
		return c.unbindVolume(ctx, volume)
	}
}

// reclaimVolume applies the volume's reclaim policy.
func (c *Controller) reclaimVolume(ctx context.Context, volume *corev1.PersistentVolume) error {
	logger := klog.FromContext(ctx)
	if volume.Annotations[storagehelpers.AnnMigratedTo] != "" {
		return nil
	}
	switch volume.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain:
		logger.V(4).Info("PersistentVolume references a claim that is not found", "PVC", klog.KRef(volume.Spec.ClaimRef.Namespace, volume.Spec.ClaimRef.Name), "volumeName", volume.Name)
		return nil
	case corev1.PersistentVolumeReclaimRecycle:
		// No in-tree recycler (hostPath and NFS recycler pods) is built in.
		_, err := c.updateVolumePhaseWithEvent(ctx, volume, corev1.VolumeFailed, corev1.EventTypeWarning, VolumeFailedRecycle, "No recycler plugin found for the volume!")
		return err
	case corev1.PersistentVolumeReclaimDelete:
		return c.deleteVolume(ctx, volume)
	default:
		_, err := c.updateVolumePhaseWithEvent(ctx, volume, corev1.VolumeFailed, corev1.EventTypeWarning, VolumeUnknownReclaim, "Volume has unrecognized PersistentVolumeReclaimPolicy")
		return err
	}
}

var tmpPath = regexp.MustCompile(`^/tmp/.+`)

// deleteVolume: a volume of an external provisioner (provisioned-by not an
// in-tree plugin, or CSI) is the provisioner's to delete. Otherwise only
// upstream's in-tree hostPath deleter could act, for paths under /tmp (it
// removes the directory on the controller manager's host; skiff deletes
// the PV object only); anything else fails as upstream's with no deleter.
func (c *Controller) deleteVolume(ctx context.Context, volume *corev1.PersistentVolume) error {
	logger := klog.FromContext(ctx)
	if p := volume.Annotations[storagehelpers.AnnDynamicallyProvisioned]; (p != "" && !strings.HasPrefix(p, "kubernetes.io/")) || volume.Spec.CSI != nil {
		logger.V(3).Info("External deleter for volume requested, ignoring", "volumeName", volume.Name)
		return nil
	}
	var failure string
	switch {
	case volume.Spec.HostPath == nil:
		failure = fmt.Sprintf("error getting deleter volume plugin for volume %q: no deletable volume plugin matched", volume.Name)
	case !tmpPath.MatchString(volume.Spec.HostPath.Path):
		failure = fmt.Sprintf("host_path deleter only supports /tmp/.+ but received provided %s", volume.Spec.HostPath.Path)
	}
	if failure != "" {
		_, err := c.updateVolumePhaseWithEvent(ctx, volume, corev1.VolumeFailed, corev1.EventTypeWarning, VolumeFailedDelete, failure)
		return err
	}
	// The volume may have changed meanwhile: decide on a fresh copy.
	fresh, err := c.Core.CoreV1().PersistentVolumes().Get(ctx, volume.Name, metav1.GetOptions{})
	if err != nil {
		return client404(err)
	}
	if released, err := c.isReleased(ctx, fresh); err != nil || !released {
		return err
	}
	logger.V(2).Info("Volume deleted", "volumeName", volume.Name)
	return client404(c.Core.CoreV1().PersistentVolumes().Delete(ctx, volume.Name, metav1.DeleteOptions{}))
}

func client404(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// isReleased: the volume's claim is gone, or bound to another volume.
func (c *Controller) isReleased(ctx context.Context, volume *corev1.PersistentVolume) (bool, error) {
	if volume.Spec.ClaimRef == nil || volume.Spec.ClaimRef.UID == "" {
		return false, nil
	}
	claim := &corev1.PersistentVolumeClaim{}
	err := c.Client.Get(ctx, types.NamespacedName{Namespace: volume.Spec.ClaimRef.Namespace, Name: volume.Spec.ClaimRef.Name}, claim)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	if err == nil && claim.UID == volume.Spec.ClaimRef.UID {
		return claim.Spec.VolumeName != "" && claim.Spec.VolumeName != volume.Name, nil
	}
	return true, nil
}
