package job

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// Upstream's event reasons for the pods a controller creates and deletes.
const (
	reasonSuccessfulCreate = "SuccessfulCreate"
	reasonFailedCreate     = "FailedCreate"
	reasonSuccessfulDelete = "SuccessfulDelete"
	reasonFailedDelete     = "FailedDelete"
)

// manageJob creates or deletes pods for the wanted number of active pods,
// honouring the pod failure backoff; it returns the number of active pods
// afterwards. A sync either creates or deletes, never both.
func (r *Reconciler) manageJob(ctx context.Context, jc *syncCtx) (int32, error) {
	logger := klog.FromContext(ctx)
	job := jc.job
	active := int32(len(jc.activePods))
	parallelism := *job.Spec.Parallelism

	if jobSuspended(job) {
		logger.V(4).Info("Deleting all active pods in suspended job", "job", klog.KObj(job), "active", active)
		rm := activePodsForRemoval(job, jc.activePods, int(active))
		r.expectations.Expect(jc.key, "", 0, len(rm))
		removedReady, removed, err := r.deleteJobPods(ctx, jc.key, job, rm)
		jc.terminating += removed
		jc.ready -= removedReady
		return active - removed, err
	}

	var want int32
	if job.Spec.Completions == nil {
		// Without completions: parallelism pods until one succeeds, then
		// whatever runs keeps running.
		want = parallelism
		if jc.succeeded > 0 {
			want = active
		}
	} else {
		want = max(0, min(*job.Spec.Completions-jc.succeeded, parallelism))
	}

	rm := activePodsForRemoval(job, jc.activePods, int(max(0, active-want)))
	if len(rm) > maxPodCreateDeletePerSync {
		rm = rm[:maxPodCreateDeletePerSync]
	}
	if len(rm) > 0 {
		r.expectations.Expect(jc.key, "", 0, len(rm))
		logger.V(4).Info("Too many pods running for job", "job", klog.KObj(job), "deleted", len(rm), "target", want)
		removedReady, removed, err := r.deleteJobPods(ctx, jc.key, job, rm)
		jc.terminating += removed
		jc.ready -= removedReady
		return active - removed, err
	}

	var terminating int32
	if onlyReplaceFailedPods(job) {
		terminating = jc.terminating
	}
	diff := want - terminating - active
	if diff <= 0 {
		return active, nil
	}
	if !hasBackoffLimitPerIndex(job) {
		if left := jc.newBackoffRecord.remaining(r.Clock); left > 0 {
			jc.requeue(left)
			return active, nil
		}
	}
	diff = min(diff, int32(maxPodCreateDeletePerSync))
	var indexes []int
	if isIndexedJob(job) {
		indexes = firstPendingIndexes(jc, int(diff), int(*job.Spec.Completions))
		if hasBackoffLimitPerIndex(job) {
			var now []int
			var wait time.Duration
			for _, ix := range indexes {
				left := remainingBackoffPerIndex(logger, r.Clock, jc.delayedDeletion[ix])
				if left == 0 {
					now = append(now, ix)
				} else if wait == 0 || left < wait {
					wait = left
				}
			}
			if len(now) == 0 && wait > 0 {
				jc.requeue(wait)
				return active, nil
			}
			indexes = now
		}
		diff = int32(len(indexes))
	}
	if diff == 0 {
		return active, nil
	}

	r.expectations.Expect(jc.key, "", int(diff), 0)
	logger.V(4).Info("Too few pods running", "key", jc.key, "need", want, "creating", diff)
	template := job.Spec.Template.DeepCopy()
	if isIndexedJob(job) {
		addCompletionIndexEnv(template)
	}
	if !slices.Contains(template.Finalizers, batchv1.JobTrackingFinalizer) {
		template.Finalizers = append(template.Finalizers, batchv1.JobTrackingFinalizer)
	}

	// Slow start, as upstream: batches of 1, 2, 4, ... stop at the first
	// batch with a failure.
	var created atomic.Int32
	var errsMu sync.Mutex
	var errs []error
	left := diff
	for batch := min(left, 1); left > 0; batch = min(2*batch, left) {
		errsBefore := len(errs)
		var wg sync.WaitGroup
		for i := int32(0); i < batch; i++ {
			ix := unknownCompletionIndex
			if len(indexes) > 0 {
				ix, indexes = indexes[0], indexes[1:]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := r.createPod(ctx, jc, template, ix)
				if err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					// The namespace is going: so are all later creations.
					err = nil
				}
				if err != nil {
					logger.V(2).Info("Failed creation, decrementing expectations", "job", klog.KObj(job))
					r.expectations.CreationObserved(jc.key)
					errsMu.Lock()
					errs = append(errs, err)
					errsMu.Unlock()
					return
				}
				created.Add(1)
			}()
		}
		wg.Wait()
		left -= batch
		if len(errs) > errsBefore && left > 0 {
			logger.V(2).Info("Slow-start failure. Skipping creating pods, decrementing expectations", "skippedCount", left, "job", klog.KObj(job))
			r.expectations.Lower(jc.key, int(left), 0)
			break
		}
	}
	return active + created.Load(), utilerrors.NewAggregate(errs)
}

// createPod creates one pod from the template (for index ix, if known).
func (r *Reconciler) createPod(ctx context.Context, jc *syncCtx, template *corev1.PodTemplateSpec, ix int) error {
	job := jc.job
	t := template
	generateName := podNamePrefix(job.Name)
	if ix != unknownCompletionIndex {
		t = template.DeepCopy()
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		if t.Labels == nil {
			t.Labels = map[string]string{}
		}
		t.Annotations[batchv1.JobCompletionIndexAnnotation] = fmt.Sprint(ix)
		t.Labels[batchv1.JobCompletionIndexAnnotation] = fmt.Sprint(ix)
		t.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, ix)
		generateName = generateNameWithIndex(job.Name, ix)
		if hasBackoffLimitPerIndex(job) {
			addIndexFailureCounts(klog.FromContext(ctx), t, job, jc.delayedDeletion[ix])
		}
	}
	if len(t.Labels) == 0 {
		return fmt.Errorf("unable to create pods, no labels")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    generateName,
			Labels:          copyMap(t.Labels),
			Annotations:     copyMap(t.Annotations),
			Finalizers:      slices.Clone(t.Finalizers),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	created, err := r.Core.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			r.Recorder.Eventf(job, corev1.EventTypeWarning, reasonFailedCreate, "Error creating: %v", err)
		}
		return err
	}
	klog.FromContext(ctx).V(4).Info("Controller created pod", "controller", job.Name, "pod", klog.KObj(created))
	r.Recorder.Eventf(job, corev1.EventTypeNormal, reasonSuccessfulCreate, "Created pod: %v", created.Name)
	return nil
}

// podNamePrefix is "<job>-", or the bare name if that is no valid prefix.
func podNamePrefix(name string) string {
	prefix := name + "-"
	if len(validation.NameIsDNSSubdomain(prefix, true)) != 0 {
		return name
	}
	return prefix
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// activePodsForRemoval picks at least n pods to delete: for Indexed Jobs
// first those with duplicated, missing or out-of-range indexes, then in
// upstream's order (not ready before ready, unscheduled before scheduled,
// pending before running, ...).
func activePodsForRemoval(job *batchv1.Job, pods []*corev1.Pod, n int) []*corev1.Pod {
	var rm []*corev1.Pod
	left := slices.Clone(pods)
	if isIndexedJob(job) {
		rm, left = duplicatedIndexPodsForRemoval(pods, int(*job.Spec.Completions))
	}
	if len(rm) < n {
		sortForRemoval(left)
		rm = append(rm, left[:n-len(rm)]...)
	}
	return rm
}

// deleteActivePods deletes the pods keeping their finalizers (the
// Job is finishing; the finalizers go once the pods are counted). It
// returns how many ready pods and how many pods were deleted.
func (r *Reconciler) deleteActivePods(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) (int32, int32, error) {
	return r.deletePods(ctx, job, pods, false, nil)
}

// deleteJobPods removes the finalizer and deletes each pod, the
// expectations lowered for the deletions that fail.
func (r *Reconciler) deleteJobPods(ctx context.Context, key types.NamespacedName, job *batchv1.Job, pods []*corev1.Pod) (int32, int32, error) {
	return r.deletePods(ctx, job, pods, true, func() { r.expectations.DeletionObserved(key) })
}

func (r *Reconciler) deletePods(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod, removeFinalizer bool, failed func()) (int32, int32, error) {
	var deleted, deletedReady atomic.Int32
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	fail := func(p *corev1.Pod, err error) {
		if failed != nil {
			failed()
		}
		if apierrors.IsNotFound(err) {
			return
		}
		klog.FromContext(ctx).V(2).Info("Failed to delete Pod", "job", klog.KObj(job), "pod", klog.KObj(p), "err", err)
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := error(nil)
			if patch := removeFinalizerPatch(p); removeFinalizer && patch != nil {
				if _, err = r.Core.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
					err = fmt.Errorf("removing completion finalizer: %w", err)
				}
			}
			if err == nil {
				err = r.deletePod(ctx, job, p.Name)
			}
			if err != nil {
				fail(p, err)
				if !apierrors.IsNotFound(err) {
					return
				}
			}
			deleted.Add(1)
			if podutil.IsPodReady(p) {
				deletedReady.Add(1)
			}
		}()
	}
	wg.Wait()
	return deletedReady.Load(), deleted.Load(), utilerrors.NewAggregate(errs)
}

// deletePod deletes one pod of the Job, with upstream's events.
func (r *Reconciler) deletePod(ctx context.Context, job *batchv1.Job, name string) error {
	klog.FromContext(ctx).V(2).Info("Deleting pod", "controller", job.Name, "pod", klog.KRef(job.Namespace, name))
	err := r.Core.CoreV1().Pods(job.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return err
		}
		r.Recorder.Eventf(job, corev1.EventTypeWarning, reasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %v", err)
	}
	r.Recorder.Eventf(job, corev1.EventTypeNormal, reasonSuccessfulDelete, "Deleted pod: %v", name)
	return nil
}

// removeFinalizerPatch is the strategic merge patch removing the tracking
// finalizer, nil if the pod has none.
func removeFinalizerPatch(p *corev1.Pod) []byte {
	if !hasTrackingFinalizer(p) {
		return nil
	}
	data, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer},
	}})
	return data
}
