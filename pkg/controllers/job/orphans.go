package job

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// orphanReconciler removes the tracking finalizer from pods that no
// unfinished Job controls (orphans, pods of deleted or finished Jobs), as
// upstream's orphan queue.
type orphanReconciler struct {
	client client.Client
	core   kubernetes.Interface
}

func (o *orphanReconciler) setupWithManager(mgr ctrl.Manager) error {
	withFinalizer := predicate.NewPredicateFuncs(func(obj client.Object) bool {
		p, ok := obj.(*corev1.Pod)
		return ok && hasTrackingFinalizer(p)
	})
	return ctrl.NewControllerManagedBy(mgr).Named("job-orphan-pods").
		For(&corev1.Pod{}, builder.WithPredicates(withFinalizer)).
		Watches(&batchv1.Job{}, handler.Funcs{
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if j, ok := e.ObjectNew.(*batchv1.Job); ok && isJobFinished(j) {
					o.enqueuePodsOf(ctx, j, q)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if j, ok := e.Object.(*batchv1.Job); ok {
					o.enqueuePodsOf(ctx, j, q)
				}
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(o)
}

// enqueuePodsOf sends the pods with the finalizer the Job controlled or
// selects.
func (o *orphanReconciler) enqueuePodsOf(ctx context.Context, j *batchv1.Job, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	var pods corev1.PodList
	if err := o.client.List(ctx, &pods, client.InNamespace(j.Namespace), client.MatchingFields{podOwnerIndex: string(j.UID)}, client.UnsafeDisableDeepCopy); err != nil {
		klog.FromContext(ctx).Error(err, "Listing the pods of a Job", "job", klog.KObj(j))
		return
	}
	for i := range pods.Items {
		if hasTrackingFinalizer(&pods.Items[i]) {
			q.Add(requestFor(&pods.Items[i]))
		}
	}
}

func (o *orphanReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	pod := &corev1.Pod{}
	if err := o.client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("Orphan pod has been deleted", "pod", req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !hasTrackingFinalizer(pod) {
		return ctrl.Result{}, nil
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if ref.Kind != "Job" || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
			// Not a Job's: not ours to touch.
			return ctrl.Result{}, nil
		}
		job := &batchv1.Job{}
		err := o.client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, job)
		if err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		if err == nil && job.UID == ref.UID {
			if m := job.Spec.ManagedBy; m != nil && *m != batchv1.JobControllerName {
				logger.V(2).Info("Skip cleanup of the job finalizer for a pod owned by a job that is managed by an external controller", "pod", klog.KObj(pod), "podUID", pod.UID, "jobUID", job.UID, "controllerName", *m)
				return ctrl.Result{}, nil
			}
			if !isJobFinished(job) {
				// Its Job counts it.
				return ctrl.Result{}, nil
			}
		}
	}
	_, err := o.core.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, removeFinalizerPatch(pod), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}
