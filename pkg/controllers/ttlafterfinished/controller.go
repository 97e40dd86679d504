// Package ttlafterfinished is upstream's ttl-after-finished-controller:
// a finished Job (Complete or Failed) with spec.ttlSecondsAfterFinished
// is deleted, with foreground propagation and its UID as precondition,
// once that many seconds passed since it finished.
package ttlafterfinished

import (
	"context"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Name is upstream's name of the controller.
const Name = "ttl-after-finished-controller"

var (
	deletionDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem: "ttl_after_finished_controller", Name: "job_deletion_duration_seconds",
		Help:           "The time it took to delete the job since it became eligible for deletion",
		StabilityLevel: metrics.ALPHA,
		Buckets:        metrics.ExponentialBuckets(0.1, 2, 14),
	})
	registerMetrics sync.Once
)

// Reconciler deletes finished Jobs whose TTL ran out.
type Reconciler struct {
	// Client reads through the manager's cache.
	Client client.Client
	// Core reads the Job fresh before deleting it, and deletes it.
	Core kubernetes.Interface
	// Clock is the time (tests); nil: the real one.
	Clock clock.PassiveClock
	// Workers is --concurrent-ttl-after-finished-syncs; 0: 5.
	Workers int
}

// SetupWithManager registers the controller for the Jobs that may need
// cleaning up.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	registerMetrics.Do(func() { legacyregistry.MustRegister(deletionDuration) })
	workers := r.Workers
	if workers <= 0 {
		workers = 5
	}
	candidate := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return needsCleanup(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return needsCleanup(e.ObjectNew) },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return needsCleanup(e.Object) },
	}
	return ctrl.NewControllerManagedBy(mgr).Named("ttlafterfinished").
		For(&batchv1.Job{}, builder.WithPredicates(candidate)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func needsCleanup(o client.Object) bool {
	j, ok := o.(*batchv1.Job)
	return ok && j.DeletionTimestamp == nil && j.Spec.TTLSecondsAfterFinished != nil && isFinished(j)
}

// Reconcile deletes the Job if its TTL ran out, else comes back then.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	logger.V(4).Info("Checking if Job is ready for cleanup", "job", req.NamespacedName)
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, req.NamespacedName, job); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	expired, left, err := r.expiry(logger, job)
	if err != nil || expired == nil {
		return ctrl.Result{RequeueAfter: left}, err
	}
	// The cache may be stale (the TTL changed): decide on the Job as the
	// API has it.
	fresh, err := r.Core.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if expired, left, err = r.expiry(logger, fresh); err != nil || expired == nil {
		return ctrl.Result{RequeueAfter: left}, err
	}
	logger.V(4).Info("Cleaning up Job", "job", klog.KObj(fresh))
	err = r.Core.BatchV1().Jobs(fresh.Namespace).Delete(ctx, fresh.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
		Preconditions:     &metav1.Preconditions{UID: &fresh.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	deletionDuration.Observe(r.Clock.Since(*expired).Seconds())
	return ctrl.Result{}, nil
}

// expiry is when the Job's TTL ran out if it did, else how long is left
// (0: it needs no cleanup).
func (r *Reconciler) expiry(logger klog.Logger, job *batchv1.Job) (*time.Time, time.Duration, error) {
	if !needsCleanup(job) {
		return nil, 0, nil
	}
	finishedAt, err := finishTime(job)
	if err != nil {
		return nil, 0, err
	}
	now := r.Clock.Now()
	if finishedAt.After(now) {
		logger.Info("Warning: Found Job finished in the future. This is likely due to time skew in the cluster. Job cleanup will be deferred.", "job", klog.KObj(job))
	}
	expireAt := finishedAt.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	left := expireAt.Sub(now)
	logger.V(4).Info("Found Job finished", "job", klog.KObj(job), "finishTime", finishedAt.UTC(), "remainingTTL", left, "startTime", now.UTC(), "deadlineTTL", expireAt.UTC())
	if left > 0 {
		return nil, left, nil
	}
	return &expireAt, 0, nil
}

func isFinished(j *batchv1.Job) bool { return findFinished(j) != nil }

func findFinished(j *batchv1.Job) *batchv1.JobCondition {
	for i, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// finishTime is when the Complete or Failed condition turned true.
func finishTime(j *batchv1.Job) (time.Time, error) {
	c := findFinished(j)
	if c == nil {
		return time.Time{}, fmt.Errorf("unable to find the status of the finished Job %s/%s", j.Namespace, j.Name)
	}
	if c.LastTransitionTime.IsZero() {
		return time.Time{}, fmt.Errorf("unable to find the time when the Job %s/%s finished", j.Namespace, j.Name)
	}
	return c.LastTransitionTime.Time, nil
}
