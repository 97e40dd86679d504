package volumebinding

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/storage/ephemeral"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

var errNoPodVolumeForNode = errors.New("no pod volume found for node")

// Reserve assumes the node's choice: the chosen PVs pre-bound to their
// claims (claimRef, pv.kubernetes.io/bound-by-controller), the claims to
// provision with volume.kubernetes.io/selected-node, so the next cycles
// see them so.
func (pl *VolumeBinding) Reserve(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, nodeName string) *framework.Status {
	s, err := getStateData(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	volumes, ok := s.podVolumesByNode[nodeName]
	if !ok {
		// A pod without claims.
		s.allBound = true
		return nil
	}
	allBound, err := pl.assume(klog.FromContext(ctx), pod, nodeName, volumes)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.allBound = allBound
	return nil
}

// assume is upstream's AssumePodVolumes: true if every claim is bound
// already.
func (pl *VolumeBinding) assume(logger klog.Logger, pod *v1.Pod, nodeName string, volumes *podVolumes) (bool, error) {
	logger.V(4).Info("AssumePodVolumes", "pod", klog.KObj(pod), "node", klog.KRef("", nodeName))
	if pl.allClaimsBound(pod) {
		logger.V(4).Info("AssumePodVolumes: all PVCs bound and nothing to do", "pod", klog.KObj(pod), "node", klog.KRef("", nodeName))
		return true, nil
	}
	var bindings []*binding
	for _, b := range volumes.staticBindings {
		pv, dirty, err := storagehelpers.GetBindVolumeToClaim(b.pv, b.pvc)
		if err == nil && dirty {
			err = pl.pvCache.Assume(pv)
		}
		if err != nil {
			pl.revert(&podVolumes{staticBindings: bindings})
			return false, err
		}
		bindings = append(bindings, &binding{pvc: b.pvc, pv: pv})
	}
	var provisions []*v1.PersistentVolumeClaim
	for _, pvc := range volumes.dynamicProvisions {
		// The informer's object is shared: change a copy.
		c := pvc.DeepCopy()
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, storagehelpers.AnnSelectedNode, nodeName)
		if err := pl.pvcCache.Assume(c); err != nil {
			pl.revert(&podVolumes{staticBindings: bindings, dynamicProvisions: provisions})
			return false, err
		}
		provisions = append(provisions, c)
	}
	volumes.staticBindings, volumes.dynamicProvisions = bindings, provisions
	return false, nil
}

// allClaimsBound: every claim of the pod is fully bound (as assumed).
func (pl *VolumeBinding) allClaimsBound(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		name, isEphemeral := claimName(pod, &pod.Spec.Volumes[i])
		if name == "" && !isEphemeral {
			continue
		}
		pvc, err := pl.pvcCache.Get(pod.Namespace + "/" + name)
		if err != nil || !fullyBound(pvc) {
			return false
		}
		if isEphemeral && ephemeral.VolumeIsForPod(pod, pvc) != nil {
			return false
		}
	}
	return true
}

// revert drops what assume laid over the informers' objects.
func (pl *VolumeBinding) revert(volumes *podVolumes) {
	for _, b := range volumes.staticBindings {
		pl.pvCache.Restore(b.pv)
	}
	for _, pvc := range volumes.dynamicProvisions {
		pl.pvcCache.Restore(pvc)
	}
}

// Unreserve reverts Reserve's assumptions; idempotent.
func (pl *VolumeBinding) Unreserve(_ context.Context, cs *framework.CycleState, _ *v1.Pod, nodeName string) {
	s, err := getStateData(cs)
	if err != nil {
		return
	}
	if volumes, ok := s.podVolumesByNode[nodeName]; ok {
		pl.revert(volumes)
	}
}

// PreBindPreFlight: Skip when Reserve found every claim bound.
func (pl *VolumeBinding) PreBindPreFlight(_ context.Context, cs *framework.CycleState, _ *v1.Pod, nodeName string) *framework.Status {
	s, err := getStateData(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	if s.allBound {
		return framework.NewStatus(framework.Skip)
	}
	if _, ok := s.podVolumesByNode[nodeName]; !ok {
		return framework.AsStatus(fmt.Errorf("%w %q", errNoPodVolumeForNode, nodeName))
	}
	return nil
}

// PreBind writes Reserve's choice (the PVs' claimRefs, the claims'
// selected node) and waits until the PV controller has bound every claim.
func (pl *VolumeBinding) PreBind(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, nodeName string) *framework.Status {
	s, err := getStateData(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	if s.allBound {
		return nil
	}
	volumes, ok := s.podVolumesByNode[nodeName]
	if !ok {
		return framework.AsStatus(fmt.Errorf("%w %q", errNoPodVolumeForNode, nodeName))
	}
	logger := klog.FromContext(ctx)
	logger.V(5).Info("Trying to bind volumes for pod", "pod", klog.KObj(pod))
	if err := pl.bindPodVolumes(ctx, pod, volumes); err != nil {
		logger.V(5).Info("Failed to bind volumes for pod", "pod", klog.KObj(pod), "err", err)
		return framework.AsStatus(err)
	}
	logger.V(5).Info("Success binding volumes for pod", "pod", klog.KObj(pod))
	return nil
}

// bindPodVolumes is upstream's BindPodVolumes: the API updates, then the
// wait, looked at again at every claim or PV event and every
// pollInterval, up to bindTimeout.
func (pl *VolumeBinding) bindPodVolumes(ctx context.Context, pod *v1.Pod, volumes *podVolumes) error {
	logger := klog.FromContext(ctx)
	logger.V(4).Info("BindPodVolumes", "pod", klog.KObj(pod), "node", klog.KRef("", pod.Spec.NodeName))
	if err := pl.bindAPIUpdate(ctx, pod, volumes); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, pl.bindTimeout, context.DeadlineExceeded)
	defer cancel()
	tick := time.NewTicker(pl.pollInterval)
	defer tick.Stop()
	for {
		// Taken before looking, so no event is missed in between.
		pvcChanged, pvChanged := pl.pvcCache.Changed(), pl.pvCache.Changed()
		done, err := pl.checkBindings(logger, pod, volumes)
		if err != nil {
			return fmt.Errorf("binding volumes: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("binding volumes: %w", context.Cause(ctx))
		case <-pvcChanged:
		case <-pvChanged:
		case <-tick.C:
		}
	}
}

// bindAPIUpdate writes the PVs, then the claims, keeping what the API
// server returned; what was not written is reverted in the caches.
func (pl *VolumeBinding) bindAPIUpdate(ctx context.Context, pod *v1.Pod, volumes *podVolumes) error {
	logger := klog.FromContext(ctx)
	bound, provisioned := 0, 0
	defer func() {
		pl.revert(&podVolumes{staticBindings: volumes.staticBindings[bound:], dynamicProvisions: volumes.dynamicProvisions[provisioned:]})
	}()
	// No API rollback if the binding fails: the PV controller takes it
	// from here.
	for _, b := range volumes.staticBindings {
		logger.V(5).Info("Updating PersistentVolume: binding to claim", "pod", klog.KObj(pod), "PV", klog.KObj(b.pv), "PVC", klog.KObj(b.pvc))
		pv, err := pl.client.CoreV1().PersistentVolumes().Update(ctx, b.pv, metav1.UpdateOptions{})
		if err != nil {
			logger.V(4).Info("Updating PersistentVolume: binding to claim failed", "pod", klog.KObj(pod), "PV", klog.KObj(b.pv), "PVC", klog.KObj(b.pvc), "err", err)
			return err
		}
		logger.V(2).Info("Updated PersistentVolume with claim. Waiting for binding to complete", "pod", klog.KObj(pod), "PV", klog.KObj(b.pv), "PVC", klog.KObj(b.pvc))
		b.pv = pv
		bound++
	}
	// The provisioner signals a failure back by removing the annotation.
	for i, pvc := range volumes.dynamicProvisions {
		logger.V(5).Info("Updating claims objects to trigger volume provisioning", "pod", klog.KObj(pod), "PVC", klog.KObj(pvc))
		c, err := pl.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{})
		if err != nil {
			logger.V(4).Info("Updating PersistentVolumeClaim: binding to volume failed", "PVC", klog.KObj(pvc), "err", err)
			return err
		}
		volumes.dynamicProvisions[i] = c
		provisioned++
	}
	return nil
}

// checkBindings is upstream's: true once every claim written is fully
// bound; an error when scheduling must be retried (the pod is gone, a PV
// lost its claimRef or does not fit the node, a provisioner gave the
// claim up). It reads the informers' objects, not the assumed ones.
func (pl *VolumeBinding) checkBindings(logger klog.Logger, pod *v1.Pod, volumes *podVolumes) (bool, error) {
	node, err := pl.nodeLister.Get(pod.Spec.NodeName)
	if err != nil {
		return false, fmt.Errorf("failed to get node %q: %w", pod.Spec.NodeName, err)
	}
	if _, err := pl.podLister.Pods(pod.Namespace).Get(pod.Name); err != nil {
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("pod does not exist any more: %w", err)
		}
		logger.Error(err, "Failed to get pod from the lister", "pod", klog.KObj(pod))
	}
	for _, b := range volumes.staticBindings {
		pv, err := pl.pvCache.GetAPIObj(b.pv.Name)
		if err != nil {
			return false, fmt.Errorf("failed to check binding: %w", err)
		}
		pvc, err := pl.pvcCache.GetAPIObj(keyOf(b.pvc))
		if err != nil {
			return false, fmt.Errorf("failed to check binding: %w", err)
		}
		// The informer has not seen our write yet.
		if olderThan(pv, b.pv) {
			return false, nil
		}
		if err := storagehelpers.CheckNodeAffinity(pv, node.Labels); err != nil {
			return false, fmt.Errorf("pv %q node affinity doesn't match node %q: %w", pv.Name, node.Name, err)
		}
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID == "" {
			return false, fmt.Errorf("ClaimRef got reset for pv %q", pv.Name)
		}
		if !fullyBound(pvc) {
			return false, nil
		}
	}
	for _, c := range volumes.dynamicProvisions {
		pvc, err := pl.pvcCache.GetAPIObj(keyOf(c))
		if err != nil {
			return false, fmt.Errorf("failed to check provisioning pvc: %w", err)
		}
		if olderThan(pvc, c) {
			return false, nil
		}
		if pvc.Annotations == nil {
			return false, fmt.Errorf("selectedNode annotation reset for PVC %q", pvc.Name)
		}
		if pvc.Annotations[storagehelpers.AnnSelectedNode] != pod.Spec.NodeName {
			// The provisioner could not provision there and asks for the
			// pod to be scheduled again.
			return false, fmt.Errorf("provisioning failed for PVC %q", pvc.Name)
		}
		if pvc.Spec.VolumeName != "" {
			pv, err := pl.pvCache.GetAPIObj(pvc.Spec.VolumeName)
			if err != nil {
				if apierrors.IsNotFound(err) {
					// Not seen yet, or deleted (then the claim goes
					// unbound in time).
					return false, nil
				}
				return false, fmt.Errorf("failed to get pv %q from cache: %w", pvc.Spec.VolumeName, err)
			}
			if err := storagehelpers.CheckNodeAffinity(pv, node.Labels); err != nil {
				return false, fmt.Errorf("pv %q node affinity doesn't match node %q: %w", pv.Name, node.Name, err)
			}
		}
		if !fullyBound(pvc) {
			return false, nil
		}
	}
	logger.V(2).Info("All PVCs for pod are bound", "pod", klog.KObj(pod))
	return true, nil
}

// olderThan: a's resourceVersion is below b's (both numeric, as etcd's).
func olderThan(a, b metav1.Object) bool {
	x, err1 := strconv.ParseUint(a.GetResourceVersion(), 10, 64)
	y, err2 := strconv.ParseUint(b.GetResourceVersion(), 10, 64)
	return err1 == nil && err2 == nil && x < y
}
