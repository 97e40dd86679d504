// Package pvcprotection is upstream's
// persistentvolumeclaim-protection-controller: a PersistentVolumeClaim
// being deleted keeps its kubernetes.io/pvc-protection finalizer while a
// scheduled pod uses it (a persistentVolumeClaim volume, or the generic
// ephemeral volume the claim was made for, unless that pod is shut down),
// checked in the cache and then by a live list of the namespace's pods;
// a claim without the finalizer gets it. With upstream's
// PersistentVolumeClaimUnusedSinceTime (beta, on in 1.37) a Bound claim
// not being deleted carries the Unused condition: False (PodUsingPVC)
// while a pod not terminated references it, True (NoPodsUsingPVC)
// otherwise, its lastTransitionTime telling since when.
package pvcprotection

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/storage/ephemeral"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/admission/storageobjectinuseprotection"
	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume/podclaims"
)

// Name is upstream's name of the controller.
const Name = "persistentvolumeclaim-protection-controller"

// Finalizer is the finalizer it manages.
const Finalizer = storageobjectinuseprotection.PVCProtectionFinalizer

// The Unused condition's reasons and messages, upstream's.
const (
	UnusedCondition = corev1.PersistentVolumeClaimUnused
	ReasonPodUsing  = "PodUsingPVC"
	MessagePodUsing = "A pod is currently referencing this PVC"
	ReasonNoPods    = "NoPodsUsingPVC"
	MessageNoPods   = "No pods are currently referencing this PVC"
)

// Reconciler keeps the pvc-protection finalizer and the Unused condition.
type Reconciler struct {
	// Client reads PVCs and pods through the manager's cache.
	Client client.Client
	// Core writes claims and lists pods live before a finalizer goes.
	Core kubernetes.Interface
	// Now is the time of the Unused condition (tests); nil: metav1.Now.
	Now func() metav1.Time
}

// SetupWithManager registers the controller: claims that need it and the
// pods that use claims.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Now == nil {
		r.Now = metav1.Now
	}
	if err := podclaims.IndexPods(mgr); err != nil {
		return err
	}
	interesting := func(o client.Object) bool {
		pvc, ok := o.(*corev1.PersistentVolumeClaim)
		return ok && (findCondition(pvc.Status.Conditions) == nil || needsAdding(pvc) || isDeletionCandidate(pvc))
	}
	return builder.ControllerManagedBy(mgr).Named("pvcprotection").
		For(&corev1.PersistentVolumeClaim{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(e event.CreateEvent) bool { return interesting(e.Object) },
			UpdateFunc:  func(e event.UpdateEvent) bool { return interesting(e.ObjectNew) },
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(e event.GenericEvent) bool { return interesting(e.Object) },
		})).
		// With the Unused condition every event of a pod counts
		// (upstream's enqueuePVCs); an update maps the old pod too, which
		// may be another of the same name.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podClaims)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

func podClaims(_ context.Context, o client.Object) []reconcile.Request {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	for i := range pod.Spec.Volumes {
		if name := podclaims.ClaimName(pod, &pod.Spec.Volumes[i]); name != "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: name}})
		}
	}
	return reqs
}

func isDeletionCandidate(pvc *corev1.PersistentVolumeClaim) bool {
	return pvc.DeletionTimestamp != nil && slices.Contains(pvc.Finalizers, Finalizer)
}

func needsAdding(pvc *corev1.PersistentVolumeClaim) bool {
	return pvc.DeletionTimestamp == nil && !slices.Contains(pvc.Finalizers, Finalizer)
}

// Reconcile brings one claim's Unused condition and finalizer up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := klog.FromContext(ctx)
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, req.NamespacedName, pvc); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("PVC not found, ignoring", "PVC", klog.KRef(req.Namespace, req.Name))
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if pvc.DeletionTimestamp == nil && pvc.Status.Phase == corev1.ClaimBound {
		used, err := r.usedInCache(ctx, pvc, usesForUnused)
		if err != nil {
			return reconcile.Result{}, err
		}
		if pvc, err = r.updateUnused(ctx, pvc, used); err != nil {
			return reconcile.Result{}, ignoreGone(err)
		}
	}
	if isDeletionCandidate(pvc) {
		used, err := r.usedForDeletion(ctx, pvc)
		if err != nil {
			return reconcile.Result{}, err
		}
		if !used {
			return reconcile.Result{}, r.setFinalizers(ctx, pvc, slices.DeleteFunc(slices.Clone(pvc.Finalizers), func(f string) bool { return f == Finalizer }), "Removed protection finalizer from PVC")
		}
		logger.V(2).Info("Keeping PVC because it is being used", "PVC", klog.KObj(pvc))
	}
	if needsAdding(pvc) {
		return reconcile.Result{}, r.setFinalizers(ctx, pvc, append(slices.Clone(pvc.Finalizers), Finalizer), "Added protection finalizer to PVC")
	}
	return reconcile.Result{}, nil
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

type usage func(pod *corev1.Pod, pvc *corev1.PersistentVolumeClaim) bool

func (r *Reconciler) usedInCache(ctx context.Context, pvc *corev1.PersistentVolumeClaim, uses usage) (bool, error) {
	pods, err := podclaims.PodsUsing(ctx, r.Client, pvc.Namespace, pvc.Name)
	if err != nil {
		return false, err
	}
	for i := range pods {
		if uses(&pods[i], pvc) {
			return true, nil
		}
	}
	return false, nil
}

// usedForDeletion: a pod in the cache uses the claim, or else one of a
// live list does (a pod the cache does not have yet must not lose its
// claim).
func (r *Reconciler) usedForDeletion(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (bool, error) {
	logger := klog.FromContext(ctx)
	if used, err := r.usedInCache(ctx, pvc, usesForDeletion); err != nil {
		logger.Error(err, "Cache-based list of pods failed", "PVC", klog.KObj(pvc))
	} else if used {
		return true, nil
	}
	logger.V(4).Info("Live listing Pods in namespace", "namespace", pvc.Namespace)
	list, err := r.Core.CoreV1().Pods(pvc.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for i := range list.Items {
		if usesForDeletion(&list.Items[i], pvc) {
			return true, nil
		}
	}
	logger.V(2).Info("PVC is unused", "PVC", klog.KObj(pvc))
	return false, nil
}

// usesForDeletion is upstream's podUsesPVCForDeletion: only a scheduled
// pod counts (the kubelet refuses to start a pod whose claim is being
// deleted); an ephemeral volume's claim counts while its pod is not shut
// down and the claim is the pod's own.
func usesForDeletion(pod *corev1.Pod, pvc *corev1.PersistentVolumeClaim) bool {
	if pod.Spec.NodeName == "" {
		return false
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name ||
			!isShutDown(pod) && v.Ephemeral != nil && ephemeral.VolumeClaimName(pod, v) == pvc.Name && ephemeral.VolumeIsForPod(pod, pvc) == nil {
			return true
		}
	}
	return false
}

// usesForUnused is upstream's podUsesPVCForUnusedSince: any pod not
// terminated that references the claim.
func usesForUnused(pod *corev1.Pod, pvc *corev1.PersistentVolumeClaim) bool {
	if podclaims.IsTerminated(pod) {
		return false
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name ||
			v.Ephemeral != nil && ephemeral.VolumeClaimName(pod, v) == pvc.Name && ephemeral.VolumeIsForPod(pod, pvc) == nil {
			return true
		}
	}
	return false
}

// isShutDown: the kubelet is done with the pod (deletionGracePeriodSeconds
// 0) or it was force-deleted; its claims may go, which also breaks a
// pod-finalizer/claim-finalizer cycle.
func isShutDown(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds == 0
}

func findCondition(conds []corev1.PersistentVolumeClaimCondition) *corev1.PersistentVolumeClaimCondition {
	for i := range conds {
		if conds[i].Type == UnusedCondition {
			return &conds[i]
		}
	}
	return nil
}

// updateUnused sets the Unused condition when it does not say used yet;
// it returns the claim as written (or pvc, unchanged).
func (r *Reconciler) updateUnused(ctx context.Context, pvc *corev1.PersistentVolumeClaim, used bool) (*corev1.PersistentVolumeClaim, error) {
	existing := findCondition(pvc.Status.Conditions)
	var status corev1.ConditionStatus
	var reason, message string
	switch {
	case used && (existing == nil || existing.Status == corev1.ConditionTrue):
		status, reason, message = corev1.ConditionFalse, ReasonPodUsing, MessagePodUsing
	case !used && (existing == nil || existing.Status != corev1.ConditionTrue):
		status, reason, message = corev1.ConditionTrue, ReasonNoPods, MessageNoPods
	default:
		return pvc, nil
	}
	clone := pvc.DeepCopy()
	cond := corev1.PersistentVolumeClaimCondition{Type: UnusedCondition, Status: status, LastTransitionTime: r.Now(), Reason: reason, Message: message}
	if c := findCondition(clone.Status.Conditions); c != nil {
		*c = cond
	} else {
		clone.Status.Conditions = append(clone.Status.Conditions, cond)
	}
	updated, err := r.Core.CoreV1().PersistentVolumeClaims(clone.Namespace).UpdateStatus(ctx, clone, metav1.UpdateOptions{})
	if err != nil {
		klog.FromContext(ctx).Error(err, "Error updating Unused condition in PVC status", "PVC", klog.KObj(pvc))
		return nil, err
	}
	klog.FromContext(ctx).V(3).Info("Updated Unused condition in PVC status", "PVC", klog.KObj(pvc), "status", status)
	return updated, nil
}

func (r *Reconciler) setFinalizers(ctx context.Context, pvc *corev1.PersistentVolumeClaim, finalizers []string, done string) error {
	clone := pvc.DeepCopy()
	clone.Finalizers = finalizers
	if _, err := r.Core.CoreV1().PersistentVolumeClaims(clone.Namespace).Update(ctx, clone, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		klog.FromContext(ctx).Error(err, "Error updating the protection finalizer of PVC", "PVC", klog.KObj(pvc))
		return err
	}
	klog.FromContext(ctx).V(3).Info(done, "PVC", klog.KObj(pvc))
	return nil
}
