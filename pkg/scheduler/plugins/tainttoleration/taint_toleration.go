// Package tainttoleration is the TaintToleration plugin: a node with a
// NoSchedule or NoExecute taint the pod does not tolerate is filtered out,
// and nodes are scored down by their untolerated PreferNoSchedule taints.
package tainttoleration

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

const (
	// Name is the plugin's name in configuration.
	Name = names.TaintToleration
	// ErrReasonUntolerated is upstream v1.37's Filter reason (earlier
	// releases named the taint; v1.37 does not).
	ErrReasonUntolerated = "node(s) had untolerated taint(s)"

	preScoreStateKey framework.StateKey = "PreScore" + Name
)

// Toleration comparison operators (alpha TaintTolerationComparisonOperators)
// are off, as upstream's default.
const comparisonOperators = false

// TaintToleration filters and scores by taints.
type TaintToleration struct{}

var (
	_ framework.FilterPlugin      = &TaintToleration{}
	_ framework.PreScorePlugin    = &TaintToleration{}
	_ framework.ScorePlugin       = &TaintToleration{}
	_ framework.ScoreExtensions   = &TaintToleration{}
	_ framework.EnqueueExtensions = &TaintToleration{}
)

// New builds the plugin; it takes no args.
func New(_ context.Context, _ runtime.Object, _ framework.Handle) (framework.Plugin, error) {
	return &TaintToleration{}, nil
}

// Name is the plugin's name.
func (pl *TaintToleration) Name() string { return Name }

// doNotSchedule: the taints Filter enforces.
func doNotSchedule(t *v1.Taint) bool {
	return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
}

// EventsToRegister: a node added or retainted so that the pod now
// tolerates it, or the pod gaining tolerations.
func (pl *TaintToleration) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeTaint}, QueueingHintFn: pl.isSchedulableAfterNodeChange},
		{Event: framework.ClusterEvent{Resource: framework.Pod, ActionType: framework.UpdatePodToleration}, QueueingHintFn: pl.isSchedulableAfterPodTolerationChange},
	}, nil
}

func (pl *TaintToleration) isSchedulableAfterNodeChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	original, modified, err := framework.As[*v1.Node](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if modified == nil {
		return framework.QueueSkip, nil
	}
	wasUntolerated := true
	if original != nil {
		_, wasUntolerated = corev1helpers.FindMatchingUntoleratedTaint(logger, original.Spec.Taints, pod.Spec.Tolerations, doNotSchedule, comparisonOperators)
	}
	_, isUntolerated := corev1helpers.FindMatchingUntoleratedTaint(logger, modified.Spec.Taints, pod.Spec.Tolerations, doNotSchedule, comparisonOperators)
	if wasUntolerated && !isUntolerated {
		logger.V(5).Info("node was created or updated, and the pod now tolerates its taints", "pod", klog.KObj(pod), "node", klog.KObj(modified))
		return framework.Queue, nil
	}
	return framework.QueueSkip, nil
}

func (pl *TaintToleration) isSchedulableAfterPodTolerationChange(_ klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	_, modified, err := framework.As[*v1.Pod](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if modified == nil || modified.UID != pod.UID {
		return framework.QueueSkip, nil
	}
	return framework.Queue, nil
}

// Filter rejects a node with an untolerated NoSchedule or NoExecute taint;
// no preemption can remove a taint, so the rejection is unresolvable.
func (pl *TaintToleration) Filter(ctx context.Context, _ *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	node := nodeInfo.Node()
	if node == nil {
		return framework.NewStatus(framework.Error, "node not found")
	}
	logger := klog.FromContext(ctx)
	taint, untolerated := corev1helpers.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, pod.Spec.Tolerations, doNotSchedule, comparisonOperators)
	if !untolerated {
		return nil
	}
	logger.V(4).Info("node had untolerated taints", "node", klog.KObj(node), "pod", klog.KObj(pod), "untoleratedTaint", taint)
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonUntolerated)
}

// preScoreState: the pod's tolerations that can tolerate PreferNoSchedule.
type preScoreState struct {
	tolerationsPreferNoSchedule []v1.Toleration
}

func (s *preScoreState) Clone() framework.StateData { return s }

// preferNoScheduleTolerations: tolerations with that effect or none.
func preferNoScheduleTolerations(ts []v1.Toleration) []v1.Toleration {
	var out []v1.Toleration
	for _, t := range ts {
		if t.Effect == "" || t.Effect == v1.TaintEffectPreferNoSchedule {
			out = append(out, t)
		}
	}
	return out
}

// PreScore picks the tolerations Score needs once.
func (pl *TaintToleration) PreScore(_ context.Context, state *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) *framework.Status {
	state.Write(preScoreStateKey, &preScoreState{tolerationsPreferNoSchedule: preferNoScheduleTolerations(pod.Spec.Tolerations)})
	return nil
}

// Score is the number of the node's PreferNoSchedule taints the pod does
// not tolerate; NormalizeScore reverses it.
func (pl *TaintToleration) Score(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	node := nodeInfo.Node()
	if node == nil {
		return 0, framework.NewStatus(framework.Error, "node not found")
	}
	tolerations, err := readPreScore(state)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	logger := klog.FromContext(ctx)
	var n int64
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect == v1.TaintEffectPreferNoSchedule && !corev1helpers.TolerationsTolerateTaint(logger, tolerations, t, comparisonOperators) {
			n++
		}
	}
	return n, nil
}

func readPreScore(state *framework.CycleState) ([]v1.Toleration, error) {
	c, err := state.Read(preScoreStateKey)
	if err != nil {
		return nil, fmt.Errorf("failed to read %q from cycleState: %w", preScoreStateKey, err)
	}
	s, ok := c.(*preScoreState)
	if !ok {
		return nil, fmt.Errorf("%+v convert to tainttoleration.preScoreState error", c)
	}
	return s.tolerationsPreferNoSchedule, nil
}

// NormalizeScore: the fewest untolerated taints scores 100.
func (pl *TaintToleration) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *v1.Pod, scores framework.NodeScoreList) *framework.Status {
	return framework.DefaultNormalizeScore(framework.MaxNodeScore, true, scores)
}

// ScoreExtensions is the plugin itself.
func (pl *TaintToleration) ScoreExtensions() framework.ScoreExtensions { return pl }
