package disruption

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// StalePodReconciler sets a pod's True DisruptionTarget condition to False
// once the pod has had it for Timeout without being deleted (an eviction
// or preemption that did not go through), as upstream's controller does.
// Conditions the kubelet set and those of finished pods are left alone.
type StalePodReconciler struct {
	// Client reads through the manager's cache and writes pods' status.
	Client client.Client
	// Timeout is how long the condition may stay; 0:
	// StalePodDisruptionTimeout.
	Timeout time.Duration
	// Clock is the time (tests); nil: the real one.
	Clock clock.PassiveClock

	once sync.Once
}

func (r *StalePodReconciler) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.Timeout == 0 {
			r.Timeout = StalePodDisruptionTimeout
		}
	})
}

// SetupWithManager watches the pods that have such a condition.
func (r *StalePodReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.init()
	stale := predicate.NewPredicateFuncs(func(obj client.Object) bool {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return false
		}
		has, _ := r.staleCondition(pod)
		return has
	})
	return ctrl.NewControllerManagedBy(mgr).Named("disruption-stale-pod").
		For(&corev1.Pod{}, builder.WithPredicates(stale)).
		Complete(r)
}

// staleCondition says whether the pod has a DisruptionTarget condition that
// may go stale, and how long until it does.
func (r *StalePodReconciler) staleCondition(pod *corev1.Pod) (bool, time.Duration) {
	if pod.DeletionTimestamp != nil {
		return false, 0
	}
	c := podutil.GetPodCondition(pod, corev1.DisruptionTarget)
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason == corev1.PodReasonTerminationByKubelet ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, 0
	}
	return true, max(r.Timeout-r.Clock.Since(c.LastTransitionTime.Time), 0)
}

// Reconcile resets the pod's condition if it is stale, or comes back when
// it will be.
func (r *StalePodReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	r.init()
	logger := klog.FromContext(ctx)
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("Skipping clearing DisruptionTarget condition because pod was deleted", "pod", req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	has, wait := r.staleCondition(pod)
	if !has {
		return reconcile.Result{}, nil
	}
	if wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	// Upstream's condition: status False, reason and message cleared.
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.DisruptionTarget {
			pod.Status.Conditions[i] = corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionFalse,
				ObservedGeneration: pod.Generation, LastTransitionTime: metav1.NewTime(r.Clock.Now())}
			break
		}
	}
	if err := r.Client.Status().Update(ctx, pod); err != nil {
		return reconcile.Result{}, err
	}
	logger.V(2).Info("Reset stale DisruptionTarget condition to False", "pod", klog.KObj(pod))
	return reconcile.Result{}, nil
}
