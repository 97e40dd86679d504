package job

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

const completionIndexEnvName = "JOB_COMPLETION_INDEX"

func isIndexedJob(job *batchv1.Job) bool {
	return ptr.Deref(job.Spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion
}

func hasBackoffLimitPerIndex(job *batchv1.Job) bool {
	return job.Spec.BackoffLimitPerIndex != nil
}

// interval is a range of completion indexes, both ends included.
type interval struct{ first, last int }

// intervals are sorted, disjoint and not adjacent: the compressed form of
// status.completedIndexes and status.failedIndexes ("1,3-5,7").
type intervals []interval

// parseIntervals reads the compressed form, dropping indexes not below
// completions and bad parts (logged), as upstream.
func parseIntervals(logger klog.Logger, s string, completions int) intervals {
	if s == "" {
		return nil
	}
	var out intervals
	for _, part := range strings.Split(s, ",") {
		bounds := strings.Split(part, "-")
		first, err := strconv.Atoi(bounds[0])
		if err != nil {
			logger.Info("Corrupted indexes interval, ignoring", "interval", part, "err", err)
			continue
		}
		if first >= completions {
			break
		}
		last := first
		if len(bounds) > 1 {
			if last, err = strconv.Atoi(bounds[1]); err != nil {
				logger.Info("Corrupted indexes interval, ignoring", "interval", part, "err", err)
				continue
			}
			last = min(last, completions-1)
		}
		if n := len(out); n > 0 && out[n-1].last == first-1 {
			out[n-1].last = last
		} else {
			out = append(out, interval{first, last})
		}
	}
	return out
}

// withIndexes adds indexes given in increasing order.
func (iv intervals) withIndexes(indexes []int) intervals {
	add := make(intervals, len(indexes))
	for i, x := range indexes {
		add[i] = interval{x, x}
	}
	return iv.merge(add)
}

func (iv intervals) merge(other intervals) intervals {
	var out intervals
	push := func(x interval) {
		if n := len(out); n > 0 && x.first <= out[n-1].last+1 {
			out[n-1].last = max(out[n-1].last, x.last)
			return
		}
		out = append(out, x)
	}
	i, j := 0, 0
	for i < len(iv) && j < len(other) {
		if iv[i].first < other[j].first {
			push(iv[i])
			i++
		} else {
			push(other[j])
			j++
		}
	}
	for ; i < len(iv); i++ {
		push(iv[i])
	}
	for ; j < len(other); j++ {
		push(other[j])
	}
	return out
}

func (iv intervals) total() int {
	n := 0
	for _, x := range iv {
		n += x.last - x.first + 1
	}
	return n
}

func (iv intervals) has(ix int) bool {
	for _, x := range iv {
		if ix < x.first {
			return false
		}
		if ix <= x.last {
			return true
		}
	}
	return false
}

// String is upstream's form: a pair of adjacent indexes is written "1,2".
func (iv intervals) String() string {
	var b strings.Builder
	for _, x := range iv {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(x.first))
		switch {
		case x.last == x.first+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(x.last))
		case x.last > x.first:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(x.last))
		}
	}
	return b.String()
}

// validIndex: the pod has a completion index below completions.
func validIndex(job *batchv1.Job, p *corev1.Pod) (int, bool) {
	ix := completionIndex(p)
	return ix, ix != unknownCompletionIndex && ix < int(ptr.Deref(job.Spec.Completions, 0))
}

// succeededIndexes are status.completedIndexes before and with the
// succeeded pods not yet counted (those with the finalizer).
func succeededIndexes(logger klog.Logger, job *batchv1.Job, pods []*corev1.Pod) (prev, cur intervals) {
	prev = parseIntervals(logger, job.Status.CompletedIndexes, int(*job.Spec.Completions))
	added := sets.New[int]()
	for _, p := range pods {
		if ix, ok := validIndex(job, p); ok && p.Status.Phase == corev1.PodSucceeded && hasTrackingFinalizer(p) {
			added.Insert(ix)
		}
	}
	return prev, prev.withIndexes(sets.List(added))
}

// failedIndexes are status.failedIndexes with the indexes whose pods not
// yet counted failed for good (backoffLimitPerIndex).
func failedIndexes(logger klog.Logger, job *batchv1.Job, pods []*corev1.Pod) intervals {
	var prev intervals
	if job.Status.FailedIndexes != nil {
		prev = parseIntervals(logger, *job.Status.FailedIndexes, int(*job.Spec.Completions))
	}
	added := sets.New[int]()
	for _, p := range pods {
		if ix, ok := validIndex(job, p); ok && hasTrackingFinalizer(p) && isIndexFailed(logger, job, p) {
			added.Insert(ix)
		}
	}
	return prev.withIndexes(sets.List(added))
}

func isIndexFailed(logger klog.Logger, job *batchv1.Job, p *corev1.Pod) bool {
	if !isPodFailed(p, job) {
		return false
	}
	counted := true
	if job.Spec.PodFailurePolicy != nil {
		_, countFailed, action := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p)
		if action != nil && *action == batchv1.PodFailurePolicyActionFailIndex {
			return true
		}
		counted = countFailed
	}
	return counted && indexFailureCount(logger, p) >= *job.Spec.BackoffLimitPerIndex
}

// firstPendingIndexes are the lowest count indexes below completions that
// no active pod holds, nor succeeded or failed (nor, if only failed pods
// are replaced, a terminating pod holds).
func firstPendingIndexes(jc *syncCtx, count, completions int) []int {
	if count == 0 {
		return nil
	}
	taken := jc.succeededIndexes.withIndexes(sets.List(indexesOf(jc.activePods)))
	if onlyReplaceFailedPods(jc.job) {
		taken = taken.withIndexes(sets.List(indexesOf(filterPods(jc.pods, podutil.IsPodTerminating))))
	}
	if jc.failedIndexes != nil {
		taken = taken.merge(*jc.failedIndexes)
	}
	var out []int
	for ix := 0; ix < completions && len(out) < count; ix++ {
		if !taken.has(ix) {
			out = append(out, ix)
		}
	}
	return out
}

func indexesOf(pods []*corev1.Pod) sets.Set[int] {
	out := sets.New[int]()
	for _, p := range pods {
		if ix := completionIndex(p); ix != unknownCompletionIndex {
			out.Insert(ix)
		}
	}
	return out
}

// duplicatedIndexPodsForRemoval splits active pods of an Indexed Job into
// those to delete (no index, an index out of range, all but the best of
// pods sharing an index) and the rest.
func duplicatedIndexPodsForRemoval(pods []*corev1.Pod, completions int) (rm, left []*corev1.Pod) {
	byIndex := map[int][]*corev1.Pod{}
	var order []int
	for _, p := range pods {
		ix := completionIndex(p)
		if ix == unknownCompletionIndex || ix >= completions {
			rm = append(rm, p)
			continue
		}
		if _, ok := byIndex[ix]; !ok {
			order = append(order, ix)
		}
		byIndex[ix] = append(byIndex[ix], p)
	}
	for _, ix := range order {
		same := byIndex[ix]
		sortForRemoval(same)
		rm = append(rm, same[:len(same)-1]...)
		left = append(left, same[len(same)-1])
	}
	return rm, left
}

// podsWithDelayedDeletion are, per index, the last failed pod whose
// finalizer stays until its replacement exists, so the replacement can
// carry the index's failure count (backoffLimitPerIndex).
func podsWithDelayedDeletion(logger klog.Logger, jc *syncCtx) map[int]*corev1.Pod {
	active := indexesOf(jc.activePods)
	out := map[int]*corev1.Pod{}
	for _, p := range countablePods(jc, nil) {
		if !isPodFailed(p, jc.job) {
			continue
		}
		ix, _ := validIndex(jc.job, p)
		if jc.succeededIndexes.has(ix) || jc.failedIndexes.has(ix) || active.Has(ix) {
			continue
		}
		if last, ok := out[ix]; ok {
			if absoluteIndexFailureCount(logger, last) <= absoluteIndexFailureCount(logger, p) && !finishedTime(p).Before(finishedTime(last)) {
				out[ix] = p
			}
		} else {
			out[ix] = p
		}
	}
	return out
}

func indexFailureCount(logger klog.Logger, p *corev1.Pod) int32 {
	return parseCountAnnotation(logger, p, batchv1.JobIndexFailureCountAnnotation)
}

func absoluteIndexFailureCount(logger klog.Logger, p *corev1.Pod) int32 {
	return indexFailureCount(logger, p) + parseCountAnnotation(logger, p, batchv1.JobIndexIgnoredFailureCountAnnotation)
}

func parseCountAnnotation(logger klog.Logger, p *corev1.Pod, key string) int32 {
	v, ok := p.Annotations[key]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		logger.Error(err, "Failed to parse the value", "value", v)
		return 0
	}
	if n < 0 || n > math.MaxInt32 {
		logger.Info("The value is invalid", "value", n)
		return 0
	}
	return int32(n)
}

// addIndexFailureCounts sets the replacement's failure count annotations
// from the pod it replaces.
func addIndexFailureCounts(logger klog.Logger, t *corev1.PodTemplateSpec, job *batchv1.Job, replaced *corev1.Pod) {
	var failures, ignored int32
	if replaced != nil {
		failures = indexFailureCount(logger, replaced)
		ignored = parseCountAnnotation(logger, replaced, batchv1.JobIndexIgnoredFailureCountAnnotation)
		if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, replaced); count {
			failures++
		} else {
			ignored++
		}
	}
	t.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(int(failures))
	if ignored > 0 {
		t.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(int(ignored))
	}
}

// addCompletionIndexEnv gives every container JOB_COMPLETION_INDEX from
// the pod's completion index label.
func addCompletionIndexEnv(t *corev1.PodTemplateSpec) {
	add := func(c *corev1.Container) {
		for _, e := range c.Env {
			if e.Name == completionIndexEnvName {
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: completionIndexEnvName, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.labels['%s']", batchv1.JobCompletionIndexAnnotation)},
		}})
	}
	for i := range t.Spec.InitContainers {
		add(&t.Spec.InitContainers[i])
	}
	for i := range t.Spec.Containers {
		add(&t.Spec.Containers[i])
	}
}

// generateNameWithIndex is "<job>-<index>-", the job name shortened to
// fit as upstream's podGenerateNameWithIndex.
func generateNameWithIndex(jobName string, ix int) string {
	suffix := "-" + strconv.Itoa(ix) + "-"
	prefix := jobName + suffix
	if len(prefix) > names.MaxGeneratedNameLength {
		prefix = prefix[:names.MaxGeneratedNameLength-len(suffix)] + suffix
	}
	return prefix
}
