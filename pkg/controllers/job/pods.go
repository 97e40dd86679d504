package job

import (
	"slices"
	"sort"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

func filterPods(pods []*corev1.Pod, keep func(*corev1.Pod) bool) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

func countPods(pods []*corev1.Pod, match func(*corev1.Pod) bool) int32 {
	var n int32
	for _, p := range pods {
		if match(p) {
			n++
		}
	}
	return n
}

// isPodFailed: failed, or (unless only failed pods are replaced) deleted
// before it succeeded, as upstream counts pods that never got to fail.
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailedPods(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

func onlyReplaceFailedPods(job *batchv1.Job) bool {
	return ptr.Deref(job.Spec.PodReplacementPolicy, "") == batchv1.Failed
}

var podPhaseOrdinal = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// sortForRemoval orders pods as upstream's ActivePods, the ones to delete
// first: unassigned < assigned, pending < unknown < running, not ready <
// ready, ready for less time, more restarts, newer.
func sortForRemoval(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return lessForRemoval(pods[i], pods[j]) })
}

func lessForRemoval(a, b *corev1.Pod) bool {
	if a.Spec.NodeName != b.Spec.NodeName && (a.Spec.NodeName == "" || b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if podPhaseOrdinal[a.Status.Phase] != podPhaseOrdinal[b.Status.Phase] {
		return podPhaseOrdinal[a.Status.Phase] < podPhaseOrdinal[b.Status.Phase]
	}
	ra, rb := podutil.IsPodReady(a), podutil.IsPodReady(b)
	if ra != rb {
		return !ra
	}
	if ra && rb {
		ta, tb := podutil.GetPodReadyCondition(a).LastTransitionTime, podutil.GetPodReadyCondition(b).LastTransitionTime
		if !ta.Equal(&tb) {
			return afterOrZero(&ta, &tb)
		}
	}
	if ca, cb := maxRestarts(a), maxRestarts(b); ca != cb {
		return ca > cb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return afterOrZero(&a.CreationTimestamp, &b.CreationTimestamp)
	}
	return false
}

// afterOrZero: t1 is zero or after t2.
func afterOrZero(t1, t2 *metav1.Time) bool {
	if t1.Time.IsZero() || t2.Time.IsZero() {
		return t1.Time.IsZero()
	}
	return t1.After(t2.Time)
}

func maxRestarts(p *corev1.Pod) int32 {
	var m int32
	for _, s := range p.Status.ContainerStatuses {
		m = max(m, s.RestartCount)
	}
	return m
}

// finishedTime is when the pod finished, as upstream's getFinishedTime:
// its containers' last termination, else its Ready=False transition, else
// its deletion time less the grace period, else its creation.
func finishedTime(p *corev1.Pod) time.Time {
	if t := containersFinishedTime(p); t != nil {
		return *t
	}
	if c := podutil.GetPodReadyCondition(p); c != nil && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	if p.DeletionTimestamp != nil {
		return p.DeletionTimestamp.Add(-time.Duration(ptr.Deref(p.DeletionGracePeriodSeconds, 0)) * time.Second)
	}
	return p.CreationTimestamp.Time
}

func containersFinishedTime(p *corev1.Pod) *time.Time {
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if ptr.Deref(c.RestartPolicy, "") == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	var latest *time.Time
	check := func(statuses []corev1.ContainerStatus, only map[string]bool) bool {
		for _, s := range statuses {
			if only != nil && !only[s.Name] {
				continue
			}
			t := s.State.Terminated
			if t == nil || t.FinishedAt.IsZero() {
				return false
			}
			if latest == nil || latest.Before(t.FinishedAt.Time) {
				latest = &t.FinishedAt.Time
			}
		}
		return true
	}
	if !check(p.Status.ContainerStatuses, nil) || !check(p.Status.InitContainerStatuses, sidecars) {
		return nil
	}
	return latest
}

func sortByFinishedTime(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return finishedTime(pods[i]).Before(finishedTime(pods[j])) })
}

const unknownCompletionIndex = -1

// completionIndex is the pod's batch.kubernetes.io/job-completion-index
// annotation, or unknownCompletionIndex.
func completionIndex(p *corev1.Pod) int {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return unknownCompletionIndex
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return unknownCompletionIndex
	}
	return i
}

func sortByCompletionIndex(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return completionIndex(pods[i]) < completionIndex(pods[j]) })
}
