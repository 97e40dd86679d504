// Package interpodaffinity is the InterPodAffinity plugin, after
// upstream's: required pod affinity and anti-affinity of the incoming pod
// and existing pods' required anti-affinity filter nodes (PreFilter counts
// matching pods per topology domain, Filter reads the counts); preferred
// terms of both, and existing pods' required affinity weighted by
// hardPodAffinityWeight, score them.
package interpodaffinity

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.InterPodAffinity

// DefaultHardPodAffinityWeight is upstream's default for
// hardPodAffinityWeight.
const DefaultHardPodAffinityWeight int32 = 1

// InterPodAffinity is the plugin.
type InterPodAffinity struct {
	handle                             framework.Handle
	nsLister                           listersv1.NamespaceLister
	hardPodAffinityWeight              int32
	ignorePreferredTermsOfExistingPods bool
	cache                              termCache
}

var (
	_ framework.PreFilterPlugin   = &InterPodAffinity{}
	_ framework.FilterPlugin      = &InterPodAffinity{}
	_ framework.PreScorePlugin    = &InterPodAffinity{}
	_ framework.ScorePlugin       = &InterPodAffinity{}
	_ framework.EnqueueExtensions = &InterPodAffinity{}
)

// Name is the plugin's name.
func (pl *InterPodAffinity) Name() string { return Name }

// New builds the plugin from *InterPodAffinityArgs (nil: defaults).
func New(_ context.Context, args runtime.Object, h framework.Handle) (framework.Plugin, error) {
	if h.SnapshotSharedLister() == nil {
		return nil, fmt.Errorf("SnapshotSharedlister is nil")
	}
	pl := &InterPodAffinity{handle: h, hardPodAffinityWeight: DefaultHardPodAffinityWeight}
	switch a := args.(type) {
	case nil:
	case *configv1.InterPodAffinityArgs:
		if a.HardPodAffinityWeight != nil {
			pl.hardPodAffinityWeight = *a.HardPodAffinityWeight
		}
		pl.ignorePreferredTermsOfExistingPods = a.IgnorePreferredTermsOfExistingPods
	default:
		return nil, fmt.Errorf("want args to be of type InterPodAffinityArgs, got %T", args)
	}
	// Upstream's validation: 0 to 100.
	if pl.hardPodAffinityWeight < 0 || pl.hardPodAffinityWeight > 100 {
		return nil, fmt.Errorf("hardPodAffinityWeight: Invalid value: %d: not in valid range [0, 100]", pl.hardPodAffinityWeight)
	}
	if f := h.SharedInformerFactory(); f != nil {
		pl.nsLister = f.Core().V1().Namespaces().Lister()
	} else {
		return nil, fmt.Errorf("SharedInformerFactory is nil")
	}
	return pl, nil
}

// EventsToRegister: assigned pods appearing, relabelled or going away,
// the pod's own labels changing (its self-affinity; the queue reports a
// pending pod's own updates as UnscheduledPod events, upstream's
// TargetPod), and nodes appearing or relabelled, can change the answer.
func (pl *InterPodAffinity) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Add | framework.UpdatePodLabel | framework.Delete}, QueueingHintFn: pl.isSchedulableAfterAssignedPodChange},
		{Event: framework.ClusterEvent{Resource: framework.UnscheduledPod, ActionType: framework.UpdatePodLabel}},
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel}, QueueingHintFn: pl.isSchedulableAfterNodeChange},
	}, nil
}

func asPods(oldObj, newObj any) (*v1.Pod, *v1.Pod, error) {
	var o, n *v1.Pod
	var ok bool
	if oldObj != nil {
		if o, ok = oldObj.(*v1.Pod); !ok {
			return nil, nil, fmt.Errorf("unexpected object type %T, want *v1.Pod", oldObj)
		}
	}
	if newObj != nil {
		if n, ok = newObj.(*v1.Pod); !ok {
			return nil, nil, fmt.Errorf("unexpected object type %T, want *v1.Pod", newObj)
		}
	}
	return o, n, nil
}

func asNodes(oldObj, newObj any) (*v1.Node, *v1.Node, error) {
	var o, n *v1.Node
	var ok bool
	if oldObj != nil {
		if o, ok = oldObj.(*v1.Node); !ok {
			return nil, nil, fmt.Errorf("unexpected object type %T, want *v1.Node", oldObj)
		}
	}
	if newObj != nil {
		if n, ok = newObj.(*v1.Node); !ok {
			return nil, nil, fmt.Errorf("unexpected object type %T, want *v1.Node", newObj)
		}
	}
	return o, n, nil
}

// isSchedulableAfterAssignedPodChange: a pod now matching the affinity,
// no longer matching the anti-affinity, or whose anti-affinity held this
// pod off being deleted.
func (pl *InterPodAffinity) isSchedulableAfterAssignedPodChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	orig, mod, err := asPods(oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if (mod != nil && mod.Spec.NodeName == "" && mod.Status.NominatedNodeName == "") ||
		(orig != nil && orig.Spec.NodeName == "" && orig.Status.NominatedNodeName == "") {
		return framework.QueueSkip, nil
	}
	t, err := parsePodTerms(pod)
	if err != nil {
		return framework.Queue, err
	}
	switch {
	case mod != nil && orig != nil:
		if !podMatchesAllTerms(t.requiredAffinity, orig) && podMatchesAllTerms(t.requiredAffinity, mod) {
			return framework.Queue, nil
		}
		if podMatchesAnyTerm(t.requiredAntiAffinity, orig) && !podMatchesAnyTerm(t.requiredAntiAffinity, mod) {
			return framework.Queue, nil
		}
		return framework.QueueSkip, nil
	case mod != nil:
		if podMatchesAllTerms(t.requiredAffinity, mod) {
			logger.V(5).Info("A scheduled pod was added and it matches the target pod's affinity", "pod", klog.KObj(pod), "modifiedPod", klog.KObj(mod))
			return framework.Queue, nil
		}
		return framework.QueueSkip, nil
	}
	if podMatchesAnyTerm(t.requiredAntiAffinity, orig) {
		return framework.Queue, nil
	}
	ot, err := parsePodTerms(orig)
	if err != nil {
		return framework.Queue, err
	}
	if podMatchesAnyTerm(ot.requiredAntiAffinity, pod) {
		return framework.Queue, nil
	}
	return framework.QueueSkip, nil
}

// isSchedulableAfterNodeChange: a node gaining (or changing) an affinity
// term's topology key, or losing (or changing) an anti-affinity term's;
// any new node helps anti-affinity.
func (pl *InterPodAffinity) isSchedulableAfterNodeChange(_ klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	orig, mod, err := asNodes(oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if mod == nil {
		return framework.QueueSkip, nil
	}
	t, err := parsePodTerms(pod)
	if err != nil {
		return framework.Queue, err
	}
	for _, term := range t.requiredAffinity {
		if orig == nil {
			if _, ok := mod.Labels[term.topologyKey]; ok {
				return framework.Queue, nil
			}
			continue
		}
		ov, oh := orig.Labels[term.topologyKey]
		mv, mh := mod.Labels[term.topologyKey]
		if !oh && mh || oh && mh && ov != mv {
			return framework.Queue, nil
		}
	}
	for _, term := range t.requiredAntiAffinity {
		if orig == nil {
			return framework.Queue, nil
		}
		ov, oh := orig.Labels[term.topologyKey]
		mv, mh := mod.Labels[term.topologyKey]
		if oh && !mh || oh && mh && ov != mv {
			return framework.Queue, nil
		}
	}
	return framework.QueueSkip, nil
}
