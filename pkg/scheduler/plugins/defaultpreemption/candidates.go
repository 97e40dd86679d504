package defaultpreemption

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	policy "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// Upstream's texts.
const (
	// ErrNoVictims: a node has no lower-priority pod to remove.
	ErrNoVictims = "No preemption victims found for incoming pod"
	// ErrNotHelpful: a node whose failure no preemption can fix.
	ErrNotHelpful = "Preemption is not helpful for scheduling"
)

var notHelpful = framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrNotHelpful)

// candidate: a node and the pods to remove from it, most important first.
type candidate struct {
	node             string
	victims          []*v1.Pod
	numPDBViolations int
}

// podEligibleToPreemptOthers: preemptionPolicy Never pods do not preempt,
// nor do pods whose earlier preemption is still clearing their nominated
// node (unless that node is now out of reach).
func (pl *DefaultPreemption) podEligibleToPreemptOthers(pod *v1.Pod, nominatedNodeStatus *framework.Status) (bool, string) {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == v1.PreemptNever {
		return false, "not eligible due to preemptionPolicy=Never."
	}
	nom := pod.Status.NominatedNodeName
	if nom == "" {
		return true, ""
	}
	if nominatedNodeStatus.Code() == framework.UnschedulableAndUnresolvable {
		return true, ""
	}
	if ni, err := pl.handle.SnapshotSharedLister().NodeInfos().Get(nom); err == nil && ni != nil {
		prio := corev1helpers.PodPriority(pod)
		for _, p := range ni.Pods {
			if corev1helpers.PodPriority(p.Pod) < prio && podTerminatingByPreemption(p.Pod) {
				return false, "not eligible due to a terminating pod on the nominated node."
			}
		}
	}
	return true, ""
}

func podTerminatingByPreemption(p *v1.Pod) bool {
	if p.DeletionTimestamp == nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1.DisruptionTarget {
			return c.Status == v1.ConditionTrue && c.Reason == v1.PodReasonPreemptionByScheduler
		}
	}
	return false
}

// calculateNumCandidates: how many candidates the dry run looks for
// before stopping.
func (pl *DefaultPreemption) calculateNumCandidates(numNodes int32) int32 {
	n := numNodes * pl.minCandidateNodesPercentage / 100
	if n < pl.minCandidateNodesAbsolute {
		n = pl.minCandidateNodesAbsolute
	}
	return min(n, numNodes)
}

// findCandidates dry-runs preemption on the nodes that failed with
// Unschedulable (UnschedulableAndUnresolvable ones cannot be helped).
func (pl *DefaultPreemption) findCandidates(ctx context.Context, state *framework.CycleState, all []*framework.NodeInfo, pod *v1.Pod, filtered *framework.NodeToStatus) ([]*candidate, *framework.NodeToStatus, error) {
	if len(all) == 0 {
		return nil, nil, errors.New("no nodes available")
	}
	potential := filtered.NodesForStatusCode(all, framework.Unschedulable)
	if len(potential) == 0 {
		klog.FromContext(ctx).V(3).Info("Preemption will not help schedule pod on any node", "pod", klog.KObj(pod))
		return nil, framework.NewNodeToStatus(nil, nil), nil
	}
	pdbs, err := pl.pdbLister.List(labels.Everything())
	if err != nil {
		return nil, nil, err
	}
	n := int32(len(potential))
	return pl.dryRunPreemption(ctx, state, pod, potential, pdbs, pl.offset(n), pl.calculateNumCandidates(n))
}

// dryRunPreemption selects victims on each potential node (from offset,
// wrapping) on clones of the state and NodeInfo, until it has enough
// candidates including one without PDB violations.
func (pl *DefaultPreemption) dryRunPreemption(ctx context.Context, state *framework.CycleState, pod *v1.Pod, potential []*framework.NodeInfo,
	pdbs []*policy.PodDisruptionBudget, offset, numCandidates int32) ([]*candidate, *framework.NodeToStatus, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	statuses := framework.NewNodeToStatus(nil, nil)
	var mu sync.Mutex
	var nonViolating, violating []*candidate
	var errs []error
	pl.handle.Parallelizer().Until(ctx, len(potential), func(i int) {
		ni := potential[(int(offset)+i)%len(potential)]
		name := ni.Node().Name
		victims, numViolations, st := pl.selectVictimsOnNode(ctx, state.Clone(), pod, ni.Clone(), pdbs)
		if st.IsSuccess() && len(victims) == 0 {
			st = framework.AsStatus(fmt.Errorf("expected at least one victim pod on node %q", name))
		}
		mu.Lock()
		defer mu.Unlock()
		if st.IsSuccess() {
			c := &candidate{node: name, victims: victims, numPDBViolations: numViolations}
			if numViolations == 0 {
				if int32(len(nonViolating)) < numCandidates {
					nonViolating = append(nonViolating, c)
				}
			} else if int32(len(violating)) < numCandidates {
				violating = append(violating, c)
			}
			if len(nonViolating) > 0 && int32(len(nonViolating)+len(violating)) >= numCandidates {
				cancel()
			}
			return
		}
		if st.Code() == framework.Error {
			errs = append(errs, st.AsError())
		}
		statuses.Set(name, st)
	}, Name)
	return append(nonViolating, violating...), statuses, utilerrors.NewAggregate(errs)
}

// selectVictimsOnNode removes every lower-priority pod from nodeInfo
// (a clone), checks the preemptor then fits, and reprieves as many pods as
// still let it fit, most important first and PDB-protected ones before
// the others. It returns the pods left removed and how many of them
// violate a PDB.
func (pl *DefaultPreemption) selectVictimsOnNode(ctx context.Context, state *framework.CycleState, preemptor *v1.Pod, nodeInfo *framework.NodeInfo, pdbs []*policy.PodDisruptionBudget) ([]*v1.Pod, int, *framework.Status) {
	h := pl.handle
	remove := func(pi *framework.PodInfo) error {
		nodeInfo.RemovePod(pi.Pod)
		return h.RunPreFilterExtensionRemovePod(ctx, state, preemptor, pi, nodeInfo).AsError()
	}
	add := func(pi *framework.PodInfo) error {
		nodeInfo.AddPodInfo(pi)
		return h.RunPreFilterExtensionAddPod(ctx, state, preemptor, pi, nodeInfo).AsError()
	}
	prio := corev1helpers.PodPriority(preemptor)
	var potential []*framework.PodInfo
	for _, pi := range nodeInfo.Pods {
		if corev1helpers.PodPriority(pi.Pod) < prio {
			potential = append(potential, pi)
		}
	}
	if len(potential) == 0 {
		return nil, 0, framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrNoVictims)
	}
	for _, pi := range potential {
		if err := remove(pi); err != nil {
			return nil, 0, framework.AsStatus(err)
		}
	}
	// Even without all of them the pod does not fit: not a candidate.
	if st := h.RunFilterPluginsWithNominatedPods(ctx, state, preemptor, nodeInfo); !st.IsSuccess() {
		return nil, 0, st
	}
	sort.SliceStable(potential, func(i, j int) bool { return moreImportantPod(potential[i].Pod, potential[j].Pod) })
	violatingPods, nonViolatingPods := filterPodsWithPDBViolation(potential, pdbs)

	var victims []*framework.PodInfo
	reprieve := func(pi *framework.PodInfo) (bool, error) {
		if err := add(pi); err != nil {
			return false, err
		}
		fits := h.RunFilterPluginsWithNominatedPods(ctx, state, preemptor, nodeInfo).IsSuccess()
		if !fits {
			if err := remove(pi); err != nil {
				return false, err
			}
			victims = append(victims, pi)
			klog.FromContext(ctx).V(5).Info("Pod is a potential preemption victim on node", "pod", klog.KObj(pi.Pod), "node", klog.KObj(nodeInfo.Node()))
		}
		return fits, nil
	}
	numViolating := 0
	for _, pi := range violatingPods {
		fits, err := reprieve(pi)
		if err != nil {
			return nil, 0, framework.AsStatus(err)
		}
		if !fits {
			numViolating++
		}
	}
	for _, pi := range nonViolatingPods {
		if _, err := reprieve(pi); err != nil {
			return nil, 0, framework.AsStatus(err)
		}
	}
	// Both groups were each in order; merge them back into one.
	if len(violatingPods) != 0 && len(nonViolatingPods) != 0 {
		sort.SliceStable(victims, func(i, j int) bool { return moreImportantPod(victims[i].Pod, victims[j].Pod) })
	}
	out := make([]*v1.Pod, len(victims))
	for i, pi := range victims {
		out[i] = pi.Pod
	}
	return out, numViolating, nil
}

// podStartTime: status.startTime, or now for pods not started yet.
func podStartTime(p *v1.Pod) *metav1.Time {
	if p.Status.StartTime != nil {
		return p.Status.StartTime
	}
	return &metav1.Time{Time: time.Now()}
}

// moreImportantPod: higher priority, then the older pod.
func moreImportantPod(a, b *v1.Pod) bool {
	pa, pb := corev1helpers.PodPriority(a), corev1helpers.PodPriority(b)
	if pa != pb {
		return pa > pb
	}
	return podStartTime(a).Before(podStartTime(b))
}

// filterPodsWithPDBViolation splits pods (in order) into those whose
// eviction would exceed a PDB's disruptionsAllowed and the others.
func filterPodsWithPDBViolation(pods []*framework.PodInfo, pdbs []*policy.PodDisruptionBudget) (violating, nonViolating []*framework.PodInfo) {
	allowed := make([]int32, len(pdbs))
	for i, pdb := range pdbs {
		allowed[i] = pdb.Status.DisruptionsAllowed
	}
	for _, pi := range pods {
		pod := pi.Pod
		isViolating := false
		if len(pod.Labels) != 0 {
			for i, pdb := range pdbs {
				if pdb.Namespace != pod.Namespace {
					continue
				}
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
					continue
				}
				// Already counted as disrupted by the PDB controller.
				if _, ok := pdb.Status.DisruptedPods[pod.Name]; ok {
					continue
				}
				allowed[i]--
				if allowed[i] < 0 {
					isViolating = true
					break
				}
			}
		}
		if isViolating {
			violating = append(violating, pi)
		} else {
			nonViolating = append(nonViolating, pi)
		}
	}
	return violating, nonViolating
}

// earliestStartTimeOfHighest: the earliest start among the victims of the
// highest priority.
func earliestStartTimeOfHighest(victims []*v1.Pod) *metav1.Time {
	earliest := podStartTime(victims[0])
	maxPrio := corev1helpers.PodPriority(victims[0])
	for _, p := range victims[1:] {
		switch prio := corev1helpers.PodPriority(p); {
		case prio == maxPrio:
			if t := podStartTime(p); t.Before(earliest) {
				earliest = t
			}
		case prio > maxPrio:
			maxPrio, earliest = prio, podStartTime(p)
		}
	}
	return earliest
}

// pickOneNodeForPreemption applies upstream's criteria in turn, keeping
// the ties of each: fewest PDB violations, lowest highest-victim priority,
// smallest sum of priorities, fewest victims, latest start of the
// highest-priority victims; then the first left.
func pickOneNodeForPreemption(cands []*candidate) *candidate {
	if len(cands) == 0 {
		return nil
	}
	scoreFuncs := []func(c *candidate) int64{
		func(c *candidate) int64 { return -int64(c.numPDBViolations) },
		func(c *candidate) int64 { return -int64(corev1helpers.PodPriority(c.victims[0])) },
		func(c *candidate) int64 {
			var sum int64
			for _, p := range c.victims {
				// Shifted so negative priorities still add up to more
				// than fewer pods.
				sum += int64(corev1helpers.PodPriority(p)) + int64(math.MaxInt32+1)
			}
			return -sum
		},
		func(c *candidate) int64 { return -int64(len(c.victims)) },
		func(c *candidate) int64 { return earliestStartTimeOfHighest(c.victims).UnixNano() },
	}
	left := cands
	for _, f := range scoreFuncs {
		var best []*candidate
		maxScore := int64(math.MinInt64)
		for _, c := range left {
			s := f(c)
			if s > maxScore {
				maxScore, best = s, nil
			}
			if s == maxScore {
				best = append(best, c)
			}
		}
		if len(best) == 1 {
			return best[0]
		}
		left = best
	}
	return left[0]
}
