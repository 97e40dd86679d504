package persistentvolume

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/admission/defaultstorageclass"
	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume/podclaims"
)

// Event reasons, upstream's.
const (
	FailedBinding          = "FailedBinding"
	VolumeMismatch         = "VolumeMismatch"
	ProvisioningFailed     = "ProvisioningFailed"
	ExternalProvisioning   = "ExternalProvisioning"
	WaitForFirstConsumer   = "WaitForFirstConsumer"
	WaitForPodScheduled    = "WaitForPodScheduled"
	VolumeFailedDelete     = "VolumeFailedDelete"
	VolumeFailedRecycle    = "VolumeFailedRecycle"
	VolumeUnknownReclaim   = "VolumeUnknownReclaimPolicy"
	ClaimLost              = "ClaimLost"
	ClaimMisbound          = "ClaimMisbound"
	annPreResizeCapacity   = "volume.alpha.kubernetes.io/pre-resize-capacity"
	noClassMessage         = "no persistent volumes available for this claim and no storage class is set"
	waitForConsumerMessage = "waiting for first consumer to be created before binding"
)

func claimKey(c *corev1.PersistentVolumeClaim) string { return c.Namespace + "/" + c.Name }

func refKey(r *corev1.ObjectReference) string { return r.Namespace + "/" + r.Name }

func (c *Controller) reconcileClaim(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	claim := &corev1.PersistentVolumeClaim{}
	if err := c.Client.Get(ctx, req.NamespacedName, claim); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	err := c.syncClaim(ctx, claim)
	if apierrors.IsConflict(err) {
		// Frequent and harmless: the cache was behind a write.
		klog.FromContext(ctx).V(3).Info("Could not sync claim", "PVC", klog.KObj(claim), "err", err)
	} else if err != nil {
		klog.FromContext(ctx).Error(err, "Could not sync claim", "PVC", klog.KObj(claim))
	}
	return reconcile.Result{}, err
}

func (c *Controller) syncClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	klog.FromContext(ctx).V(4).Info("Synchronizing PersistentVolumeClaim", "PVC", klog.KObj(claim), "phase", claim.Status.Phase)
	if !metav1.HasAnnotation(claim.ObjectMeta, storagehelpers.AnnBindCompleted) {
		return c.syncUnboundClaim(ctx, claim)
	}
	return c.syncBoundClaim(ctx, claim)
}

// getVolume is the named PV from the cache (nil: none).
func (c *Controller) getVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	pv := &corev1.PersistentVolume{}
	if err := c.Client.Get(ctx, types.NamespacedName{Name: name}, pv); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return pv, nil
}

func (c *Controller) getClass(ctx context.Context, name string) (*storagev1.StorageClass, error) {
	class := &storagev1.StorageClass{}
	if err := c.Client.Get(ctx, types.NamespacedName{Name: name}, class); err != nil {
		return nil, err
	}
	return class, nil
}

// isDelayBinding is upstream's IsDelayBindingMode: the claim's class
// (existing) binds WaitForFirstConsumer.
func (c *Controller) isDelayBinding(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	name := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if name == "" {
		return false, nil
	}
	class, err := c.getClass(ctx, name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if class.VolumeBindingMode == nil {
		return false, fmt.Errorf("VolumeBindingMode not set for StorageClass %q", name)
	}
	return *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer, nil
}

func (c *Controller) syncUnboundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	logger := klog.FromContext(ctx)
	if claim.Spec.VolumeName == "" {
		delay, err := c.isDelayBinding(ctx, claim)
		if err != nil {
			return err
		}
		volume, err := c.findBestMatch(ctx, claim, delay)
		if err != nil {
			return fmt.Errorf("error finding PV for claim %q: %w", claimKey(claim), err)
		}
		if volume != nil {
			logger.V(4).Info("Synchronizing unbound PersistentVolumeClaim, volume found", "PVC", klog.KObj(claim), "volumeName", volume.Name)
			return c.bind(ctx, volume, claim)
		}
		updated, err := c.assignDefaultStorageClass(ctx, claim)
		if err != nil {
			return fmt.Errorf("can't update PersistentVolumeClaim[%q]: %w", claimKey(claim), err)
		}
		if updated {
			return nil
		}
		switch {
		case delay && !storagehelpers.IsDelayBindingProvisioning(claim):
			if err := c.eventForUnboundDelayBindingClaim(ctx, claim); err != nil {
				return err
			}
		case storagehelpers.GetPersistentVolumeClaimClass(claim) != "":
			// The provisioner's PV comes back through the volume watch.
			return c.provisionClaim(ctx, claim)
		default:
			c.Recorder.Event(claim, corev1.EventTypeNormal, FailedBinding, noClassMessage)
		}
		_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
		return err
	}

	// The user asked for a specific PV.
	volume, err := c.getVolume(ctx, claim.Spec.VolumeName)
	if err != nil {
		return err
	}
	switch {
	case volume == nil:
		logger.V(4).Info("Synchronizing unbound PersistentVolumeClaim, volume requested and not found, will try again next time", "PVC", klog.KObj(claim), "volumeName", claim.Spec.VolumeName)
		_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
		return err
	case volume.Spec.ClaimRef == nil:
		if err := checkVolumeSatisfiesClaim(volume, claim); err != nil {
			c.Recorder.Event(claim, corev1.EventTypeWarning, VolumeMismatch, fmt.Sprintf("Cannot bind to requested volume %q: %s", volume.Name, err))
			_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
			return err
		}
		return c.bind(ctx, volume, claim)
	case storagehelpers.IsVolumeBoundToClaim(volume, claim):
		return c.bind(ctx, volume, claim)
	default:
		msg := fmt.Sprintf("volume %q already bound to a different claim.", volume.Name)
		c.Recorder.Event(claim, corev1.EventTypeWarning, FailedBinding, msg)
		if metav1.HasAnnotation(claim.ObjectMeta, storagehelpers.AnnBoundByController) {
			return fmt.Errorf("invalid binding of claim %q to volume %q: volume already claimed by %q", claimKey(claim), claim.Spec.VolumeName, refKey(volume.Spec.ClaimRef))
		}
		_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
		return err
	}
}

func (c *Controller) syncBoundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName == "" {
		_, err := c.updateClaimStatusWithEvent(ctx, claim, corev1.ClaimLost, nil, corev1.EventTypeWarning, ClaimLost, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
		return err
	}
	volume, err := c.getVolume(ctx, claim.Spec.VolumeName)
	if err != nil {
		return err
	}
	switch {
	case volume == nil:
		_, err = c.updateClaimStatusWithEvent(ctx, claim, corev1.ClaimLost, nil, corev1.EventTypeWarning, ClaimLost, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
		return err
	case volume.Spec.ClaimRef == nil, volume.Spec.ClaimRef.UID == claim.UID:
		// Unbound volume (or a cache behind): bind it again; or all is
		// well and bind writes nothing.
		return c.bind(ctx, volume, claim)
	default:
		_, err = c.updateClaimStatusWithEvent(ctx, claim, corev1.ClaimLost, nil, corev1.EventTypeWarning, ClaimMisbound, "Two claims are bound to the same volume, this one is bound incorrectly")
		return err
	}
}

// checkVolumeSatisfiesClaim is upstream's checkVolumeSatisfyClaim, for a
// volume the claim names.
func checkVolumeSatisfiesClaim(volume *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	if volume.DeletionTimestamp != nil {
		return fmt.Errorf("the volume is marked for deletion %q", volume.Name)
	}
	requested := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	capacity := volume.Spec.Capacity[corev1.ResourceStorage]
	if capacity.Value() < requested.Value() {
		return fmt.Errorf("requested PV is too small")
	}
	if storagehelpers.GetPersistentVolumeClass(volume) != storagehelpers.GetPersistentVolumeClaimClass(claim) {
		return fmt.Errorf("storageClassName does not match")
	}
	if deref(claim.Spec.VolumeAttributesClassName) != deref(volume.Spec.VolumeAttributesClassName) {
		return fmt.Errorf("volumeAttributesClassName does not match")
	}
	if storagehelpers.CheckVolumeModeMismatches(&claim.Spec, &volume.Spec) {
		return fmt.Errorf("incompatible volumeMode")
	}
	if !storagehelpers.CheckAccessModes(claim, volume) {
		return fmt.Errorf("incompatible accessMode")
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// findBestMatch is upstream's findBestMatchForClaim: the volumes are
// grouped by their access modes; of the groups offering every mode asked
// for, those with fewer modes are searched first, each for the smallest
// volume that fits (or one pre-bound to the claim).
func (c *Controller) findBestMatch(ctx context.Context, claim *corev1.PersistentVolumeClaim, delay bool) (*corev1.PersistentVolume, error) {
	var list corev1.PersistentVolumeList
	if err := c.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	groups := map[string][]*corev1.PersistentVolume{}
	modes := map[string][]corev1.PersistentVolumeAccessMode{}
	for i := range list.Items {
		pv := &list.Items[i]
		key := accessModesKey(pv.Spec.AccessModes)
		groups[key] = append(groups[key], pv)
		modes[key] = pv.Spec.AccessModes
	}
	var keys []string
	for key, m := range modes {
		if containsAllModes(m, claim.Spec.AccessModes) {
			keys = append(keys, key)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if a, b := len(modes[keys[i]]), len(modes[keys[j]]); a != b {
			return a < b
		}
		return keys[i] < keys[j]
	})
	for _, key := range keys {
		pv, err := storagehelpers.FindMatchingVolume(claim, groups[key], nil, nil, delay, true)
		if err != nil || pv != nil {
			return pv, err
		}
	}
	return nil, nil
}

// accessModesKey is a set of access modes as a string (upstream's
// index key): distinct modes in a fixed order.
func accessModesKey(m []corev1.PersistentVolumeAccessMode) string {
	seen := map[corev1.PersistentVolumeAccessMode]bool{}
	var out []string
	for _, mode := range []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod} {
		for _, x := range m {
			if x == mode && !seen[mode] {
				seen[mode] = true
				out = append(out, string(mode))
			}
		}
	}
	return strings.Join(out, ",")
}

func containsAllModes(have, want []corev1.PersistentVolumeAccessMode) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// eventForUnboundDelayBindingClaim says what a WaitForFirstConsumer claim
// waits for: a consumer, or the named pods' scheduling.
func (c *Controller) eventForUnboundDelayBindingClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	pods, err := podclaims.PodsUsing(ctx, c.Client, claim.Namespace, claim.Name)
	if err != nil {
		return err
	}
	var names []string
	for i := range pods {
		if !podclaims.IsTerminated(&pods[i]) && pods[i].Spec.NodeName == "" {
			names = append(names, pods[i].Name)
		}
	}
	reason, message := WaitForFirstConsumer, waitForConsumerMessage
	switch {
	case len(names) == 1:
		reason, message = WaitForPodScheduled, fmt.Sprintf("waiting for pod %s to be scheduled", names[0])
	case len(names) > 1:
		reason, message = WaitForPodScheduled, fmt.Sprintf("waiting for pods %s to be scheduled", strings.Join(names, ","))
	}
	c.Recorder.Event(claim, corev1.EventTypeNormal, reason, message)
	return nil
}

// assignDefaultStorageClass gives a class-less claim the default class,
// if there is one now (retroactive default class assignment).
func (c *Controller) assignDefaultStorageClass(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	if storagehelpers.PersistentVolumeClaimHasClass(claim) {
		return false, nil
	}
	var list storagev1.StorageClassList
	if err := c.Client.List(ctx, &list); err != nil {
		return false, err
	}
	classes := make([]*storagev1.StorageClass, len(list.Items))
	for i := range list.Items {
		classes[i] = &list.Items[i]
	}
	def := defaultstorageclass.Pick(classes)
	if def == nil {
		klog.FromContext(ctx).V(4).Info("Can not assign storage class to PersistentVolumeClaim: default storage class not found", "PVC", klog.KObj(claim))
		return false, nil
	}
	clone := claim.DeepCopy()
	clone.Spec.StorageClassName = &def.Name
	if _, err := c.Core.CoreV1().PersistentVolumeClaims(clone.Namespace).Update(ctx, clone, metav1.UpdateOptions{}); err != nil {
		return false, err
	}
	klog.FromContext(ctx).V(4).Info("Successfully assigned StorageClass to PersistentVolumeClaim", "PVC", klog.KObj(claim), "storageClassName", def.Name)
	return true, nil
}

// provisionClaim asks the claim's class's provisioner for a volume: every
// provisioner is external here (there are no in-tree plugins), so it is
// the storage-provisioner annotations and the ExternalProvisioning event.
func (c *Controller) provisionClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	name := storagehelpers.GetPersistentVolumeClaimClass(claim)
	class, err := c.getClass(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			c.Recorder.Event(claim, corev1.EventTypeWarning, ProvisioningFailed, err.Error())
			return nil
		}
		return err
	}
	if strings.HasPrefix(class.Provisioner, "kubernetes.io/") {
		// An in-tree plugin's name: none is built in.
		c.Recorder.Event(claim, corev1.EventTypeWarning, ProvisioningFailed, "no volume plugin matched name: "+class.Provisioner)
		return nil
	}
	updated, err := c.setClaimProvisioner(ctx, claim, class.Provisioner)
	if err != nil {
		c.Recorder.Event(claim, corev1.EventTypeWarning, ProvisioningFailed, fmt.Sprintf("Error saving claim: %v", err))
		return err
	}
	msg := fmt.Sprintf("Waiting for a volume to be created either by the external provisioner '%s' "+
		"or manually by the system administrator. If volume creation is delayed, please verify that "+
		"the provisioner is running and correctly registered.", class.Provisioner)
	c.Recorder.Event(updated, corev1.EventTypeNormal, ExternalProvisioning, msg)
	return nil
}

func (c *Controller) setClaimProvisioner(ctx context.Context, claim *corev1.PersistentVolumeClaim, provisioner string) (*corev1.PersistentVolumeClaim, error) {
	if claim.Annotations[storagehelpers.AnnStorageProvisioner] == provisioner {
		return claim, nil
	}
	clone := claim.DeepCopy()
	metav1.SetMetaDataAnnotation(&clone.ObjectMeta, storagehelpers.AnnBetaStorageProvisioner, provisioner)
	metav1.SetMetaDataAnnotation(&clone.ObjectMeta, storagehelpers.AnnStorageProvisioner, provisioner)
	return c.Core.CoreV1().PersistentVolumeClaims(clone.Namespace).Update(ctx, clone, metav1.UpdateOptions{})
}

// updateClaimStatus writes the claim's phase and, from volume (nil:
// cleared), its accessModes, capacity (only when it becomes Bound: a
// difference may be meant) and currentVolumeAttributesClassName (only
// from Pending to Bound).
func (c *Controller) updateClaimStatus(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, volume *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	logger := klog.FromContext(ctx)
	clone := claim.DeepCopy()
	dirty := false
	if claim.Status.Phase != phase {
		clone.Status.Phase, dirty = phase, true
	}
	if volume == nil {
		if claim.Status.AccessModes != nil || claim.Status.Capacity != nil || claim.Status.CurrentVolumeAttributesClassName != nil {
			clone.Status.AccessModes, clone.Status.Capacity, clone.Status.CurrentVolumeAttributesClassName = nil, nil, nil
			dirty = true
		}
	} else {
		if !reflect.DeepEqual(claim.Status.AccessModes, volume.Spec.AccessModes) {
			clone.Status.AccessModes, dirty = volume.Spec.AccessModes, true
		}
		if claim.Status.Phase != phase {
			volumeCap, ok := volume.Spec.Capacity[corev1.ResourceStorage]
			if !ok {
				return nil, fmt.Errorf("PersistentVolume %q is without a storage capacity", volume.Name)
			}
			claimCap, has := claim.Status.Capacity[corev1.ResourceStorage]
			if pre, ok := volume.Annotations[annPreResizeCapacity]; ok {
				q, err := resource.ParseQuantity(pre)
				if err != nil {
					logger.Info("Parsing pre-resize-capacity from PV failed", "volumeName", volume.Name, "err", err)
					q = volumeCap
				}
				if clone.Status.Capacity == nil {
					clone.Status.Capacity = corev1.ResourceList{}
				}
				clone.Status.Capacity[corev1.ResourceStorage] = q
				dirty = true
			} else if !has || volumeCap.Cmp(claimCap) != 0 {
				clone.Status.Capacity, dirty = volume.Spec.Capacity, true
			}
		}
		if claim.Status.Phase == corev1.ClaimPending && phase == corev1.ClaimBound &&
			!reflect.DeepEqual(claim.Status.CurrentVolumeAttributesClassName, volume.Spec.VolumeAttributesClassName) {
			clone.Status.CurrentVolumeAttributesClassName, dirty = volume.Spec.VolumeAttributesClassName, true
		}
	}
	if !dirty {
		return claim, nil
	}
	updated, err := c.Core.CoreV1().PersistentVolumeClaims(clone.Namespace).UpdateStatus(ctx, clone, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	logger.V(2).Info("Claim entered phase", "PVC", klog.KObj(claim), "phase", phase)
	return updated, nil
}

// updateClaimStatusWithEvent writes the phase and emits the event only
// when the phase changes.
func (c *Controller) updateClaimStatusWithEvent(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, volume *corev1.PersistentVolume, eventtype, reason, message string) (*corev1.PersistentVolumeClaim, error) {
	if claim.Status.Phase == phase {
		return claim, nil
	}
	updated, err := c.updateClaimStatus(ctx, claim, phase, volume)
	if err != nil {
		return nil, err
	}
	c.Recorder.Event(updated, eventtype, reason, message)
	return updated, nil
}
