package statefulset

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Creating, updating and deleting a set's pods and claims, with
// upstream's events.

// recordPodEvent: Successful<Verb> "<Verb> Pod <pod> in StatefulSet <set>
// successful", or Failed<Verb> with the error.
func (r *Reconciler) recordPodEvent(verb string, set *appsv1.StatefulSet, pod *corev1.Pod, err error) {
	v := title(verb)
	if err == nil {
		r.Recorder.Event(set, corev1.EventTypeNormal, "Successful"+v, fmt.Sprintf("%s Pod %s in StatefulSet %s successful", v, pod.Name, set.Name))
		return
	}
	r.Recorder.Event(set, corev1.EventTypeWarning, "Failed"+v, fmt.Sprintf("%s Pod %s in StatefulSet %s failed error: %s", v, pod.Name, set.Name, err))
}

func (r *Reconciler) recordClaimEvent(verb string, set *appsv1.StatefulSet, pod *corev1.Pod, claim *corev1.PersistentVolumeClaim, err error) {
	v := title(verb)
	if err == nil {
		r.Recorder.Event(set, corev1.EventTypeNormal, "Successful"+v, fmt.Sprintf("%s Claim %s Pod %s in StatefulSet %s success", v, claim.Name, pod.Name, set.Name))
		return
	}
	r.Recorder.Event(set, corev1.EventTypeWarning, "Failed"+v, fmt.Sprintf("%s Claim %s for Pod %s in StatefulSet %s failed error: %s", v, claim.Name, pod.Name, set.Name, err))
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (r *Reconciler) getClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	var c corev1.PersistentVolumeClaim
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// createStatefulPod creates the pod's claims, then the pod, then sets the
// claims' owners for the retention policy.
func (r *Reconciler) createStatefulPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	if err := r.createClaims(ctx, set, pod); err != nil {
		r.recordPodEvent("create", set, pod, err)
		return err
	}
	created, err := r.Core.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return err
	}
	if err == nil {
		r.exp.created(setKey(set), set.UID, "pod", created.Name)
		pod = created
	}
	if uerr := r.updateClaimsForRetentionPolicy(ctx, set, pod); uerr != nil {
		r.recordPodEvent("update", set, pod, uerr)
		return uerr
	}
	r.recordPodEvent("create", set, pod, err)
	return err
}

// updateStatefulPod fixes the pod's identity, storage and claims' owners.
func (r *Reconciler) updateStatefulPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	attempted := false
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		consistent := true
		if !identityMatches(set, pod) {
			updateIdentity(set, pod)
			consistent = false
		}
		if !storageMatches(set, pod) {
			updateStorage(set, pod)
			consistent = false
			if err := r.createClaims(ctx, set, pod); err != nil {
				r.recordPodEvent("update", set, pod, err)
				return err
			}
		}
		match, err := r.claimsMatchRetentionPolicy(ctx, set, pod)
		if err != nil {
			r.recordPodEvent("update", set, pod, err)
			return err
		}
		if !match {
			if err := r.updateClaimsForRetentionPolicy(ctx, set, pod); err != nil {
				r.recordPodEvent("update", set, pod, err)
				return err
			}
			consistent = false
		}
		if consistent {
			return nil
		}
		attempted = true
		_, err = r.Core.CoreV1().Pods(set.Namespace).Update(ctx, pod, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		var fresh corev1.Pod
		if gerr := r.Client.Get(ctx, client.ObjectKeyFromObject(pod), &fresh); gerr == nil {
			pod = &fresh
		}
		return err
	})
	if attempted {
		r.recordPodEvent("update", set, pod, err)
	}
	return err
}

// deleteStatefulPod deletes the pod; gone already counts as deleted.
func (r *Reconciler) deleteStatefulPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	err := r.Core.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		r.recordPodEvent("delete", set, pod, err)
		return err
	}
	r.exp.deleted(setKey(set), set.UID, pod.Name, pod.UID)
	r.recordPodEvent("delete", set, pod, nil)
	return nil
}

// createClaims creates the pod's missing claims; a claim being deleted is
// an error (the pod must wait for it to go).
func (r *Reconciler) createClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	var errs []error
	for _, t := range set.Spec.VolumeClaimTemplates {
		claim := claimsOf(set, pod)[t.Name]
		existing, err := r.getClaim(ctx, claim.Namespace, claim.Name)
		switch {
		case apierrors.IsNotFound(err):
			_, err := r.Core.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, &claim, metav1.CreateOptions{})
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to create PVC %s: %w", claim.Name, err))
			} else {
				r.exp.created(setKey(set), set.UID, "pvc", claim.Name)
			}
			if err == nil || !apierrors.IsAlreadyExists(err) {
				r.recordClaimEvent("create", set, pod, &claim, err)
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("failed to retrieve PVC %s: %w", claim.Name, err))
			r.recordClaimEvent("create", set, pod, &claim, err)
		case existing.DeletionTimestamp != nil:
			errs = append(errs, fmt.Errorf("pvc %s is being deleted", claim.Name))
		}
	}
	return errors.Join(errs...)
}

// createMissingClaims creates the claims of a pending pod and sets their
// owners.
func (r *Reconciler) createMissingClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	if err := r.createClaims(ctx, set, pod); err != nil {
		return err
	}
	if err := r.updateClaimsForRetentionPolicy(ctx, set, pod); err != nil {
		r.recordPodEvent("update", set, pod, err)
		return err
	}
	return nil
}

// Retention policy: which of the set and the pod own a claim.

func retentionPolicy(set *appsv1.StatefulSet) appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	p := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
	if set.Spec.PersistentVolumeClaimRetentionPolicy != nil {
		p = *set.Spec.PersistentVolumeClaimRetentionPolicy
	}
	return p
}

func matchesRef(ref *metav1.OwnerReference, obj metav1.Object, gvk schema.GroupVersionKind) bool {
	return gvk.GroupVersion().String() == ref.APIVersion && gvk.Kind == ref.Kind && ref.Name == obj.GetName()
}

// hasUnexpectedController: a Delete policy, and someone other than the
// set or the pod (or an older set or pod of the same name) controls the
// claim.
func hasUnexpectedController(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	p := retentionPolicy(set)
	const retain = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if p.WhenScaled == retain && p.WhenDeleted == retain {
		return false
	}
	for i := range claim.OwnerReferences {
		ref := &claim.OwnerReferences[i]
		if matchesRef(ref, set, controllerKind) {
			if ref.UID != set.UID {
				return true
			}
			continue
		}
		if matchesRef(ref, pod, podKind) {
			if ref.UID != pod.UID {
				return true
			}
			continue
		}
		if ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

func hasNonControllerOwner(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	for _, ref := range claim.OwnerReferences {
		if (ref.UID == set.UID || ref.UID == pod.UID) && (ref.Controller == nil || !*ref.Controller) {
			return true
		}
	}
	return false
}

func hasOwnerRef(target, owner metav1.Object) bool {
	for _, ref := range target.GetOwnerReferences() {
		if ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}

// hasStaleOwnerRef: the claim names obj, with another UID.
func hasStaleOwnerRef(claim *corev1.PersistentVolumeClaim, obj metav1.Object, gvk schema.GroupVersionKind) bool {
	for i := range claim.OwnerReferences {
		if matchesRef(&claim.OwnerReferences[i], obj, gvk) {
			return claim.OwnerReferences[i].UID != obj.GetUID()
		}
	}
	return false
}

// isClaimOwnerUpToDate: the claim's owners are as the policy wants (or the
// claim is someone else's business):
//
//	Retain/Retain: neither; Retain on scale, Delete on set deletion: the
//	set; Delete on scale, Retain on deletion: the pod once scaled down;
//	Delete/Delete: the set, or the pod once scaled down.
func isClaimOwnerUpToDate(logger klog.Logger, claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	if hasStaleOwnerRef(claim, set, controllerKind) || hasStaleOwnerRef(claim, pod, podKind) {
		return true
	}
	if hasUnexpectedController(claim, set, pod) {
		return !hasOwnerRef(claim, set) && !hasOwnerRef(claim, pod)
	}
	if hasNonControllerOwner(claim, set, pod) {
		return false
	}
	p := retentionPolicy(set)
	const retain = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	const del = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	scaledDown := !podInOrdinalRange(pod, set)
	switch {
	case p.WhenScaled == retain && p.WhenDeleted == del:
		return hasOwnerRef(claim, set) && !hasOwnerRef(claim, pod)
	case p.WhenScaled == del && p.WhenDeleted == retain:
		return !hasOwnerRef(claim, set) && scaledDown == hasOwnerRef(claim, pod)
	case p.WhenScaled == del && p.WhenDeleted == del:
		return scaledDown != hasOwnerRef(claim, set) && scaledDown == hasOwnerRef(claim, pod)
	case p.WhenScaled == retain && p.WhenDeleted == retain:
	default:
		logger.Error(nil, "Unknown policy, treating as Retain", "policy", set.Spec.PersistentVolumeClaimRetentionPolicy)
	}
	return !hasOwnerRef(claim, set) && !hasOwnerRef(claim, pod)
}

// updateClaimOwners sets the claim's references to the set and the pod as
// the policy wants.
func updateClaimOwners(logger klog.Logger, claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) {
	unexpected := hasUnexpectedController(claim, set, pod)
	refs := make([]metav1.OwnerReference, 0, len(claim.OwnerReferences)+1)
	for i := range claim.OwnerReferences {
		ref := &claim.OwnerReferences[i]
		if !matchesRef(ref, set, controllerKind) && !matchesRef(ref, pod, podKind) {
			refs = append(refs, *ref)
		}
	}
	if !unexpected {
		p := retentionPolicy(set)
		const retain = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
		const del = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
		scaledDown := !podInOrdinalRange(pod, set)
		switch {
		case p.WhenScaled == retain && p.WhenDeleted == retain:
		case p.WhenScaled == retain && p.WhenDeleted == del:
			refs = addControllerRef(refs, set, controllerKind)
		case p.WhenScaled == del && p.WhenDeleted == retain:
			if scaledDown {
				refs = addControllerRef(refs, pod, podKind)
			}
		case p.WhenScaled == del && p.WhenDeleted == del:
			if scaledDown {
				refs = addControllerRef(refs, pod, podKind)
			} else {
				refs = addControllerRef(refs, set, controllerKind)
			}
		default:
			logger.Error(nil, "Unknown policy, treating as Retain", "policy", set.Spec.PersistentVolumeClaimRetentionPolicy)
		}
	}
	claim.OwnerReferences = refs
}

func addControllerRef(refs []metav1.OwnerReference, owner metav1.Object, gvk schema.GroupVersionKind) []metav1.OwnerReference {
	for _, ref := range refs {
		if ref.UID == owner.GetUID() {
			return refs
		}
	}
	return append(refs, *metav1.NewControllerRef(owner, gvk))
}

// claimsMatchRetentionPolicy: the owners of each of the pod's claims that
// exist are up to date.
func (r *Reconciler) claimsMatchRetentionPolicy(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	logger := klog.FromContext(ctx)
	ordinal := getOrdinal(pod)
	for i := range set.Spec.VolumeClaimTemplates {
		name := claimName(set, &set.Spec.VolumeClaimTemplates[i], ordinal)
		claim, err := r.getClaim(ctx, set.Namespace, name)
		switch {
		case apierrors.IsNotFound(err):
			logger.V(4).Info("Expected claim missing, continuing to pick up in next iteration", "PVC", klog.KRef(set.Namespace, name))
		case err != nil:
			return false, fmt.Errorf("Could not retrieve claim %s for %s when checking PVC deletion policy: %w", name, pod.Name, err)
		default:
			if !isClaimOwnerUpToDate(logger, claim, set, pod) {
				return false, nil
			}
		}
	}
	return true, nil
}

// updateClaimsForRetentionPolicy updates the owners of the pod's claims
// that are not up to date.
func (r *Reconciler) updateClaimsForRetentionPolicy(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	logger := klog.FromContext(ctx)
	ordinal := getOrdinal(pod)
	for i := range set.Spec.VolumeClaimTemplates {
		name := claimName(set, &set.Spec.VolumeClaimTemplates[i], ordinal)
		claim, err := r.getClaim(ctx, set.Namespace, name)
		switch {
		case apierrors.IsNotFound(err):
			logger.V(4).Info("Expected claim missing, continuing to pick up in next iteration", "PVC", klog.KRef(set.Namespace, name))
		case err != nil:
			return fmt.Errorf("Could not retrieve claim %s not found for %s when checking PVC deletion policy: %w", name, pod.Name, err)
		default:
			if hasUnexpectedController(claim, set, pod) {
				r.Recorder.Event(set, corev1.EventTypeWarning, "ConflictingController",
					fmt.Sprintf("PersistentVolumeClaim %s has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim", name))
			}
			if !isClaimOwnerUpToDate(logger, claim, set, pod) {
				updateClaimOwners(logger, claim, set, pod)
				if _, err := r.Core.CoreV1().PersistentVolumeClaims(set.Namespace).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
					return fmt.Errorf("could not update claim %s for delete policy ownerRefs: %w", name, err)
				}
			}
		}
	}
	return nil
}

// podClaimIsStale: with a Delete-on-scale policy, one of the pod's claims
// still belongs to an earlier pod of its name (it is being deleted): the
// pod must wait.
func (r *Reconciler) podClaimIsStale(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	if retentionPolicy(set).WhenScaled == appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		return false, nil
	}
	for _, c := range claimsOf(set, pod) {
		claim, err := r.getClaim(ctx, c.Namespace, c.Name)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return false, err
		case hasStaleOwnerRef(claim, pod, podKind):
			return true, nil
		}
	}
	return false, nil
}
