// Package nodeaffinity is the NodeAffinity plugin: spec.nodeSelector and
// required node affinity filter nodes, preferred node affinity scores
// them, and the profile's addedAffinity applies to every pod on top.
package nodeaffinity

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

const (
	// Name is the plugin's name in configuration.
	Name = names.NodeAffinity
	// ErrReasonPod: the pod's own nodeSelector or required affinity.
	ErrReasonPod = "node(s) didn't match Pod's node affinity/selector"
	// errReasonEnforced: the profile's addedAffinity.
	errReasonEnforced = "node(s) didn't match scheduler-enforced node affinity"
	// errReasonConflict: required terms that name no node at all.
	errReasonConflict = "pod affinity terms conflict"

	preFilterStateKey framework.StateKey = "PreFilter" + Name
	preScoreStateKey  framework.StateKey = "PreScore" + Name
)

// NodeAffinity filters and scores by node labels and fields.
type NodeAffinity struct {
	addedNodeSelector   *nodeaffinity.NodeSelector
	addedPrefSchedTerms *nodeaffinity.PreferredSchedulingTerms
}

var (
	_ framework.PreFilterPlugin   = &NodeAffinity{}
	_ framework.FilterPlugin      = &NodeAffinity{}
	_ framework.PreScorePlugin    = &NodeAffinity{}
	_ framework.ScorePlugin       = &NodeAffinity{}
	_ framework.ScoreExtensions   = &NodeAffinity{}
	_ framework.EnqueueExtensions = &NodeAffinity{}
)

// New builds the plugin from *NodeAffinityArgs (nil: no added affinity).
func New(_ context.Context, obj runtime.Object, _ framework.Handle) (framework.Plugin, error) {
	pl := &NodeAffinity{}
	var added *v1.NodeAffinity
	switch a := obj.(type) {
	case nil:
	case *configv1.NodeAffinityArgs:
		added = a.AddedAffinity
	default:
		return nil, fmt.Errorf("args are not of type NodeAffinityArgs, got %T", obj)
	}
	if added == nil {
		return pl, nil
	}
	var err error
	if ns := added.RequiredDuringSchedulingIgnoredDuringExecution; ns != nil {
		if pl.addedNodeSelector, err = nodeaffinity.NewNodeSelector(ns); err != nil {
			return nil, fmt.Errorf("parsing addedAffinity.requiredDuringSchedulingIgnoredDuringExecution: %w", err)
		}
	}
	if terms := added.PreferredDuringSchedulingIgnoredDuringExecution; len(terms) != 0 {
		if pl.addedPrefSchedTerms, err = nodeaffinity.NewPreferredSchedulingTerms(terms); err != nil {
			return nil, fmt.Errorf("parsing addedAffinity.preferredDuringSchedulingIgnoredDuringExecution: %w", err)
		}
	}
	return pl, nil
}

// Name is the plugin's name.
func (pl *NodeAffinity) Name() string { return Name }

// EventsToRegister: a node added or relabelled so that it now matches.
func (pl *NodeAffinity) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel}, QueueingHintFn: pl.isSchedulableAfterNodeChange},
	}, nil
}

func (pl *NodeAffinity) isSchedulableAfterNodeChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	original, modified, err := framework.As[*v1.Node](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if modified == nil {
		return framework.QueueSkip, nil
	}
	if pl.addedNodeSelector != nil && !pl.addedNodeSelector.Match(modified) {
		return framework.QueueSkip, nil
	}
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	matches, err := required.Match(modified)
	if err != nil {
		return framework.Queue, err
	}
	if !matches {
		return framework.QueueSkip, nil
	}
	if original == nil {
		logger.V(5).Info("node was created, and matches with the pod's NodeAffinity", "pod", klog.KObj(pod), "node", klog.KObj(modified))
		return framework.Queue, nil
	}
	matched, err := required.Match(original)
	if err != nil {
		return framework.Queue, err
	}
	if matched {
		return framework.QueueSkip, nil
	}
	logger.V(5).Info("node was updated and the pod's NodeAffinity changed to matched", "pod", klog.KObj(pod), "node", klog.KObj(modified))
	return framework.Queue, nil
}

type preFilterState struct {
	required nodeaffinity.RequiredNodeAffinity
}

func (s *preFilterState) Clone() framework.StateData { return s }

// PreFilter parses the pod's selector and required affinity once (Skip
// if there is nothing to check), and narrows the nodes when every
// required term names nodes by metadata.name.
func (pl *NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	aff := pod.Spec.Affinity
	noRequired := aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil
	if noRequired && pl.addedNodeSelector == nil && pod.Spec.NodeSelector == nil {
		return nil, framework.NewStatus(framework.Skip)
	}
	state.Write(preFilterStateKey, &preFilterState{required: nodeaffinity.GetRequiredNodeAffinity(pod)})
	if noRequired {
		return nil, nil
	}
	terms := aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return nil, nil
	}
	// Terms are ORed: the pod may go to the union of their node names, but
	// only if every term names some (a term without one matches others).
	var union sets.Set[string]
	for _, t := range terms {
		var termNames sets.Set[string]
		for _, r := range t.MatchFields {
			if r.Key == metav1.ObjectNameField && r.Operator == v1.NodeSelectorOpIn {
				s := sets.New(r.Values...)
				if termNames == nil {
					termNames = s
				} else {
					termNames = termNames.Intersection(s)
				}
			}
		}
		if termNames == nil {
			return nil, nil
		}
		union = union.Union(termNames)
	}
	if union != nil && union.Len() == 0 {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, errReasonConflict)
	}
	if union.Len() > 0 {
		return &framework.PreFilterResult{NodeNames: union}, nil
	}
	return nil, nil
}

// PreFilterExtensions: none; other pods do not matter.
func (pl *NodeAffinity) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter checks the added affinity, then the pod's selector and required
// affinity. Labels do not change by preemption: unresolvable.
func (pl *NodeAffinity) Filter(_ context.Context, state *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	node := nodeInfo.Node()
	if node == nil {
		return framework.NewStatus(framework.Error, "node not found")
	}
	if pl.addedNodeSelector != nil && !pl.addedNodeSelector.Match(node) {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, errReasonEnforced)
	}
	var required nodeaffinity.RequiredNodeAffinity
	if c, err := state.Read(preFilterStateKey); err == nil {
		if s, ok := c.(*preFilterState); ok {
			required = s.required
		} else {
			required = nodeaffinity.GetRequiredNodeAffinity(pod)
		}
	} else {
		required = nodeaffinity.GetRequiredNodeAffinity(pod)
	}
	// A term that does not parse matches nothing (upstream ignores the
	// error: validation keeps such pods out).
	if ok, _ := required.Match(node); !ok {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonPod)
	}
	return nil
}

type preScoreState struct {
	preferred *nodeaffinity.PreferredSchedulingTerms
}

func (s *preScoreState) Clone() framework.StateData { return s }

func podPreferred(pod *v1.Pod) (*nodeaffinity.PreferredSchedulingTerms, error) {
	a := pod.Spec.Affinity
	if a != nil && a.NodeAffinity != nil && a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution != nil {
		return nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	return nil, nil
}

// PreScore parses the preferred terms once; Skip without any.
func (pl *NodeAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) *framework.Status {
	pref, err := podPreferred(pod)
	if err != nil {
		return framework.AsStatus(err)
	}
	if pref == nil && pl.addedPrefSchedTerms == nil {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(preScoreStateKey, &preScoreState{preferred: pref})
	return nil
}

// Score sums the weights of the matching preferred terms (the pod's and
// the added ones).
func (pl *NodeAffinity) Score(_ context.Context, state *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	node := nodeInfo.Node()
	if node == nil {
		return 0, framework.NewStatus(framework.Error, "node not found")
	}
	var count int64
	if pl.addedPrefSchedTerms != nil {
		count += pl.addedPrefSchedTerms.Score(node)
	}
	var pref *nodeaffinity.PreferredSchedulingTerms
	if c, err := state.Read(preScoreStateKey); err == nil {
		if s, ok := c.(*preScoreState); ok {
			pref = s.preferred
		}
	} else {
		if pref, err = podPreferred(pod); err != nil {
			return 0, framework.AsStatus(err)
		}
	}
	if pref != nil {
		count += pref.Score(node)
	}
	return count, nil
}

// NormalizeScore scales the sums so the best node scores 100.
func (pl *NodeAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *v1.Pod, scores framework.NodeScoreList) *framework.Status {
	return framework.DefaultNormalizeScore(framework.MaxNodeScore, false, scores)
}

// ScoreExtensions is the plugin itself.
func (pl *NodeAffinity) ScoreExtensions() framework.ScoreExtensions { return pl }
