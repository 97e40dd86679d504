package job_test

// Against a real skiff API server, the controller as skiff runs it (as its
// ServiceAccount, so its RBAC role is exercised). No kubelet runs: the
// tests finish the pods by writing their status.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/controllers/job"
	"github.com/skiff-dev/skiff/test/integration"
)

func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	t.Cleanup(job.SetPodFailureBackoff(200 * time.Millisecond))
	integration.RunControllers(t, cfg, controllers.Options{Controllers: []string{"job-controller", "serviceaccount-controller"}, UseServiceAccountCredentials: true})
	return kubernetes.NewForConfigOrDie(cfg)
}

func newJob(name string, completions, parallelism int32) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Completions: ptr.To(completions), Parallelism: ptr.To(parallelism),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
			}},
		},
	}
}

// eventually retries f until it returns nil, or fails the test with its
// last error after d.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	integration.Eventually(t, d, func() string {
		if err := f(); err != nil {
			return err.Error()
		}
		return ""
	})
}

func jobPods(t *testing.T, cs kubernetes.Interface, j *batchv1.Job) []corev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods(j.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "batch.kubernetes.io/controller-uid=" + string(j.UID)})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// activePods waits for exactly n pods that are not finished.
func activePods(t *testing.T, cs kubernetes.Interface, j *batchv1.Job, n int) []corev1.Pod {
	t.Helper()
	var active []corev1.Pod
	eventually(t, 20*time.Second, func() error {
		active = nil
		for _, p := range jobPods(t, cs, j) {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil {
				active = append(active, p)
			}
		}
		if len(active) != n {
			return fmt.Errorf("%d active pods, want %d", len(active), n)
		}
		return nil
	})
	return active
}

// finish makes the pod exit with code.
func finish(t *testing.T, cs kubernetes.Interface, p corev1.Pod, code int32) {
	t.Helper()
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	now := metav1.Now()
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "busybox",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, StartedAt: now, FinishedAt: now}}}}
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), &p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func condition(j *batchv1.Job, ct batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == ct && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func waitCondition(t *testing.T, cs kubernetes.Interface, j *batchv1.Job, ct batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var got *batchv1.Job
	eventually(t, 20*time.Second, func() error {
		var err error
		if got, err = cs.BatchV1().Jobs(j.Namespace).Get(context.Background(), j.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		if condition(got, ct) == nil {
			return fmt.Errorf("no %s condition: %+v", ct, got.Status)
		}
		return nil
	})
	return got
}

func events(t *testing.T, cs kubernetes.Interface, j *batchv1.Job) []string {
	t.Helper()
	evs, err := cs.CoreV1().Events(j.Namespace).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + j.Name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func TestJobCompletes(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	j, err := cs.BatchV1().Jobs("default").Create(ctx, newJob("done", 3, 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := activePods(t, cs, j, 2)
	p := pods[0]
	if !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
		t.Errorf("pod finalizers %v, want the tracking finalizer", p.Finalizers)
	}
	if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != j.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) || ref.Kind != "Job" {
		t.Errorf("pod controller ref %+v", ref)
	}
	if p.Labels[batchv1.JobNameLabel] != "done" || !strings.HasPrefix(p.Name, "done-") {
		t.Errorf("pod %s labels %v", p.Name, p.Labels)
	}
	for _, p := range pods {
		finish(t, cs, p, 0)
	}
	// One more for the third completion, never more.
	last := activePods(t, cs, j, 1)
	finish(t, cs, last[0], 0)
	got := waitCondition(t, cs, j, batchv1.JobComplete)
	if got.Status.Succeeded != 3 || got.Status.Failed != 0 || got.Status.Active != 0 || got.Status.CompletionTime == nil || got.Status.StartTime == nil {
		t.Errorf("status %+v", got.Status)
	}
	if c := condition(got, batchv1.JobSuccessCriteriaMet); c == nil || c.Reason != batchv1.JobReasonCompletionsReached {
		t.Errorf("SuccessCriteriaMet %+v", c)
	}
	if c := condition(got, batchv1.JobComplete); c.Reason != batchv1.JobReasonCompletionsReached || c.Message != "Reached expected number of succeeded pods" {
		t.Errorf("Complete %+v", c)
	}
	if n := len(jobPods(t, cs, j)); n != 3 {
		t.Errorf("%d pods, want 3", n)
	}
	eventually(t, 10*time.Second, func() error {
		for _, p := range jobPods(t, cs, j) {
			if len(p.Finalizers) != 0 {
				return fmt.Errorf("pod %s keeps finalizers %v", p.Name, p.Finalizers)
			}
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		evs := events(t, cs, j)
		if !slices.Contains(evs, "Completed: Job completed") || !slices.ContainsFunc(evs, func(e string) bool { return strings.HasPrefix(e, "SuccessfulCreate: Created pod: done-") }) {
			return fmt.Errorf("events %v", evs)
		}
		return nil
	})
}

func TestJobBackoffLimit(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	spec := newJob("fails", 1, 1)
	spec.Spec.BackoffLimit = ptr.To[int32](1)
	j, err := cs.BatchV1().Jobs("default").Create(ctx, spec, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, cs, activePods(t, cs, j, 1)[0], 1)
	// The replacement comes after the backoff.
	finish(t, cs, activePods(t, cs, j, 1)[0], 1)
	got := waitCondition(t, cs, j, batchv1.JobFailed)
	c := condition(got, batchv1.JobFailed)
	if c.Reason != batchv1.JobReasonBackoffLimitExceeded || c.Message != "Job has reached the specified backoff limit" {
		t.Errorf("Failed %+v", c)
	}
	if condition(got, batchv1.JobFailureTarget) == nil {
		t.Error("no FailureTarget condition")
	}
	if got.Status.Failed != 2 || got.Status.Succeeded != 0 || got.Status.Active != 0 {
		t.Errorf("status %+v", got.Status)
	}
	if n := len(jobPods(t, cs, j)); n != 2 {
		t.Errorf("%d pods, want 2", n)
	}
	eventually(t, 10*time.Second, func() error {
		if evs := events(t, cs, j); !slices.Contains(evs, "BackoffLimitExceeded: Job has reached the specified backoff limit") {
			return fmt.Errorf("events %v", evs)
		}
		return nil
	})
}

func TestJobIndexed(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	spec := newJob("idx", 3, 3)
	spec.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	j, err := cs.BatchV1().Jobs("default").Create(ctx, spec, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := activePods(t, cs, j, 3)
	var indexes []string
	for _, p := range pods {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		indexes = append(indexes, ix)
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "idx-"+ix || !strings.HasPrefix(p.Name, "idx-"+ix+"-") {
			t.Errorf("pod %s: labels %v hostname %q", p.Name, p.Labels, p.Spec.Hostname)
		}
		env := p.Spec.Containers[0].Env
		if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" || env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" {
			t.Errorf("pod %s env %+v", p.Name, env)
		}
	}
	slices.Sort(indexes)
	if !slices.Equal(indexes, []string{"0", "1", "2"}) {
		t.Errorf("indexes %v", indexes)
	}
	for _, p := range pods {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] != "1" {
			finish(t, cs, p, 0)
		}
	}
	eventually(t, 20*time.Second, func() error {
		got, err := cs.BatchV1().Jobs("default").Get(ctx, "idx", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.CompletedIndexes != "0,2" || got.Status.Succeeded != 2 {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	for _, p := range pods {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "1" {
			finish(t, cs, p, 0)
		}
	}
	if got := waitCondition(t, cs, j, batchv1.JobComplete); got.Status.CompletedIndexes != "0-2" {
		t.Errorf("completedIndexes %q", got.Status.CompletedIndexes)
	}
}

func TestJobSuspendAndDeadline(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	spec := newJob("sus", 2, 2)
	spec.Spec.Suspend = ptr.To(true)
	j, err := cs.BatchV1().Jobs("default").Create(ctx, spec, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, cs, j, batchv1.JobSuspended)
	if c := condition(got, batchv1.JobSuspended); c.Reason != "JobSuspended" || got.Status.StartTime != nil {
		t.Errorf("suspended %+v, startTime %v", c, got.Status.StartTime)
	}
	if n := len(jobPods(t, cs, j)); n != 0 {
		t.Errorf("suspended job has %d pods", n)
	}
	// Resumed with a deadline: the pods come, then the deadline fails it.
	got.Spec.Suspend = ptr.To(false)
	got.Spec.ActiveDeadlineSeconds = ptr.To[int64](3)
	if _, err := cs.BatchV1().Jobs("default").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	activePods(t, cs, j, 2)
	eventually(t, 20*time.Second, func() error {
		got, err := cs.BatchV1().Jobs("default").Get(ctx, "sus", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == batchv1.JobSuspended && c.Status == corev1.ConditionFalse && c.Reason == "JobResumed" {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", got.Status.Conditions)
	})
	// The pods are deleted (no kubelet: they stay terminating with the
	// finalizer removed), then the Job fails.
	eventually(t, 20*time.Second, func() error {
		got, err := cs.BatchV1().Jobs("default").Get(ctx, "sus", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := condition(got, batchv1.JobFailureTarget); c == nil || c.Reason != batchv1.JobReasonDeadlineExceeded || c.Message != "Job was active longer than specified deadline" {
			return fmt.Errorf("conditions %+v", got.Status.Conditions)
		}
		return nil
	})
}

// TestJobTTLAfterFinished: with the ttl-after-finished-controller, a
// finished Job is deleted in the foreground once its TTL ran out (no
// garbage collector runs here: it stays with the foregroundDeletion
// finalizer).
func TestJobTTLAfterFinished(t *testing.T) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	integration.RunControllers(t, cfg, controllers.Options{UseServiceAccountCredentials: true,
		Controllers: []string{"job-controller", "serviceaccount-controller", "ttl-after-finished-controller"}})
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	spec := newJob("ttl", 1, 1)
	spec.Spec.TTLSecondsAfterFinished = ptr.To[int32](2)
	j, err := cs.BatchV1().Jobs("default").Create(ctx, spec, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, cs, activePods(t, cs, j, 1)[0], 0)
	done := waitCondition(t, cs, j, batchv1.JobComplete)
	finishedAt := condition(done, batchv1.JobComplete).LastTransitionTime.Time
	eventually(t, 20*time.Second, func() error {
		got, err := cs.BatchV1().Jobs("default").Get(ctx, "ttl", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, metav1.FinalizerDeleteDependents) {
			return fmt.Errorf("job not deleted in the foreground: deletionTimestamp %v, finalizers %v", got.DeletionTimestamp, got.Finalizers)
		}
		// Not before the TTL (the timestamps have second precision).
		if got.DeletionTimestamp.Time.Before(finishedAt.Add(time.Second)) {
			t.Errorf("deleted at %v, finished at %v, TTL 2s", got.DeletionTimestamp, finishedAt)
		}
		return nil
	})
}
