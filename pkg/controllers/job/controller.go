// Package job is upstream's job-controller: it runs a Job's pods until
// enough of them succeed (completions, parallelism, the Indexed completion
// mode with one pod per index) or the Job fails (backoffLimit,
// backoffLimitPerIndex, podFailurePolicy, activeDeadlineSeconds), and
// keeps its status: active/ready/terminating/succeeded/failed counts,
// completedIndexes, failedIndexes and the conditions SuccessCriteriaMet,
// FailureTarget, Complete, Failed and Suspended with upstream's reasons,
// messages and events.
//
// As upstream, every pod carries the batch.kubernetes.io/job-tracking
// finalizer until it is counted: a finished pod's UID first goes to
// status.uncountedTerminatedPods, then its finalizer is removed, then it
// moves to the counters. Expectations (creations, deletions, finalizer
// removals) and the resourceVersion last written keep a sync from acting
// on a cache that has not caught up.
package job

import (
	"context"
	"reflect"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/expectations"
)

// Name is upstream's name of the controller and its events' source.
const Name = "job-controller"

// Upstream's tunables.
var (
	// syncBatchPeriod batches the syncs a burst of pod events causes.
	syncBatchPeriod = time.Second
	// maxUncountedPods bounds status.uncountedTerminatedPods (~20 KB).
	maxUncountedPods = 500
	// maxPodCreateDeletePerSync bounds the pods one sync creates or deletes.
	maxPodCreateDeletePerSync = 500
)

// podOwnerIndex indexes the cache's pods by their controller's UID (the
// orphans under orphanKey), so a Job's pods are found without a scan.
const (
	podOwnerIndex = "job.controllerUID"
	orphanKey     = "<orphan>"
)

// Reconciler is the Job controller.
type Reconciler struct {
	// Client reads through the manager's cache (with the pod index of
	// SetupWithManager).
	Client client.Client
	// Core writes (pods, Job status) with the controller's identity.
	Core kubernetes.Interface
	// APIReader reads a Job from the API before pods are adopted; nil:
	// the manager's.
	APIReader client.Reader
	// Recorder gets the events.
	Recorder record.EventRecorder
	// Clock is the time (tests); nil: the real one.
	Clock clock.Clock
	// Workers is --concurrent-job-syncs; 0: 5.
	Workers int

	once         sync.Once
	expectations *expectations.Expectations[types.NamespacedName]
	finalizers   *finalizerExpectations
	backoff      *backoffStore
	// finished are the UIDs of Jobs whose finished status was written but
	// not yet seen in the cache.
	finished sync.Map
	// written is, per Job, the resourceVersion of its last status write.
	written sync.Map
}

type writtenVersion struct {
	uid types.UID
	rv  uint64
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.Recorder == nil {
			r.Recorder = &record.FakeRecorder{}
		}
		if r.APIReader == nil {
			r.APIReader = r.Client
		}
		r.expectations = expectations.New[types.NamespacedName](r.Clock)
		r.finalizers = newFinalizerExpectations()
		r.backoff = newBackoffStore()
	})
}

// IndexPodsByOwner adds the pod index the controller needs.
func IndexPodsByOwner(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, podOwnerIndex, func(o client.Object) []string {
		if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
			return []string{string(ref.UID)}
		}
		return []string{orphanKey}
	})
}

// SetupWithManager registers the Job controller and the one removing the
// tracking finalizer from pods no unfinished Job controls.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.init()
	registerAll()
	if err := IndexPodsByOwner(context.Background(), mgr); err != nil {
		return err
	}
	workers := r.Workers
	if workers <= 0 {
		workers = 5
	}
	err := ctrl.NewControllerManagedBy(mgr).Named("job").
		Watches(&batchv1.Job{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(requestFor(e.Object))
			},
			UpdateFunc: r.jobUpdated,
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.finished.Delete(e.Object.GetUID())
				q.Add(requestFor(e.Object))
			},
		}).
		Watches(&corev1.Pod{}, handler.Funcs{
			CreateFunc: r.podCreated,
			UpdateFunc: r.podUpdated,
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if pod, ok := e.Object.(*corev1.Pod); ok {
					r.podDeleted(ctx, pod, true, q)
				}
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
	if err != nil {
		return err
	}
	return (&orphanReconciler{client: r.Client, core: r.Core}).setupWithManager(mgr)
}

func requestFor(o client.Object) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
}

func (r *Reconciler) jobUpdated(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	old, ok1 := e.ObjectOld.(*batchv1.Job)
	cur, ok2 := e.ObjectNew.(*batchv1.Job)
	if !ok1 || !ok2 {
		return
	}
	req := requestFor(cur)
	if isJobFinished(cur) {
		// The orphan reconciler frees its pods.
		return
	}
	if cur.Generation == old.Generation {
		q.AddAfter(req, syncBatchPeriod)
	} else {
		q.Add(req)
	}
	if cur.Status.StartTime != nil && cur.Spec.ActiveDeadlineSeconds != nil {
		if old.Spec.ActiveDeadlineSeconds == nil || *old.Spec.ActiveDeadlineSeconds != *cur.Spec.ActiveDeadlineSeconds {
			left := time.Duration(*cur.Spec.ActiveDeadlineSeconds)*time.Second - r.Clock.Since(cur.Status.StartTime.Time)
			klog.FromContext(ctx).V(4).Info("job's ActiveDeadlineSeconds updated, will rsync", "key", req.NamespacedName, "interval", left)
			q.AddAfter(req, left)
		}
	}
}

// controllingJob is the Job in the cache the controller ref names.
func (r *Reconciler) controllingJob(ctx context.Context, namespace string, ref *metav1.OwnerReference) *batchv1.Job {
	if ref == nil || ref.Kind != "Job" || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
		return nil
	}
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, job); err != nil || job.UID != ref.UID {
		return nil
	}
	return job
}

// enqueueMatchingJobs syncs the Jobs whose selector matches an orphan pod,
// to adopt it.
func (r *Reconciler) enqueueMatchingJobs(ctx context.Context, pod *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if len(pod.Labels) == 0 {
		return
	}
	var jobs batchv1.JobList
	if err := r.Client.List(ctx, &jobs, client.InNamespace(pod.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	for i := range jobs.Items {
		sel, err := metav1.LabelSelectorAsSelector(jobs.Items[i].Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		q.AddAfter(requestFor(&jobs.Items[i]), syncBatchPeriod)
	}
}

func (r *Reconciler) podCreated(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	pod, ok := e.Object.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		r.podDeleted(ctx, pod, false, q)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if job := r.controllingJob(ctx, pod.Namespace, ref); job != nil {
			key := client.ObjectKeyFromObject(job)
			r.expectations.CreationObserved(key)
			q.AddAfter(reconcile.Request{NamespacedName: key}, syncBatchPeriod)
		}
		return
	}
	r.enqueueMatchingJobs(ctx, pod, q)
}

func (r *Reconciler) podUpdated(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	old, ok1 := e.ObjectOld.(*corev1.Pod)
	cur, ok2 := e.ObjectNew.(*corev1.Pod)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil {
		r.podDeleted(ctx, cur, false, q)
		return
	}
	finalizerRemoved := !hasTrackingFinalizer(cur)
	curRef, oldRef := metav1.GetControllerOfNoCopy(cur), metav1.GetControllerOfNoCopy(old)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	notify := func(ref *metav1.OwnerReference) bool {
		job := r.controllingJob(ctx, cur.Namespace, ref)
		if job == nil {
			return false
		}
		key := client.ObjectKeyFromObject(job)
		if finalizerRemoved {
			r.finalizers.observed(key, cur.UID)
		}
		q.AddAfter(reconcile.Request{NamespacedName: key}, syncBatchPeriod)
		return true
	}
	if refChanged && oldRef != nil {
		notify(oldRef)
	}
	if curRef != nil {
		notify(curRef)
		return
	}
	if refChanged || !reflect.DeepEqual(cur.Labels, old.Labels) {
		r.enqueueMatchingJobs(ctx, cur, q)
	}
}

// podDeleted notes a deleted pod (final) or one being deleted.
func (r *Reconciler) podDeleted(ctx context.Context, pod *corev1.Pod, final bool, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	job := r.controllingJob(ctx, pod.Namespace, metav1.GetControllerOfNoCopy(pod))
	if job == nil || isJobFinished(job) {
		return
	}
	key := client.ObjectKeyFromObject(job)
	r.expectations.DeletionObserved(key)
	if final || !hasTrackingFinalizer(pod) {
		r.finalizers.observed(key, pod.UID)
	}
	q.AddAfter(reconcile.Request{NamespacedName: key}, syncBatchPeriod)
}

// noteWritten remembers the resourceVersion of a status write.
func (r *Reconciler) noteWritten(job *batchv1.Job) {
	if rv, err := strconv.ParseUint(job.ResourceVersion, 10, 64); err == nil {
		r.written.Store(client.ObjectKeyFromObject(job), writtenVersion{uid: job.UID, rv: rv})
	}
}

// cacheBehind says whether the cache has not seen the last status write
// to the Job yet.
func (r *Reconciler) cacheBehind(job *batchv1.Job) bool {
	v, ok := r.written.Load(client.ObjectKeyFromObject(job))
	if !ok {
		return false
	}
	w := v.(writtenVersion)
	rv, err := strconv.ParseUint(job.ResourceVersion, 10, 64)
	if err != nil || w.uid != job.UID || rv >= w.rv {
		r.written.Delete(client.ObjectKeyFromObject(job))
		return false
	}
	return true
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.expectations.Forget(key)
	r.finalizers.forget(key)
	r.backoff.remove(key)
	r.written.Delete(key)
}

// isJobFinished: Complete or Failed is true.
func isJobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
