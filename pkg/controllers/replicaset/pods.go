package replicaset

import (
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// PodDeletionCostAnnotation orders the pods of a ReplicaSet for deletion
// on scale down (upstream's controller.kubernetes.io/pod-deletion-cost).
const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// nextAvailabilityCheck is when the ready pod becomes available, if later
// than now.
func nextAvailabilityCheck(p *corev1.Pod, minReadySeconds int32, now time.Time) *time.Duration {
	if minReadySeconds <= 0 || !podutil.IsPodReady(p) {
		return nil
	}
	c := podutil.GetPodReadyCondition(p)
	if c.LastTransitionTime.IsZero() {
		return nil
	}
	if d := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second).Sub(now); d > 0 {
		return &d
	}
	return nil
}

// minNextAvailabilityCheck is upstream's FindMinNextPodAvailabilityCheck:
// the earliest time one of the pods ready but not available at evaluated
// (when the status was computed) becomes available, measured from the
// clock's now (0 if that is past).
func minNextAvailabilityCheck(pods []*corev1.Pod, minReadySeconds int32, evaluated, now time.Time) *time.Duration {
	var first *time.Duration
	var pod *corev1.Pod
	for _, p := range pods {
		if d := nextAvailabilityCheck(p, minReadySeconds, evaluated); d != nil && (first == nil || *d < *first) {
			first, pod = d, p
		}
	}
	if pod == nil {
		return nil
	}
	if d := nextAvailabilityCheck(pod, minReadySeconds, now); d != nil {
		return d
	}
	zero := time.Duration(0)
	return &zero
}

// podFromTemplate is upstream's GetPodFromTemplate: the template's labels,
// annotations, finalizers and spec, named <owner>- plus a random suffix
// by the API server, controlled by ref.
func podFromTemplate(template *corev1.PodTemplateSpec, ownerName string, ref *metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Labels:       map[string]string{},
		Annotations:  map[string]string{},
		GenerateName: podPrefix(ownerName),
		Finalizers:   make([]string, len(template.Finalizers)),
	}}
	for k, v := range template.Labels {
		pod.Labels[k] = v
	}
	for k, v := range template.Annotations {
		pod.Annotations[k] = v
	}
	copy(pod.Finalizers, template.Finalizers)
	if ref != nil {
		pod.OwnerReferences = append(pod.OwnerReferences, *ref)
	}
	pod.Spec = *template.Spec.DeepCopy()
	return pod
}

// podPrefix is "<name>-", or the name if that is no valid prefix.
func podPrefix(name string) string {
	prefix := name + "-"
	if len(validation.NameIsDNSSubdomain(prefix, true)) != 0 {
		return name
	}
	return prefix
}

var podPhaseToOrdinal = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// rankedPods sort in upstream's ActivePodsWithRanks order, those to delete
// first first:
//  1. not on a node before on a node;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. lower controller.kubernetes.io/pod-deletion-cost first;
//  5. higher rank (more related pods on the same node) first;
//  6. both ready: ready for a shorter time first;
//  7. more container restarts first;
//  8. newer first.
//
// Times in 6 and 8 compare on a logarithmic scale from now (so that pods
// of about the same age are deleted in a pseudo-random order, by UID).
type rankedPods struct {
	pods []*corev1.Pod
	rank []int
	now  metav1.Time
}

func (s rankedPods) Len() int { return len(s.pods) }

func (s rankedPods) Swap(i, j int) {
	s.pods[i], s.pods[j] = s.pods[j], s.pods[i]
	s.rank[i], s.rank[j] = s.rank[j], s.rank[i]
}

func (s rankedPods) Less(i, j int) bool {
	pi, pj := s.pods[i], s.pods[j]
	if pi.Spec.NodeName != pj.Spec.NodeName && (pi.Spec.NodeName == "" || pj.Spec.NodeName == "") {
		return pi.Spec.NodeName == ""
	}
	if oi, oj := podPhaseToOrdinal[pi.Status.Phase], podPhaseToOrdinal[pj.Status.Phase]; oi != oj {
		return oi < oj
	}
	ri, rj := podutil.IsPodReady(pi), podutil.IsPodReady(pj)
	if ri != rj {
		return !ri
	}
	if ci, cj := deletionCost(pi), deletionCost(pj); ci != cj {
		return ci < cj
	}
	if s.rank[i] != s.rank[j] {
		return s.rank[i] > s.rank[j]
	}
	if ri && rj {
		ti, tj := podReadyTime(pi), podReadyTime(pj)
		if !ti.Equal(tj) {
			if s.now.IsZero() || ti.IsZero() || tj.IsZero() {
				return afterOrZero(ti, tj)
			}
			if d := logarithmicRankDiff(*ti, *tj, s.now); d != 0 {
				return d < 0
			}
			return pi.UID < pj.UID
		}
	}
	if more := compareRestarts(pi, pj); more != 0 {
		return more > 0
	}
	if !pi.CreationTimestamp.Equal(&pj.CreationTimestamp) {
		if s.now.IsZero() || pi.CreationTimestamp.IsZero() || pj.CreationTimestamp.IsZero() {
			return afterOrZero(&pi.CreationTimestamp, &pj.CreationTimestamp)
		}
		if d := logarithmicRankDiff(pi.CreationTimestamp, pj.CreationTimestamp, s.now); d != 0 {
			return d < 0
		}
		return pi.UID < pj.UID
	}
	return false
}

// deletionCost is the pod's controller.kubernetes.io/pod-deletion-cost, 0
// if absent or invalid (a sign only for negative numbers, no leading
// zeros).
func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[PodDeletionCostAnnotation]
	if !ok || v == "" || !(v[0] == '-' || v == "0" || (v[0] >= '1' && v[0] <= '9')) {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// afterOrZero: t1 is after t2, a zero time being after any other.
func afterOrZero(t1, t2 *metav1.Time) bool {
	if t1.IsZero() || t2.IsZero() {
		return t1.IsZero()
	}
	return t1.After(t2.Time)
}

// logarithmicRankDiff compares the base-2 logarithms of the two times' ages.
func logarithmicRankDiff(t1, t2, now metav1.Time) int64 {
	rank := func(t metav1.Time) int64 {
		if d := now.Sub(t.Time); d > 0 {
			return int64(math.Log2(float64(d)))
		}
		return -1
	}
	return rank(t1) - rank(t2)
}

func podReadyTime(p *corev1.Pod) *metav1.Time {
	if c := podutil.GetPodReadyCondition(p); c != nil && c.Status == corev1.ConditionTrue {
		return &c.LastTransitionTime
	}
	return &metav1.Time{}
}

// maxRestarts are the most restarts of a regular container and of a
// sidecar (an init container that always restarts).
func maxRestarts(p *corev1.Pod) (regular, sidecar int32) {
	for _, c := range p.Status.ContainerStatuses {
		regular = max(regular, c.RestartCount)
	}
	sidecars := sets.New[string]()
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars.Insert(c.Name)
		}
	}
	for _, c := range p.Status.InitContainerStatuses {
		if sidecars.Has(c.Name) {
			sidecar = max(sidecar, c.RestartCount)
		}
	}
	return regular, sidecar
}

// compareRestarts is 1 if pi restarted more than pj, -1 if less, 0 if as
// often (regular containers first, then sidecars).
func compareRestarts(pi, pj *corev1.Pod) int {
	ri, si := maxRestarts(pi)
	rj, sj := maxRestarts(pj)
	switch {
	case ri != rj:
		return cmpSign(ri > rj)
	case si != sj:
		return cmpSign(si > sj)
	}
	return 0
}

func cmpSign(greater bool) int {
	if greater {
		return 1
	}
	return -1
}

// podsOnNodes counts the active pods per node.
func podsOnNodes(pods []*corev1.Pod) map[string]int {
	n := map[string]int{}
	for _, p := range pods {
		if podutil.IsPodActive(p) {
			n[p.Spec.NodeName]++
		}
	}
	return n
}
