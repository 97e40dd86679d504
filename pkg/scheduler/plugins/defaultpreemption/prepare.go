package defaultpreemption

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// prepareCandidate evicts the candidate's victims (DisruptionTarget
// condition, then delete, then a Preempted event on each), takes the
// nomination away from lower-priority pods nominated to the node, and
// nominates the preemptor there.
//
// Upstream's core writes the preemptor's nominatedNodeName from the
// PostFilterResult together with its PodScheduled condition; this plugin
// writes it itself so it is set whatever the core does with the result
// (a second identical patch is a no-op).
func (pl *DefaultPreemption) prepareCandidate(ctx context.Context, c *candidate, preemptor *v1.Pod) *framework.Status {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	pl.handle.Parallelizer().Until(ctx, len(c.victims), func(i int) {
		victim := c.victims[i]
		if victim.DeletionTimestamp != nil {
			klog.FromContext(ctx).V(2).Info("Victim Pod is already being deleted, skipping the API call for it", "preemptor", klog.KObj(preemptor), "node", c.node, "victim", klog.KObj(victim))
			return
		}
		if err := pl.preemptPod(ctx, c.node, preemptor, victim); err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			cancel()
		}
	}, Name)
	if firstErr != nil {
		return framework.AsStatus(firstErr)
	}
	if err := pl.clearNominatedNodeName(ctx, pl.lowerPriorityNominatedPods(corev1helpers.PodPriority(preemptor), c.node)...); err != nil {
		klog.FromContext(ctx).Error(err, "Cannot clear 'NominatedNodeName' field from lower priority pods on the same target node", "node", c.node)
	}
	if err := pl.setNominatedNodeName(ctx, preemptor, c.node); err != nil {
		klog.FromContext(ctx).Error(err, "Setting the preemptor's nominatedNodeName", "pod", klog.KObj(preemptor), "node", c.node)
	}
	return nil
}

// preemptPod: the DisruptionTarget condition on pods/status, the delete,
// the event. A victim already gone is no error.
func (pl *DefaultPreemption) preemptPod(ctx context.Context, node string, preemptor, victim *v1.Pod) error {
	logger := klog.FromContext(ctx)
	cond := v1.PodCondition{
		Type:               v1.DisruptionTarget,
		ObservedGeneration: victim.Generation,
		Status:             v1.ConditionTrue,
		Reason:             v1.PodReasonPreemptionByScheduler,
		Message:            fmt.Sprintf("%s: preempting to accommodate a higher priority pod", preemptor.Spec.SchedulerName),
	}
	newStatus := victim.Status.DeepCopy()
	if updatePodCondition(newStatus, &cond) {
		if err := pl.patchPodStatus(ctx, victim, newStatus); err != nil {
			if !apierrors.IsNotFound(err) {
				logger.Error(err, "Could not add DisruptionTarget condition due to preemption", "preemptor", klog.KObj(preemptor), "victim", klog.KObj(victim))
				return err
			}
			logger.V(2).Info("Victim Pod is already deleted", "preemptor", klog.KObj(preemptor), "victim", klog.KObj(victim), "node", node)
			return nil
		}
	}
	if err := pl.handle.ClientSet().CoreV1().Pods(victim.Namespace).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		if !apierrors.IsNotFound(err) {
			logger.Error(err, "Tried to preempted pod", "pod", klog.KObj(victim), "preemptor", klog.KObj(preemptor))
			return err
		}
		logger.V(2).Info("Victim Pod is already deleted", "preemptor", klog.KObj(preemptor), "victim", klog.KObj(victim), "node", node)
		return nil
	}
	logger.V(2).Info("Preemptor Pod preempted victim Pod", "preemptor", klog.KObj(preemptor), "victim", klog.KObj(victim), "node", node)
	if r := pl.handle.EventRecorder(); r != nil {
		r.Eventf(victim, preemptor, v1.EventTypeNormal, "Preempted", "Preempting", "Preempted by pod %v on node %v", preemptor.UID, node)
	}
	return nil
}

// updatePodCondition sets cond in status (keeping the transition time
// when the status is unchanged); false if nothing changed.
func updatePodCondition(status *v1.PodStatus, cond *v1.PodCondition) bool {
	cond.LastTransitionTime = metav1.Now()
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != cond.Type {
			continue
		}
		if cond.Status == old.Status {
			cond.LastTransitionTime = old.LastTransitionTime
		}
		equal := cond.Status == old.Status && cond.Reason == old.Reason && cond.Message == old.Message &&
			cond.LastProbeTime.Equal(&old.LastProbeTime) && cond.LastTransitionTime.Equal(&old.LastTransitionTime)
		status.Conditions[i] = *cond
		return !equal
	}
	status.Conditions = append(status.Conditions, *cond)
	return true
}

// patchPodStatus sends the strategic merge patch from pod's status to
// newStatus to pods/status (nothing if they are equal).
func (pl *DefaultPreemption) patchPodStatus(ctx context.Context, pod *v1.Pod, newStatus *v1.PodStatus) error {
	oldData, err := json.Marshal(v1.Pod{Status: pod.Status})
	if err != nil {
		return err
	}
	newData, err := json.Marshal(v1.Pod{Status: *newStatus})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, &v1.Pod{})
	if err != nil {
		return fmt.Errorf("failed to create merge patch for pod %q/%q: %w", pod.Namespace, pod.Name, err)
	}
	if string(patch) == "{}" {
		return nil
	}
	_, err = pl.handle.ClientSet().CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// setNominatedNodeName writes status.nominatedNodeName ("" clears it).
func (pl *DefaultPreemption) setNominatedNodeName(ctx context.Context, pod *v1.Pod, node string) error {
	if pod.Status.NominatedNodeName == node {
		return nil
	}
	s := pod.Status.DeepCopy()
	s.NominatedNodeName = node
	return pl.patchPodStatus(ctx, pod, s)
}

func (pl *DefaultPreemption) lowerPriorityNominatedPods(prio int32, node string) []*v1.Pod {
	var out []*v1.Pod
	for _, pi := range pl.handle.NominatedPodsForNode(node) {
		if corev1helpers.PodPriority(pi.Pod) < prio {
			out = append(out, pi.Pod)
		}
	}
	return out
}

func (pl *DefaultPreemption) clearNominatedNodeName(ctx context.Context, pods ...*v1.Pod) error {
	var errs []error
	for _, p := range pods {
		if p.Status.NominatedNodeName == "" {
			continue
		}
		if err := pl.setNominatedNodeName(ctx, p, ""); err != nil {
			errs = append(errs, err)
		}
	}
	return utilerrors.NewAggregate(errs)
}

// fitErrorMessage is upstream's FitError text: "0/N nodes are available:
// " and the sorted histogram of the nodes' reasons, nodes not in statuses
// counting with absent's.
func fitErrorMessage(numAllNodes int, statuses *framework.NodeToStatus, absent *framework.Status) string {
	msg := fmt.Sprintf("0/%v nodes are available:", numAllNodes)
	reasons := map[string]int{}
	n := 0
	if statuses != nil {
		statuses.ForEach(func(_ string, s *framework.Status) {
			for _, r := range s.Reasons() {
				reasons[r]++
			}
		})
		n = statuses.Len()
	}
	if n < numAllNodes {
		for _, r := range absent.Reasons() {
			reasons[r] += numAllNodes - n
		}
	}
	var hist []string
	for r, c := range reasons {
		hist = append(hist, fmt.Sprintf("%v %v", c, r))
	}
	sort.Strings(hist)
	if len(hist) > 0 {
		msg += fmt.Sprintf(" %v.", strings.Join(hist, ", "))
	}
	return msg
}
