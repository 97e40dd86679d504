package job

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// syncCtx is one sync's view of a Job, as upstream's syncJobCtx.
type syncCtx struct {
	key                  types.NamespacedName
	job                  *batchv1.Job
	pods                 []*corev1.Pod
	activePods           []*corev1.Pod
	finishedCondition    *batchv1.JobCondition
	succeeded, failed    int32
	prevSucceededIndexes intervals
	succeededIndexes     intervals
	failedIndexes        *intervals
	newBackoffRecord     backoffRecord
	expectedRmFinalizers sets.Set[types.UID]
	uncountedSucceeded   sets.Set[types.UID]
	uncountedFailed      sets.Set[types.UID]
	delayedDeletion      map[int]*corev1.Pod
	terminating          int32
	ready                int32
	// reported is the status whose counters the metrics have seen.
	reported batchv1.JobStatus
	// requeueAfter, if positive, is when the Job is to be synced again.
	requeueAfter time.Duration
}

func (jc *syncCtx) requeue(d time.Duration) {
	d = max(d, syncBatchPeriod)
	if jc.requeueAfter == 0 || d < jc.requeueAfter {
		jc.requeueAfter = d
	}
}

// Reconcile syncs one Job, as upstream's syncJob.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	logger := klog.FromContext(ctx)
	start := r.Clock.Now()
	defer func() {
		logger.V(4).Info("Finished syncing job", "key", req.NamespacedName, "elapsed", r.Clock.Since(start))
	}()
	key := req.NamespacedName
	shared := &batchv1.Job{}
	if err := r.Client.Get(ctx, key, shared); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("Job has been deleted", "key", key)
			r.forget(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if m := shared.Spec.ManagedBy; m != nil && *m != batchv1.JobControllerName {
		logger.V(2).Info("Skip syncing the job as it is managed by an external controller", "key", key, "uid", shared.UID, "controllerName", *m)
		return ctrl.Result{}, nil
	}
	if r.cacheBehind(shared) {
		logger.V(4).Info("Waiting for the cache to catch up with the Job's last status write", "key", key)
		return ctrl.Result{RequeueAfter: syncBatchPeriod}, nil
	}
	job := shared.DeepCopy()
	if isJobFinished(job) {
		r.backoff.remove(key)
		r.finished.Delete(job.UID)
		return ctrl.Result{}, nil
	}
	if _, ok := r.finished.Load(job.UID); ok {
		logger.V(2).Info("Skip syncing the job as its marked finished but the corresponding update event is not yet received", "uid", job.UID, "key", key)
		return ctrl.Result{}, nil
	}
	if m := job.Spec.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		r.Recorder.Event(job, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return ctrl.Result{}, nil
	}
	if isIndexedJob(job) && job.Spec.Completions == nil {
		// The API refuses it; never index a nil completions.
		return ctrl.Result{}, nil
	}
	if job.Spec.BackoffLimit == nil {
		job.Spec.BackoffLimit = ptr.To[int32](6)
	}
	if job.Spec.Parallelism == nil {
		job.Spec.Parallelism = ptr.To[int32](1)
	}
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}

	// Expectations first: a pod created after the check is only seen by
	// the next sync, never counted twice.
	satisfied := r.expectations.Satisfied(key, "")
	pods, err := r.podsForJob(ctx, job)
	if err != nil {
		return ctrl.Result{}, err
	}
	active := filterPods(pods, podutil.IsPodActive)
	jc := &syncCtx{
		key:                  key,
		job:                  job,
		pods:                 pods,
		activePods:           active,
		ready:                countPods(active, podutil.IsPodReady),
		uncountedSucceeded:   sets.New(job.Status.UncountedTerminatedPods.Succeeded...),
		uncountedFailed:      sets.New(job.Status.UncountedTerminatedPods.Failed...),
		expectedRmFinalizers: r.finalizers.expected(key),
		terminating:          countPods(pods, podutil.IsPodTerminating),
	}
	nActive := int32(len(active))
	newSucceeded, newFailed := newFinishedPods(jc)
	jc.succeeded = job.Status.Succeeded + int32(len(newSucceeded)) + int32(jc.uncountedSucceeded.Len())
	jc.failed = job.Status.Failed + int32(countedFailures(job, newFailed)) + int32(jc.uncountedFailed.Len())

	if job.Status.StartTime == nil && !jobSuspended(job) {
		now := metav1.NewTime(r.Clock.Now())
		job.Status.StartTime = &now
	}
	jc.newBackoffRecord = r.backoff.next(key, newSucceeded, newFailed)

	// The end state, in upstream's order: earlier SuccessCriteriaMet and
	// FailureTarget, then failures, then successes.
	now := r.Clock.Now()
	jc.finishedCondition = successCriteriaMet(job)
	if jc.finishedCondition == nil {
		if ft := findCondition(job.Status.Conditions, batchv1.JobFailureTarget); ft != nil && ft.Status == corev1.ConditionTrue {
			jc.finishedCondition = newCondition(batchv1.JobFailed, corev1.ConditionTrue, ft.Reason, ft.Message, now)
		} else if msg := failJobMessage(job, pods); msg != nil {
			jc.finishedCondition = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonPodFailurePolicy, *msg, now)
		}
	}
	if jc.finishedCondition == nil {
		switch {
		case jc.failed > *job.Spec.BackoffLimit || pastBackoffLimitOnFailure(job, pods):
			jc.finishedCondition = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", now)
		case r.pastActiveDeadline(job):
			jc.finishedCondition = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline", now)
		case job.Spec.ActiveDeadlineSeconds != nil && !jobSuspended(job):
			left := time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - r.Clock.Since(job.Status.StartTime.Time)
			logger.V(2).Info("Job has activeDeadlineSeconds configuration. Will sync this job again", "key", key, "nextSyncIn", left)
			jc.requeue(left)
		}
	}
	if isIndexedJob(job) {
		jc.prevSucceededIndexes, jc.succeededIndexes = succeededIndexes(logger, job, pods)
		jc.succeeded = int32(jc.succeededIndexes.total())
		if hasBackoffLimitPerIndex(job) {
			fi := failedIndexes(logger, job, pods)
			jc.failedIndexes = &fi
			if jc.finishedCondition == nil {
				if job.Spec.MaxFailedIndexes != nil && fi.total() > int(*job.Spec.MaxFailedIndexes) {
					jc.finishedCondition = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes", now)
				} else if fi.total() > 0 && fi.total()+jc.succeededIndexes.total() >= int(*job.Spec.Completions) {
					jc.finishedCondition = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonFailedIndexes, "Job has failed indexes", now)
				}
			}
			jc.delayedDeletion = podsWithDelayedDeletion(logger, jc)
		}
		if jc.finishedCondition == nil {
			if msg, met := matchSuccessPolicy(logger, job.Spec.SuccessPolicy, *job.Spec.Completions, jc.succeededIndexes); met {
				jc.finishedCondition = newCondition(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonSuccessPolicy, msg, now)
			}
		}
	}

	var manageErr error
	suspendChanged := false
	if jc.finishedCondition != nil {
		// Finishing: the active pods go (their finalizers are removed
		// below), and the Job is finished once none is left.
		deletedReady, deleted, err := r.deleteActivePods(ctx, job, active)
		if deleted != nActive || !satisfied {
			jc.finishedCondition = nil
		}
		nActive -= deleted
		jc.terminating += deleted
		jc.ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			nActive, manageErr = r.manageJob(ctx, jc)
			managed = true
		}
		var complete bool
		if job.Spec.Completions == nil {
			// Complete once a pod succeeded and the others are done.
			complete = jc.succeeded > 0 && nActive == 0
		} else {
			complete = jc.succeeded >= *job.Spec.Completions && nActive == 0
		}
		switch {
		case complete:
			jc.finishedCondition = newCondition(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", now)
		case managed && jobSuspended(job):
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			if changed {
				suspendChanged = true
				r.Recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
			}
		case managed:
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			if changed {
				suspendChanged = true
				r.Recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
				// activeDeadlineSeconds counts from the resumption.
				t := metav1.NewTime(now)
				job.Status.StartTime = &t
			}
		}
	}

	needsUpdate := suspendChanged || nActive != job.Status.Active || !ptr.Equal(&jc.ready, job.Status.Ready) ||
		!ptr.Equal(job.Status.Terminating, &jc.terminating)
	job.Status.Active = nActive
	job.Status.Ready = ptr.To(jc.ready)
	job.Status.Terminating = ptr.To(jc.terminating)
	if err := r.trackStatus(ctx, jc, needsUpdate); err != nil {
		return ctrl.Result{}, fmt.Errorf("tracking status: %w", err)
	}
	if manageErr != nil {
		return ctrl.Result{}, manageErr
	}
	return ctrl.Result{RequeueAfter: jc.requeueAfter}, nil
}

// podsForJob are the Job's pods from the cache, after adopting matching
// orphans (with the tracking finalizer) and releasing its pods that stopped
// matching, as upstream's ClaimPods.
func (r *Reconciler) podsForJob(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("couldn't convert Job selector: %v", err)
	}
	var owned, orphans corev1.PodList
	if err := r.Client.List(ctx, &owned, client.InNamespace(job.Namespace), client.MatchingFields{podOwnerIndex: string(job.UID)}); err != nil {
		return nil, err
	}
	if job.DeletionTimestamp == nil && !sel.Empty() {
		if err := r.Client.List(ctx, &orphans, client.InNamespace(job.Namespace), client.MatchingFields{podOwnerIndex: orphanKey}); err != nil {
			return nil, err
		}
	}
	var pods []*corev1.Pod
	var errs []error
	for i := range owned.Items {
		p := &owned.Items[i]
		if sel.Matches(labels.Set(p.Labels)) {
			pods = append(pods, p)
			continue
		}
		if job.DeletionTimestamp != nil {
			continue
		}
		if err := r.releasePod(ctx, job, p); err != nil {
			errs = append(errs, err)
		}
	}
	checked := false
	for i := range orphans.Items {
		p := &orphans.Items[i]
		if p.DeletionTimestamp != nil || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		if !checked {
			checked = true
			if err := r.recheckForAdoption(ctx, job); err != nil {
				errs = append(errs, fmt.Errorf("can't adopt Pod %v/%v (%v): %v", p.Namespace, p.Name, p.UID, err))
				break
			}
		}
		if err := r.adoptPod(ctx, job, p); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		// Counted with the finalizer the adoption added.
		p.OwnerReferences = append(p.OwnerReferences, *metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job")))
		if !hasTrackingFinalizer(p) {
			p.Finalizers = append(p.Finalizers, batchv1.JobTrackingFinalizer)
		}
		pods = append(pods, p)
	}
	return pods, utilerrors.NewAggregate(errs)
}

// recheckForAdoption reads the Job from the API: no adoption by a Job
// being deleted or replaced (upstream's RecheckDeletionTimestamp).
func (r *Reconciler) recheckForAdoption(ctx context.Context, job *batchv1.Job) error {
	fresh := &batchv1.Job{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), fresh); err != nil {
		return err
	}
	if fresh.UID != job.UID {
		return fmt.Errorf("original Job %v/%v is gone: got uid %v, wanted %v", job.Namespace, job.Name, fresh.UID, job.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%v/%v has just been deleted at %v", job.Namespace, job.Name, fresh.DeletionTimestamp)
	}
	return nil
}

func (r *Reconciler) adoptPod(ctx context.Context, job *batchv1.Job, p *corev1.Pod) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":             p.UID,
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))},
		"finalizers":      []string{batchv1.JobTrackingFinalizer},
	}})
	if err != nil {
		return err
	}
	_, err = r.Core.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

func (r *Reconciler) releasePod(ctx context.Context, job *batchv1.Job, p *corev1.Pod) error {
	klog.FromContext(ctx).V(2).Info("Patching pod to remove its controllerRef", "pod", klog.KObj(p), "controller", job.Name)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":                                 p.UID,
		"ownerReferences":                     []map[string]string{{"$patch": "delete", "uid": string(job.UID)}},
		"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer},
	}})
	if err != nil {
		return err
	}
	_, err = r.Core.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil
	}
	return err
}

// countablePods are the pods not counted yet (with the finalizer, not in
// skip, no finalizer removal pending; for Indexed Jobs, a valid index).
func countablePods(jc *syncCtx, skip sets.Set[types.UID]) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range jc.pods {
		if !hasTrackingFinalizer(p) || skip.Has(p.UID) || jc.expectedRmFinalizers.Has(p.UID) {
			continue
		}
		if isIndexedJob(jc.job) {
			if _, ok := validIndex(jc.job, p); !ok {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// newFinishedPods are the succeeded and failed pods not yet counted.
func newFinishedPods(jc *syncCtx) (succeeded, failed []*corev1.Pod) {
	succeeded = filterPods(countablePods(jc, jc.uncountedSucceeded), func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	failed = filterPods(countablePods(jc, jc.uncountedFailed), func(p *corev1.Pod) bool { return isPodFailed(p, jc.job) })
	return succeeded, failed
}

// countedFailures are the failed pods the pod failure policy does not
// ignore.
func countedFailures(job *batchv1.Job, failed []*corev1.Pod) int {
	n := len(failed)
	if job.Spec.PodFailurePolicy != nil {
		for _, p := range failed {
			if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); !count {
				n--
			}
		}
	}
	return n
}

func jobSuspended(job *batchv1.Job) bool { return ptr.Deref(job.Spec.Suspend, false) }

// pastBackoffLimitOnFailure: with restartPolicy OnFailure, the restarts of
// the running and pending pods' containers reach the backoff limit.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, s := range p.Status.InitContainerStatuses {
			restarts += s.RestartCount
		}
		for _, s := range p.Status.ContainerStatuses {
			restarts += s.RestartCount
		}
	}
	if *job.Spec.BackoffLimit == 0 {
		return restarts > 0
	}
	return restarts >= *job.Spec.BackoffLimit
}

func (r *Reconciler) pastActiveDeadline(job *batchv1.Job) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || jobSuspended(job) {
		return false
	}
	return r.Clock.Since(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

func newCondition(t batchv1.JobConditionType, s corev1.ConditionStatus, reason, message string, now time.Time) *batchv1.JobCondition {
	return &batchv1.JobCondition{Type: t, Status: s, Reason: reason, Message: message,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
}

func findCondition(list []batchv1.JobCondition, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

func successCriteriaMet(job *batchv1.Job) *batchv1.JobCondition {
	if c := findCondition(job.Status.Conditions, batchv1.JobSuccessCriteriaMet); c != nil && c.Status == corev1.ConditionTrue {
		return c
	}
	return nil
}

// ensureCondition sets the condition (never adding a False one), and
// says whether the list changed.
func ensureCondition(list []batchv1.JobCondition, t batchv1.JobConditionType, s corev1.ConditionStatus, reason, message string, now time.Time) ([]batchv1.JobCondition, bool) {
	if c := findCondition(list, t); c != nil {
		if c.Status != s || c.Reason != reason || c.Message != message {
			*c = *newCondition(t, s, reason, message, now)
			return list, true
		}
		return list, false
	}
	if s != corev1.ConditionFalse {
		return append(list, *newCondition(t, s, reason, message, now)), true
	}
	return list, false
}
