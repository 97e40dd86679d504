// Package podtopologyspread is the PodTopologySpread plugin, after
// upstream's: whenUnsatisfiable DoNotSchedule constraints filter nodes
// (maxSkew, minDomains, nodeAffinityPolicy/nodeTaintsPolicy,
// matchLabelKeys), ScheduleAnyway constraints score them, and pods without
// constraints of their own get the default constraints (the system's:
// hostname maxSkew 3 and zone maxSkew 5, ScheduleAnyway) spreading by the
// selectors of their Services and controller.
package podtopologyspread

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.PodTopologySpread

// systemDefaultConstraints: upstream's defaultingType System.
var systemDefaultConstraints = []v1.TopologySpreadConstraint{
	{TopologyKey: v1.LabelHostname, WhenUnsatisfiable: v1.ScheduleAnyway, MaxSkew: 3},
	{TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.ScheduleAnyway, MaxSkew: 5},
}

// PodTopologySpread is the plugin.
type PodTopologySpread struct {
	handle             framework.Handle
	systemDefaulted    bool
	defaultConstraints []v1.TopologySpreadConstraint
	services           corelisters.ServiceLister
	replicationCtrls   corelisters.ReplicationControllerLister
	replicaSets        appslisters.ReplicaSetLister
	statefulSets       appslisters.StatefulSetLister
}

var (
	_ framework.PreFilterPlugin   = &PodTopologySpread{}
	_ framework.FilterPlugin      = &PodTopologySpread{}
	_ framework.PreScorePlugin    = &PodTopologySpread{}
	_ framework.ScorePlugin       = &PodTopologySpread{}
	_ framework.EnqueueExtensions = &PodTopologySpread{}
)

// Name is the plugin's name.
func (pl *PodTopologySpread) Name() string { return Name }

// New builds the plugin from *PodTopologySpreadArgs (nil: defaultingType
// System).
func New(_ context.Context, args runtime.Object, h framework.Handle) (framework.Plugin, error) {
	if h.SnapshotSharedLister() == nil {
		return nil, fmt.Errorf("SnapshotSharedlister is nil")
	}
	a := &configv1.PodTopologySpreadArgs{}
	switch t := args.(type) {
	case nil:
	case *configv1.PodTopologySpreadArgs:
		a = t
	default:
		return nil, fmt.Errorf("want args to be of type PodTopologySpreadArgs, got %T", args)
	}
	if err := validateArgs(a); err != nil {
		return nil, err
	}
	pl := &PodTopologySpread{handle: h, defaultConstraints: a.DefaultConstraints}
	if a.DefaultingType == "" || a.DefaultingType == configv1.SystemDefaulting {
		pl.defaultConstraints = systemDefaultConstraints
		pl.systemDefaulted = true
	}
	if len(pl.defaultConstraints) != 0 {
		f := h.SharedInformerFactory()
		if f == nil {
			return nil, fmt.Errorf("SharedInformerFactory is nil")
		}
		pl.services = f.Core().V1().Services().Lister()
		pl.replicationCtrls = f.Core().V1().ReplicationControllers().Lister()
		pl.replicaSets = f.Apps().V1().ReplicaSets().Lister()
		pl.statefulSets = f.Apps().V1().StatefulSets().Lister()
	}
	return pl, nil
}

// validateArgs: upstream's rules for the args, with its messages' gist.
func validateArgs(a *configv1.PodTopologySpreadArgs) error {
	switch a.DefaultingType {
	case "", configv1.SystemDefaulting:
		if len(a.DefaultConstraints) != 0 {
			return fmt.Errorf("defaultConstraints: Invalid value: when .defaultingType=\"System\", .defaultConstraints must be empty")
		}
	case configv1.ListDefaulting:
	default:
		return fmt.Errorf("defaultingType: Unsupported value: %q: supported values: \"System\", \"List\"", a.DefaultingType)
	}
	seen := map[[2]string]bool{}
	for i, c := range a.DefaultConstraints {
		switch {
		case c.MaxSkew <= 0:
			return fmt.Errorf("defaultConstraints[%d].maxSkew: Invalid value: %d: must be greater than zero", i, c.MaxSkew)
		case c.TopologyKey == "":
			return fmt.Errorf("defaultConstraints[%d].topologyKey: Required value: can not be empty", i)
		case c.WhenUnsatisfiable != v1.DoNotSchedule && c.WhenUnsatisfiable != v1.ScheduleAnyway:
			return fmt.Errorf("defaultConstraints[%d].whenUnsatisfiable: Unsupported value: %q", i, c.WhenUnsatisfiable)
		case c.LabelSelector != nil:
			return fmt.Errorf("defaultConstraints[%d].labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod", i)
		}
		k := [2]string{c.TopologyKey, string(c.WhenUnsatisfiable)}
		if seen[k] {
			return fmt.Errorf("defaultConstraints[%d]: Duplicate value: %q", i, c.TopologyKey)
		}
		seen[k] = true
	}
	return nil
}

// EventsToRegister: assigned pods appearing, relabelled or going away,
// the pod's own labels or tolerations changing (the queue reports a
// pending pod's own updates as UnscheduledPod events, upstream's
// TargetPod), and nodes appearing, going away or changing labels or
// taints.
func (pl *PodTopologySpread) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Add | framework.UpdatePodLabel | framework.Delete}, QueueingHintFn: pl.isSchedulableAfterAssignedPodChange},
		{Event: framework.ClusterEvent{Resource: framework.UnscheduledPod, ActionType: framework.UpdatePodToleration | framework.UpdatePodLabel}, QueueingHintFn: pl.isSchedulableAfterTargetPodChange},
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.Delete | framework.UpdateNodeLabel | framework.UpdateNodeTaint}, QueueingHintFn: pl.isSchedulableAfterNodeChange},
	}, nil
}

func asPair[T any](oldObj, newObj any) (T, T, error) {
	var o, n T
	var ok bool
	if oldObj != nil {
		if o, ok = oldObj.(T); !ok {
			return o, n, fmt.Errorf("unexpected object type %T, want %T", oldObj, o)
		}
	}
	if newObj != nil {
		if n, ok = newObj.(T); !ok {
			return o, n, fmt.Errorf("unexpected object type %T, want %T", newObj, n)
		}
	}
	return o, n, nil
}

func involvedInTopologySpreading(p, withSpreading *v1.Pod) bool {
	if p.Spec.NodeName == "" && p.Status.NominatedNodeName == "" {
		return false
	}
	return p.Namespace == withSpreading.Namespace
}

func (pl *PodTopologySpread) isSchedulableAfterAssignedPodChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	orig, mod, err := asPair[*v1.Pod](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if mod != nil && !involvedInTopologySpreading(mod, pod) || orig != nil && !involvedInTopologySpreading(orig, pod) {
		return framework.QueueSkip, nil
	}
	cons, err := pl.getConstraints(pod, v1.DoNotSchedule)
	if err != nil {
		return framework.Queue, err
	}
	switch {
	case mod != nil && orig != nil:
		return labelChangeHint(orig, mod, cons), nil
	case mod != nil:
		if podLabelsMatchSpreadConstraints(cons, mod.Labels) {
			logger.V(5).Info("A scheduled pod was created and it matches the pod's topology spread constraints", "pod", klog.KObj(pod), "createdPod", klog.KObj(mod))
			return framework.Queue, nil
		}
		return framework.QueueSkip, nil
	}
	if podLabelsMatchSpreadConstraints(cons, orig.Labels) {
		return framework.Queue, nil
	}
	return framework.QueueSkip, nil
}

// isSchedulableAfterTargetPodChange: the pod's new tolerations matter to
// constraints honouring taints; its new labels to constraints whose
// selector they now match or no longer match.
func (pl *PodTopologySpread) isSchedulableAfterTargetPodChange(_ klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	orig, mod, err := asPair[*v1.Pod](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if orig == nil || mod == nil {
		return framework.Queue, nil
	}
	cons, err := pl.getConstraints(pod, v1.DoNotSchedule)
	if err != nil {
		return framework.Queue, err
	}
	if !equality.Semantic.DeepEqual(mod.Spec.Tolerations, orig.Spec.Tolerations) {
		for _, c := range cons {
			if c.nodeTaintsPolicy == v1.NodeInclusionPolicyHonor {
				return framework.Queue, nil
			}
		}
	}
	return labelChangeHint(orig, mod, cons), nil
}

// labelChangeHint: a relabelled pod matters if some constraint's selector
// now matches it differently.
func labelChangeHint(orig, mod *v1.Pod, cons []constraint) framework.QueueingHint {
	if equality.Semantic.DeepEqual(mod.Labels, orig.Labels) {
		return framework.QueueSkip
	}
	for _, c := range cons {
		if c.selector.Matches(labels.Set(orig.Labels)) != c.selector.Matches(labels.Set(mod.Labels)) {
			return framework.Queue
		}
	}
	return framework.QueueSkip
}

func (pl *PodTopologySpread) isSchedulableAfterNodeChange(_ klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	orig, mod, err := asPair[*v1.Node](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	cons, err := pl.getConstraints(pod, v1.DoNotSchedule)
	if err != nil {
		return framework.Queue, err
	}
	var origMatch, modMatch bool
	if orig != nil {
		origMatch = nodeLabelsMatchSpreadConstraints(orig.Labels, cons)
	}
	if mod != nil {
		modMatch = nodeLabelsMatchSpreadConstraints(mod.Labels, cons)
	}
	switch {
	case orig != nil && mod != nil:
		if origMatch != modMatch {
			return framework.Queue, nil
		}
		if modMatch && (topologyLabelsChanged(orig.Labels, mod.Labels, cons) || !equality.Semantic.DeepEqual(orig.Spec.Taints, mod.Spec.Taints)) {
			return framework.Queue, nil
		}
		return framework.QueueSkip, nil
	case mod != nil:
		if modMatch {
			return framework.Queue, nil
		}
		return framework.QueueSkip, nil
	}
	if origMatch {
		return framework.Queue, nil
	}
	return framework.QueueSkip, nil
}

func topologyLabelsChanged(o, m map[string]string, cons []constraint) bool {
	for _, c := range cons {
		if o[c.topologyKey] != m[c.topologyKey] {
			return true
		}
	}
	return false
}
