// Package cronjob is upstream's cronjob-controller (its v2): at each time
// a CronJob's schedule (standard cron syntax and macros, robfig/cron as
// upstream, in spec.timeZone) comes due it creates a Job named
// <cronjob>-<scheduled time in minutes> with the
// batch.kubernetes.io/cronjob-scheduled-timestamp annotation, honouring
// concurrencyPolicy, startingDeadlineSeconds and suspend; it keeps
// status.active, lastScheduleTime and lastSuccessfulTime and deletes the
// finished Jobs beyond the history limits, with upstream's events.
package cronjob

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Name is upstream's name of the controller and its events' source.
const Name = "cronjob-controller"

// nextScheduleDelta is added to the next schedule time so the sync comes
// just after it.
const nextScheduleDelta = 100 * time.Millisecond

// jobOwnerIndex indexes the cache's Jobs by their controller's UID.
const jobOwnerIndex = "cronjob.controllerUID"

var controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Reconciler is the CronJob controller.
type Reconciler struct {
	// Client reads through the manager's cache.
	Client client.Client
	// Core reads fresh objects and writes with the controller's identity.
	Core kubernetes.Interface
	// Recorder gets the events.
	Recorder record.EventRecorder
	// Now is the time (tests); nil: time.Now.
	Now func() time.Time
	// Workers is --concurrent-cron-job-syncs; 0: 5.
	Workers int
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) recorder() record.EventRecorder {
	if r.Recorder == nil {
		return &record.FakeRecorder{}
	}
	return r.Recorder
}

// SetupWithManager registers the controller for CronJobs and the Jobs
// they control.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &batchv1.Job{}, jobOwnerIndex, func(o client.Object) []string {
		if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
			return []string{string(ref.UID)}
		}
		return nil
	}); err != nil {
		return err
	}
	registerAll()
	workers := r.Workers
	if workers <= 0 {
		workers = 5
	}
	return ctrl.NewControllerManagedBy(mgr).Named("cronjob").
		Watches(&batchv1.CronJob{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(requestFor(e.Object))
			},
			UpdateFunc: r.cronJobUpdated,
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(requestFor(e.Object))
			},
		}).
		Watches(&batchv1.Job{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueController(ctx, e.Object, metav1.GetControllerOfNoCopy(e.Object), q)
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion() {
					return
				}
				cur, old := metav1.GetControllerOfNoCopy(e.ObjectNew), metav1.GetControllerOfNoCopy(e.ObjectOld)
				if old != nil && !reflect.DeepEqual(cur, old) {
					r.enqueueController(ctx, e.ObjectNew, old, q)
				}
				r.enqueueController(ctx, e.ObjectNew, cur, q)
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueController(ctx, e.Object, metav1.GetControllerOfNoCopy(e.Object), q)
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func requestFor(o client.Object) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
}

// enqueueController syncs the CronJob ref names, if it is the one in the
// cache.
func (r *Reconciler) enqueueController(ctx context.Context, job client.Object, ref *metav1.OwnerReference, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return
	}
	cj := &batchv1.CronJob{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: job.GetNamespace(), Name: ref.Name}, cj); err != nil || cj.UID != ref.UID {
		return
	}
	q.Add(requestFor(cj))
}

// cronJobUpdated syncs a CronJob at once, or, if its schedule changed, at
// its next scheduled time.
func (r *Reconciler) cronJobUpdated(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	old, ok1 := e.ObjectOld.(*batchv1.CronJob)
	cur, ok2 := e.ObjectNew.(*batchv1.CronJob)
	if !ok1 || !ok2 {
		return
	}
	if old.Spec.Schedule != cur.Spec.Schedule || !ptr.Equal(old.Spec.TimeZone, cur.Spec.TimeZone) {
		sched, err := parseSchedule(formatSchedule(cur, nil))
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Unparseable schedule for cronjob", "cronjob", klog.KObj(cur), "schedule", cur.Spec.Schedule, "err", err)
			r.recorder().Eventf(cur, corev1.EventTypeWarning, "UnParseableCronJobSchedule", "unparseable schedule for cronjob: %s", cur.Spec.Schedule)
			return
		}
		q.AddAfter(requestFor(cur), nextScheduleTimeDuration(cur, r.now(), sched))
		return
	}
	q.Add(requestFor(cur))
}

// Reconcile syncs one CronJob, as upstream's sync.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	cached := &batchv1.CronJob{}
	if err := r.Client.Get(ctx, req.NamespacedName, cached); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("CronJob not found, may be it is deleted", "cronjob", req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	var jobs batchv1.JobList
	if err := r.Client.List(ctx, &jobs, client.InNamespace(cached.Namespace), client.MatchingFields{jobOwnerIndex: string(cached.UID)}); err != nil {
		return ctrl.Result{}, err
	}
	cj := cached.DeepCopy()
	updateAfterCleanup := r.cleanupFinishedJobs(ctx, cj, jobs.Items)
	requeueAfter, updateAfterSync, syncErr := r.syncCronJob(ctx, cj, jobs.Items)
	if syncErr != nil {
		logger.V(2).Info("Error reconciling cronjob", "cronjob", klog.KObj(cj), "err", syncErr)
	}
	if updateAfterCleanup || updateAfterSync {
		if _, err := r.Core.BatchV1().CronJobs(cj.Namespace).UpdateStatus(ctx, cj, metav1.UpdateOptions{}); err != nil {
			logger.V(2).Info("Unable to update status for cronjob", "cronjob", klog.KObj(cj), "resourceVersion", cj.ResourceVersion, "err", err)
			return ctrl.Result{}, err
		}
	}
	if requeueAfter != nil {
		logger.V(4).Info("Re-queuing cronjob", "cronjob", klog.KObj(cj), "requeueAfter", requeueAfter)
		return ctrl.Result{RequeueAfter: max(*requeueAfter, time.Nanosecond)}, nil
	}
	return ctrl.Result{}, syncErr
}

// syncCronJob updates the active list from the Jobs and creates the Job of
// the most recent unmet schedule time; it returns when to sync again and
// whether the status changed.
func (r *Reconciler) syncCronJob(ctx context.Context, cj *batchv1.CronJob, jobs []batchv1.Job) (*time.Duration, bool, error) {
	logger := klog.FromContext(ctx)
	rec := r.recorder()
	now := r.now()
	updateStatus := false
	children := map[types.UID]bool{}
	for i := range jobs {
		j := &jobs[i]
		children[j.UID] = true
		found := inActiveList(cj, j.UID)
		finished, cond := finishedCondition(j)
		switch {
		case !found && !finished:
			fresh, err := r.Core.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
			if err != nil {
				return nil, updateStatus, err
			}
			if inActiveList(fresh, j.UID) {
				// The cache is behind our own write.
				cj = fresh
				continue
			}
			rec.Eventf(cj, corev1.EventTypeWarning, "UnexpectedJob", "Saw a job that the controller did not create or forgot: %s", j.Name)
		case finished:
			if found {
				deleteFromActiveList(cj, j.UID)
				rec.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, cond)
				updateStatus = true
			}
			if cond == batchv1.JobComplete && j.Status.CompletionTime != nil {
				if cj.Status.LastSuccessfulTime == nil || j.Status.CompletionTime.After(cj.Status.LastSuccessfulTime.Time) {
					cj.Status.LastSuccessfulTime = j.Status.CompletionTime
					updateStatus = true
				}
			}
		}
	}
	// Active Jobs that are gone (deleted by someone else).
	for _, ref := range cj.Status.Active {
		if children[ref.UID] {
			continue
		}
		_, err := r.Core.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			rec.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", ref.Name)
			deleteFromActiveList(cj, ref.UID)
			updateStatus = true
		case err != nil:
			return nil, updateStatus, err
		}
	}
	if cj.DeletionTimestamp != nil {
		return nil, updateStatus, nil
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			logger.V(4).Info("Not starting job because timeZone is invalid", "cronjob", klog.KObj(cj), "timeZone", *tz, "err", err)
			rec.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", *tz, err)
			return nil, updateStatus, nil
		}
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		logger.V(4).Info("Not starting job because the cron is suspended", "cronjob", klog.KObj(cj))
		return nil, updateStatus, nil
	}
	sched, err := parseSchedule(formatSchedule(cj, rec))
	if err != nil {
		logger.V(2).Info("Unparseable schedule", "cronjob", klog.KObj(cj), "schedule", cj.Spec.Schedule, "err", err)
		rec.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return nil, updateStatus, nil
	}
	scheduled, err := nextScheduleTime(logger, cj, now, sched, rec)
	if err != nil {
		logger.V(2).Info("Invalid schedule", "cronjob", klog.KObj(cj), "schedule", cj.Spec.Schedule, "err", err)
		rec.Eventf(cj, corev1.EventTypeWarning, "InvalidSchedule", "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return nil, updateStatus, nil
	}
	next := func() (*time.Duration, bool, error) {
		t := nextScheduleTimeDuration(cj, now, sched)
		return &t, updateStatus, nil
	}
	if scheduled == nil {
		logger.V(4).Info("No unmet start times", "cronjob", klog.KObj(cj))
		return next()
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		logger.V(4).Info("Missed starting window", "cronjob", klog.KObj(cj))
		rec.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		return next()
	}
	name := jobName(cj, *scheduled)
	if inActiveListByName(cj, cj.Namespace, name) || (cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(*scheduled)) {
		logger.V(4).Info("Not starting job because the scheduled time is already processed", "cronjob", klog.KObj(cj), "schedule", scheduled)
		return next()
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ForbidConcurrent && len(cj.Status.Active) > 0 {
		// A Job of a later schedule time is started once the active one
		// finishes, if within its starting deadline.
		logger.V(4).Info("Not starting job because prior execution is still running and concurrency policy is Forbid", "cronjob", klog.KObj(cj))
		rec.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
		return next()
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ReplaceConcurrent {
		for _, ref := range append([]corev1.ObjectReference(nil), cj.Status.Active...) {
			logger.V(4).Info("Deleting job that was still running at next scheduled start time", "job", klog.KRef(ref.Namespace, ref.Name))
			j, err := r.Core.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				rec.Eventf(cj, corev1.EventTypeWarning, "FailedGet", "Get job: %v", err)
				return nil, updateStatus, err
			}
			if !r.deleteJob(ctx, cj, j) {
				return nil, updateStatus, fmt.Errorf("could not replace job %s/%s", j.Namespace, j.Name)
			}
			updateStatus = true
		}
	}

	want, err := jobFromTemplate(cj, *scheduled)
	if err != nil {
		logger.Error(err, "Unable to make Job from template", "cronjob", klog.KObj(cj))
		return nil, updateStatus, err
	}
	created, err := r.Core.BatchV1().Jobs(cj.Namespace).Create(ctx, want, metav1.CreateOptions{})
	exists := false
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil, updateStatus, err
	case apierrors.IsAlreadyExists(err):
		// Created before (by us, before a restart or a lost write).
		exists = true
		j, err := r.Core.BatchV1().Jobs(cj.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return nil, updateStatus, err
		}
		created = j
		if !metav1.IsControlledBy(j, cj) || inActiveList(cj, j.UID) {
			return nil, updateStatus, nil
		}
	case err != nil:
		rec.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return nil, updateStatus, err
	}
	if exists {
		logger.Info("Job already exists", "cronjob", klog.KObj(cj), "job", klog.KObj(want))
	} else {
		creationSkew.Observe(created.CreationTimestamp.Sub(*scheduled).Seconds())
		logger.V(4).Info("Created Job", "job", klog.KObj(created), "cronjob", klog.KObj(cj))
		rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", created.Name)
	}
	ref, err := reference.GetReference(scheme.Scheme, created)
	if err != nil {
		logger.V(2).Info("Unable to make object reference", "cronjob", klog.KObj(cj), "err", err)
		return nil, updateStatus, fmt.Errorf("unable to make object reference for job for %s", klog.KObj(cj))
	}
	cj.Status.Active = append(cj.Status.Active, *ref)
	cj.Status.LastScheduleTime = &metav1.Time{Time: *scheduled}
	updateStatus = true
	return next()
}

// cleanupFinishedJobs deletes the oldest finished Jobs beyond the history
// limits; it says whether the status changed.
func (r *Reconciler) cleanupFinishedJobs(ctx context.Context, cj *batchv1.CronJob, jobs []batchv1.Job) bool {
	if cj.Spec.FailedJobsHistoryLimit == nil && cj.Spec.SuccessfulJobsHistoryLimit == nil {
		return false
	}
	var succeeded, failed []*batchv1.Job
	for i := range jobs {
		switch _, c := finishedCondition(&jobs[i]); c {
		case batchv1.JobComplete:
			succeeded = append(succeeded, &jobs[i])
		case batchv1.JobFailed:
			failed = append(failed, &jobs[i])
		}
	}
	changed := false
	if l := cj.Spec.SuccessfulJobsHistoryLimit; l != nil && r.removeOldestJobs(ctx, cj, succeeded, *l) {
		changed = true
	}
	if l := cj.Spec.FailedJobsHistoryLimit; l != nil && r.removeOldestJobs(ctx, cj, failed, *l) {
		changed = true
	}
	return changed
}

func (r *Reconciler) removeOldestJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job, limit int32) bool {
	n := len(jobs) - int(limit)
	if n <= 0 {
		return false
	}
	logger := klog.FromContext(ctx)
	logger.V(4).Info("Cleaning up jobs from CronJob list", "deletejobnum", n, "jobnum", len(jobs), "cronjob", klog.KObj(cj))
	sort.SliceStable(jobs, func(i, j int) bool { return startedBefore(jobs[i], jobs[j]) })
	changed := false
	for _, j := range jobs[:n] {
		logger.V(4).Info("Removing job from CronJob list", "job", j.Name, "cronjob", klog.KObj(cj))
		if r.deleteJob(ctx, cj, j) {
			changed = true
		}
	}
	return changed
}

// startedBefore orders Jobs by start time (unstarted last), then name.
func startedBefore(a, b *batchv1.Job) bool {
	if (a.Status.StartTime == nil) != (b.Status.StartTime == nil) {
		return a.Status.StartTime != nil
	}
	if a.Status.StartTime.Equal(b.Status.StartTime) {
		return a.Name < b.Name
	}
	return a.Status.StartTime.Before(b.Status.StartTime)
}

// deleteJob deletes a Job (background propagation) and drops it from the
// active list.
func (r *Reconciler) deleteJob(ctx context.Context, cj *batchv1.CronJob, j *batchv1.Job) bool {
	err := r.Core.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil {
		r.recorder().Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		klog.FromContext(ctx).Error(err, "Error deleting job from cronjob", "job", klog.KObj(j), "cronjob", klog.KObj(cj))
		return false
	}
	deleteFromActiveList(cj, j.UID)
	r.recorder().Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
	return true
}

func finishedCondition(j *batchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

func inActiveList(cj *batchv1.CronJob, uid types.UID) bool {
	for _, ref := range cj.Status.Active {
		if ref.UID == uid {
			return true
		}
	}
	return false
}

func inActiveListByName(cj *batchv1.CronJob, namespace, name string) bool {
	for _, ref := range cj.Status.Active {
		if ref.Name == name && ref.Namespace == namespace {
			return true
		}
	}
	return false
}

func deleteFromActiveList(cj *batchv1.CronJob, uid types.UID) {
	active := []corev1.ObjectReference{}
	for _, ref := range cj.Status.Active {
		if ref.UID != uid {
			active = append(active, ref)
		}
	}
	cj.Status.Active = active
}

// parseSchedule parses standard cron syntax, as upstream (a bad TZ=
// prefix makes robfig/cron panic: an error here).
func parseSchedule(s string) (sched cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			sched, err = nil, fmt.Errorf("invalid schedule format: %v", p)
		}
	}()
	return cron.ParseStandard(s)
}

// formatSchedule is the schedule with spec.timeZone as a TZ= prefix; a
// schedule naming its own TZ is warned about (rec non-nil), as upstream.
func formatSchedule(cj *batchv1.CronJob, rec record.EventRecorder) string {
	if strings.Contains(cj.Spec.Schedule, "TZ") {
		if rec != nil {
			rec.Eventf(cj, corev1.EventTypeWarning, "UnsupportedSchedule", "CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", cj.Spec.Schedule)
		}
		return cj.Spec.Schedule
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			return cj.Spec.Schedule
		}
		return fmt.Sprintf("TZ=%s %s", *tz, cj.Spec.Schedule)
	}
	return cj.Spec.Schedule
}
