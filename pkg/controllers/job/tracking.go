package job

import (
	"context"
	"fmt"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// trackStatus counts the finished pods, as upstream's
// trackJobStatusAndRemoveFinalizers: their UIDs go to
// status.uncountedTerminatedPods (written first), then their finalizers
// are removed, then they move to the counters; once nothing is left
// uncounted or terminating, the finished condition is set.
func (r *Reconciler) trackStatus(ctx context.Context, jc *syncCtx, needsFlush bool) error {
	logger := klog.FromContext(ctx)
	job := jc.job
	indexed := isIndexedJob(job)
	if indexed {
		sortByCompletionIndex(jc.pods)
	}
	withFinalizer := sets.New[types.UID]()
	for _, p := range jc.pods {
		if hasTrackingFinalizer(p) && !jc.expectedRmFinalizers.Has(p.UID) {
			withFinalizer.Insert(p.UID)
		}
	}
	jc.reported = job.Status
	uncounted := job.Status.UncountedTerminatedPods
	if moveCounted(&job.Status, withFinalizer) {
		needsFlush = true
	}
	var toRemove []*corev1.Pod
	var newSucceededIndexes []int
	reachedMax := false
	for _, p := range jc.pods {
		if !hasTrackingFinalizer(p) || jc.expectedRmFinalizers.Has(p.UID) {
			continue
		}
		failed := isPodFailed(p, job)
		if !canRemoveFinalizer(logger, jc, p, failed) {
			continue
		}
		toRemove = append(toRemove, p)
		if p.Status.Phase == corev1.PodSucceeded && !jc.uncountedFailed.Has(p.UID) {
			if indexed {
				// The index alone keeps a pod from being counted twice.
				if ix, ok := validIndex(job, p); ok && !jc.prevSucceededIndexes.has(ix) {
					newSucceededIndexes = append(newSucceededIndexes, ix)
					needsFlush = true
				}
			} else if !jc.uncountedSucceeded.Has(p.UID) {
				needsFlush = true
				uncounted.Succeeded = append(uncounted.Succeeded, p.UID)
			}
		} else if failed || (jc.finishedCondition != nil && jc.finishedCondition.Type != batchv1.JobSuccessCriteriaMet) {
			// A finishing (not succeeding) Job counts every pod left as
			// failed.
			_, validIx := validIndex(job, p)
			if !jc.uncountedFailed.Has(p.UID) && (!indexed || validIx) {
				if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); count {
					needsFlush = true
					uncounted.Failed = append(uncounted.Failed, p.UID)
				}
			}
		}
		if len(newSucceededIndexes)+len(uncounted.Succeeded)+len(uncounted.Failed) >= maxUncountedPods {
			// The rest waits for the next sync, which the pods' and the
			// Job's updates bring.
			reachedMax = true
			break
		}
	}
	if indexed {
		jc.succeededIndexes = jc.succeededIndexes.withIndexes(newSucceededIndexes)
		s := jc.succeededIndexes.String()
		if s != job.Status.CompletedIndexes {
			needsFlush = true
		}
		job.Status.Succeeded = int32(jc.succeededIndexes.total())
		job.Status.CompletedIndexes = s
		var failedStr *string
		if jc.failedIndexes != nil {
			failedStr = ptr.To(jc.failedIndexes.String())
		}
		if !ptr.Equal(job.Status.FailedIndexes, failedStr) {
			job.Status.FailedIndexes = failedStr
			needsFlush = true
		}
	}
	now := r.Clock.Now()
	if c := jc.finishedCondition; c != nil && c.Type == batchv1.JobFailureTarget {
		// The interim FailureTarget is written before the finalizers go;
		// Failed follows once the pods are counted.
		job.Status.Conditions = append(job.Status.Conditions, *c)
		needsFlush = true
		jc.finishedCondition = newCondition(batchv1.JobFailed, corev1.ConditionTrue, c.Reason, c.Message, now)
	}
	if c := jc.finishedCondition; c != nil && c.Type == batchv1.JobSuccessCriteriaMet && c.Status == corev1.ConditionTrue {
		if successCriteriaMet(job) == nil {
			job.Status.Conditions = append(job.Status.Conditions, *c)
			needsFlush = true
		}
		jc.finishedCondition = newCondition(batchv1.JobComplete, corev1.ConditionTrue, c.Reason, c.Message, now)
	}
	var err error
	if needsFlush, err = r.flushAndRemoveFinalizers(ctx, jc, toRemove, withFinalizer, needsFlush); err != nil {
		return err
	}
	finished := !reachedMax && r.enactFinished(logger, jc)
	if finished {
		needsFlush = true
	}
	if needsFlush {
		if err := r.updateStatus(ctx, jc); err != nil {
			return fmt.Errorf("removing uncounted pods from status: %w", err)
		}
		if finished {
			r.recordFinished(jc.job, jc.finishedCondition)
			r.finished.Store(jc.job.UID, struct{}{})
		}
	}
	return nil
}

// canRemoveFinalizer: the Job is being deleted or finishing, the pod
// succeeded, or it failed and is not kept for its index's replacement.
func canRemoveFinalizer(logger klog.Logger, jc *syncCtx, p *corev1.Pod, failed bool) bool {
	if jc.job.DeletionTimestamp != nil || jc.finishedCondition != nil || p.Status.Phase == corev1.PodSucceeded {
		return true
	}
	if !failed {
		return false
	}
	if hasBackoffLimitPerIndex(jc.job) {
		if ix := completionIndex(p); ix != unknownCompletionIndex {
			if d, ok := jc.delayedDeletion[ix]; ok && d.UID == p.UID {
				logger.V(3).Info("Delaying pod finalizer removal to await for pod recreation within the index", "pod", klog.KObj(p))
				return false
			}
		}
	}
	return true
}

// flushAndRemoveFinalizers writes the status (with the new uncounted
// UIDs and interim conditions) if needed, removes the finalizers, and
// moves the pods whose finalizer is gone to the counters; it says whether
// the status still needs writing.
func (r *Reconciler) flushAndRemoveFinalizers(ctx context.Context, jc *syncCtx, toRemove []*corev1.Pod, withFinalizer sets.Set[types.UID], needsFlush bool) (bool, error) {
	if needsFlush {
		if err := r.updateStatus(ctx, jc); err != nil {
			return needsFlush, fmt.Errorf("adding uncounted pods to status: %w", err)
		}
		r.backoff.update(jc.key, jc.newBackoffRecord)
		needsFlush = false
	}
	var rmErr error
	if len(toRemove) > 0 {
		var removed []bool
		removed, rmErr = r.removeFinalizers(ctx, jc.key, toRemove)
		for i, p := range toRemove {
			if removed[i] {
				withFinalizer.Delete(p.UID)
			}
		}
	}
	if moveCounted(&jc.job.Status, withFinalizer) {
		needsFlush = true
	}
	if rmErr != nil && needsFlush {
		// Keep what was counted before giving up.
		if err := r.updateStatus(ctx, jc); err != nil {
			return needsFlush, fmt.Errorf("removing uncounted pods from status: %w", err)
		}
	}
	return needsFlush, rmErr
}

// moveCounted moves the uncounted pods whose finalizer is gone to the
// counters; it says whether the status changed.
func moveCounted(st *batchv1.JobStatus, withFinalizer sets.Set[types.UID]) bool {
	u := st.UncountedTerminatedPods
	keep := func(uids []types.UID) []types.UID {
		var out []types.UID
		for _, uid := range uids {
			if withFinalizer.Has(uid) {
				out = append(out, uid)
			}
		}
		return out
	}
	changed := false
	if left := keep(u.Succeeded); len(left) != len(u.Succeeded) {
		st.Succeeded += int32(len(u.Succeeded) - len(left))
		u.Succeeded, changed = left, true
	}
	if left := keep(u.Failed); len(left) != len(u.Failed) {
		st.Failed += int32(len(u.Failed) - len(left))
		u.Failed, changed = left, true
	}
	return changed
}

// removeFinalizers removes the tracking finalizer from the pods; removed[i]
// says whether pods[i]'s is gone (or the pod is).
func (r *Reconciler) removeFinalizers(ctx context.Context, key types.NamespacedName, pods []*corev1.Pod) ([]bool, error) {
	uids := make([]types.UID, len(pods))
	for i, p := range pods {
		uids[i] = p.UID
	}
	r.finalizers.expectRemoved(key, uids...)
	removed := make([]bool, len(pods))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i, p := range pods {
		patch := removeFinalizerPatch(p)
		if patch == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Core.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			if err != nil {
				// No update of the pod will come.
				r.finalizers.observed(key, p.UID)
				if !apierrors.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("removing tracking finalizer: %w", err))
					mu.Unlock()
					return
				}
			}
			removed[i] = true
		}()
	}
	wg.Wait()
	return removed, utilerrors.NewAggregate(errs)
}

// enactFinished sets Complete or Failed once no pod is left uncounted or
// terminating.
func (r *Reconciler) enactFinished(logger klog.Logger, jc *syncCtx) bool {
	c := jc.finishedCondition
	if c == nil {
		return false
	}
	job := jc.job
	if u := job.Status.UncountedTerminatedPods; u != nil {
		if n := len(u.Succeeded) + len(u.Failed); n > 0 {
			logger.V(4).Info("Delaying marking the Job as finished, because there are still uncounted pod(s)", "job", klog.KObj(job), "condition", c.Type, "count", n)
			return false
		}
	}
	if jc.terminating > 0 {
		logger.V(4).Info("Delaying marking the Job as finished, because there are still terminating pod(s)", "job", klog.KObj(job), "condition", c.Type, "count", jc.terminating)
		return false
	}
	job.Status.Conditions, _ = ensureCondition(job.Status.Conditions, c.Type, c.Status, c.Reason, c.Message, r.Clock.Now())
	if c.Type == batchv1.JobComplete {
		job.Status.CompletionTime = &c.LastTransitionTime
	}
	return true
}

// recordFinished sends upstream's events of a finished Job.
func (r *Reconciler) recordFinished(job *batchv1.Job, c *batchv1.JobCondition) {
	if c.Type == batchv1.JobComplete {
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			r.Recorder.Event(job, corev1.EventTypeWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
		}
		r.Recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		jobsFinished.WithLabelValues(completionModeLabel(job), "succeeded", c.Reason).Inc()
		return
	}
	r.Recorder.Event(job, corev1.EventTypeWarning, c.Reason, c.Message)
	jobsFinished.WithLabelValues(completionModeLabel(job), "failed", c.Reason).Inc()
}

// updateStatus writes jc.job's status, which then is what the API
// returned.
func (r *Reconciler) updateStatus(ctx context.Context, jc *syncCtx) error {
	updated, err := r.Core.BatchV1().Jobs(jc.job.Namespace).UpdateStatus(ctx, jc.job, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	r.noteWritten(updated)
	recordPodsFinished(updated, jc.reported)
	jc.reported = updated.Status
	if updated.Status.UncountedTerminatedPods == nil {
		updated.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	// Keep the defaults filled in by the sync.
	updated.Spec.BackoffLimit, updated.Spec.Parallelism = jc.job.Spec.BackoffLimit, jc.job.Spec.Parallelism
	jc.job = updated
	return nil
}
