// Package noderesources holds the NodeResourcesFit plugin (the pod's
// requests must fit the node's free allocatable; nodes are scored by a
// configurable strategy) and NodeResourcesBalancedAllocation (nodes whose
// resource fractions stay balanced score higher), after upstream's.
package noderesources

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/apis/core/helper"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

const (
	// Name is NodeResourcesFit's name in configuration.
	Name = names.NodeResourcesFit

	preFilterStateKey framework.StateKey = "PreFilter" + Name
	preScoreStateKey  framework.StateKey = "PreScore" + Name
)

// Fit is NodeResourcesFit.
type Fit struct {
	ignoredResources      sets.Set[string]
	ignoredResourceGroups sets.Set[string]
	scorer                *resourceAllocationScorer
}

var (
	_ framework.PreFilterPlugin   = &Fit{}
	_ framework.FilterPlugin      = &Fit{}
	_ framework.PreScorePlugin    = &Fit{}
	_ framework.ScorePlugin       = &Fit{}
	_ framework.EnqueueExtensions = &Fit{}
)

// New builds NodeResourcesFit from *NodeResourcesFitArgs (nil: upstream's
// defaults, LeastAllocated on cpu and memory).
func New(_ context.Context, obj runtime.Object, _ framework.Handle) (framework.Plugin, error) {
	args, err := fitArgs(obj)
	if err != nil {
		return nil, err
	}
	s := args.ScoringStrategy
	sc := &resourceAllocationScorer{name: string(s.Type), resources: s.Resources}
	switch s.Type {
	case configv1.LeastAllocated:
		sc.scorer = weighted(s.Resources, leastRequestedScore)
	case configv1.MostAllocated:
		sc.scorer = weighted(s.Resources, mostRequestedScore)
	case configv1.RequestedToCapacityRatio:
		sc.scorer = requestedToCapacityRatioScorer(s.Resources, s.RequestedToCapacityRatio.Shape)
	}
	return &Fit{
		ignoredResources:      sets.New(args.IgnoredResources...),
		ignoredResourceGroups: sets.New(args.IgnoredResourceGroups...),
		scorer:                sc,
	}, nil
}

// NewFit is New, under upstream's name.
var NewFit = New

// Name is the plugin's name.
func (f *Fit) Name() string { return Name }

// preFilterState: the pod's requests.
type preFilterState struct{ framework.Resource }

func (s *preFilterState) Clone() framework.StateData { return s }

// PreFilter computes the pod's requests once (init containers, sidecars
// and overhead counted by component-helpers through PodInfo).
func (f *Fit) PreFilter(_ context.Context, state *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	state.Write(preFilterStateKey, &preFilterState{*framework.NewPodInfo(pod).Requests})
	return nil, nil
}

// PreFilterExtensions: none; the node's sums are read in Filter.
func (f *Fit) PreFilterExtensions() framework.PreFilterExtensions { return nil }

func readPreFilter(state *framework.CycleState) (*framework.Resource, error) {
	c, err := state.Read(preFilterStateKey)
	if err != nil {
		return nil, fmt.Errorf("error reading %q from cycleState: %w", preFilterStateKey, err)
	}
	s, ok := c.(*preFilterState)
	if !ok {
		return nil, fmt.Errorf("%+v  convert to NodeResourcesFit.preFilterState error", c)
	}
	return &s.Resource, nil
}

// Filter rejects a node short of any requested resource, with one reason
// per resource ("Insufficient cpu", "Too many pods"). It is unresolvable
// only if a request exceeds the node's whole allocatable, since no
// preemption can make room then.
func (f *Fit) Filter(_ context.Context, state *framework.CycleState, _ *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	req, err := readPreFilter(state)
	if err != nil {
		return framework.AsStatus(err)
	}
	insufficient := fitsRequest(req, nodeInfo, f.ignoredResources, f.ignoredResourceGroups)
	if len(insufficient) == 0 {
		return nil
	}
	code := framework.Unschedulable
	reasons := make([]string, 0, len(insufficient))
	for _, r := range insufficient {
		reasons = append(reasons, r.Reason)
		if r.Unresolvable {
			code = framework.UnschedulableAndUnresolvable
		}
	}
	return framework.NewStatus(code, reasons...)
}

// InsufficientResource is one resource a node lacks for a pod.
type InsufficientResource struct {
	ResourceName v1.ResourceName
	// Reason is upstream's text, e.g. "Insufficient cpu".
	Reason    string
	Requested int64
	Used      int64
	Capacity  int64
	// Unresolvable: the request exceeds the node's allocatable.
	Unresolvable bool
}

// Fits lists what the node lacks for the pod (nil: it fits).
func Fits(pod *v1.Pod, nodeInfo *framework.NodeInfo) []InsufficientResource {
	return fitsRequest(framework.NewPodInfo(pod).Requests, nodeInfo, nil, nil)
}

func fitsRequest(req *framework.Resource, ni *framework.NodeInfo, ignored, ignoredGroups sets.Set[string]) []InsufficientResource {
	var out []InsufficientResource
	alloc, used := ni.Allocatable, ni.Requested
	if len(ni.Pods)+1 > alloc.AllowedPodNumber {
		out = append(out, InsufficientResource{ResourceName: v1.ResourcePods, Reason: "Too many pods",
			Requested: 1, Used: int64(len(ni.Pods)), Capacity: int64(alloc.AllowedPodNumber)})
	}
	if req.MilliCPU == 0 && req.Memory == 0 && req.EphemeralStorage == 0 && len(req.ScalarResources) == 0 {
		return out
	}
	check := func(name v1.ResourceName, reason string, want, have, capacity int64) {
		if want > 0 && want > capacity-have {
			out = append(out, InsufficientResource{ResourceName: name, Reason: reason,
				Requested: want, Used: have, Capacity: capacity, Unresolvable: want > capacity})
		}
	}
	check(v1.ResourceCPU, "Insufficient cpu", req.MilliCPU, used.MilliCPU, alloc.MilliCPU)
	check(v1.ResourceMemory, "Insufficient memory", req.Memory, used.Memory, alloc.Memory)
	check(v1.ResourceEphemeralStorage, "Insufficient ephemeral-storage", req.EphemeralStorage, used.EphemeralStorage, alloc.EphemeralStorage)
	// Sorted, so a pod short of two extended resources always gets the
	// same message.
	scalars := make([]string, 0, len(req.ScalarResources))
	for name := range req.ScalarResources {
		scalars = append(scalars, string(name))
	}
	sort.Strings(scalars)
	for _, s := range scalars {
		name := v1.ResourceName(s)
		if helper.IsExtendedResourceName(name) {
			group := ""
			if ignoredGroups.Len() > 0 {
				group = strings.Split(s, "/")[0]
			}
			if ignored.Has(s) || ignoredGroups.Has(group) {
				continue
			}
		}
		check(name, "Insufficient "+s, req.ScalarResources[name], used.ScalarResources[name], alloc.ScalarResources[name])
	}
	return out
}

// EventsToRegister: room is made by an assigned pod going away or being
// scaled down, the pod itself being scaled down, or a node appearing or
// growing its allocatable.
func (f *Fit) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Delete}, QueueingHintFn: f.isSchedulableAfterPodDeleted},
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeAllocatable}, QueueingHintFn: f.isSchedulableAfterNodeChange},
		{Event: framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.UpdatePodScaleDown}, QueueingHintFn: f.isSchedulableAfterPodScaleDown},
		{Event: framework.ClusterEvent{Resource: framework.Pod, ActionType: framework.UpdatePodScaleDown}, QueueingHintFn: f.isSchedulableAfterOwnScaleDown},
	}, nil
}

func (f *Fit) isSchedulableAfterPodDeleted(logger klog.Logger, pod *v1.Pod, oldObj, _ any) (framework.QueueingHint, error) {
	deleted, _, err := framework.As[*v1.Pod](oldObj, nil)
	if err != nil {
		return framework.Queue, err
	}
	if deleted == nil || (deleted.Spec.NodeName == "" && deleted.Status.NominatedNodeName == "") {
		return framework.QueueSkip, nil
	}
	logger.V(5).Info("another scheduled pod was deleted, and it may make the unscheduled pod schedulable", "pod", klog.KObj(pod), "deletedPod", klog.KObj(deleted))
	return framework.Queue, nil
}

func (f *Fit) isSchedulableAfterOwnScaleDown(_ klog.Logger, pod *v1.Pod, _, newObj any) (framework.QueueingHint, error) {
	_, modified, err := framework.As[*v1.Pod](nil, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if modified == nil || modified.UID != pod.UID {
		return framework.QueueSkip, nil
	}
	return framework.Queue, nil
}

// isSchedulableAfterPodScaleDown: an assigned pod released some of a
// resource the pod asks for.
func (f *Fit) isSchedulableAfterPodScaleDown(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	original, modified, err := framework.As[*v1.Pod](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if original == nil || modified == nil || modified.Spec.NodeName == "" {
		return framework.QueueSkip, nil
	}
	// In-place resize (GA) reports what a pod really holds in status.
	opts := resourcehelper.PodResourcesOptions{UseStatusResources: true}
	before := framework.NewResource(resourcehelper.PodRequests(original, opts))
	after := framework.NewResource(resourcehelper.PodRequests(modified, opts))
	for name, q := range resourcehelper.PodRequests(pod, opts) {
		if q.IsZero() {
			continue
		}
		if before.Get(name) > after.Get(name) {
			logger.V(5).Info("another scheduled pod got scaled down, and it may make the unscheduled pod schedulable", "pod", klog.KObj(pod), "modifiedPod", klog.KObj(modified))
			return framework.Queue, nil
		}
	}
	return framework.QueueSkip, nil
}

// isSchedulableAfterNodeChange: the node (new, or grown) would fit the
// pod if empty.
func (f *Fit) isSchedulableAfterNodeChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
	original, modified, err := framework.As[*v1.Node](oldObj, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if modified == nil {
		return framework.QueueSkip, nil
	}
	empty := framework.NewNodeInfo()
	empty.SetNode(modified)
	if len(Fits(pod, empty)) > 0 {
		logger.V(5).Info("node was created or updated, but it doesn't have enough resource(s) to accommodate this pod", "pod", klog.KObj(pod), "node", klog.KObj(modified))
		return framework.QueueSkip, nil
	}
	if original == nil {
		return framework.Queue, nil
	}
	if !anyRequestedIncreased(framework.NewPodInfo(pod).Requests, framework.NewResource(original.Status.Allocatable), framework.NewResource(modified.Status.Allocatable)) {
		return framework.QueueSkip, nil
	}
	logger.V(5).Info("node was updated, and may now fit the pod's resource requests", "pod", klog.KObj(pod), "node", klog.KObj(modified))
	return framework.Queue, nil
}

// anyRequestedIncreased: the node's pod capacity, or a resource the pod
// requests, grew.
func anyRequestedIncreased(req, before, after *framework.Resource) bool {
	if after.AllowedPodNumber > before.AllowedPodNumber {
		return true
	}
	if (req.MilliCPU > 0 && after.MilliCPU > before.MilliCPU) ||
		(req.Memory > 0 && after.Memory > before.Memory) ||
		(req.EphemeralStorage > 0 && after.EphemeralStorage > before.EphemeralStorage) {
		return true
	}
	for name, q := range req.ScalarResources {
		if q > 0 && after.ScalarResources[name] > before.ScalarResources[name] {
			return true
		}
	}
	return false
}

// preScoreState: the pod's request of each scored resource.
type preScoreState struct{ podRequests []int64 }

func (s *preScoreState) Clone() framework.StateData { return s }

// PreScore computes the pod's requests for scoring once.
func (f *Fit) PreScore(_ context.Context, state *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) *framework.Status {
	state.Write(preScoreStateKey, &preScoreState{podRequests: f.scorer.podRequests(framework.NewPodInfo(pod))})
	return nil
}

// Score runs the scoring strategy; without PreScore's state (a Score-only
// configuration) it computes the requests itself, as upstream.
func (f *Fit) Score(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	var reqs []int64
	if c, err := state.Read(preScoreStateKey); err == nil {
		if s, ok := c.(*preScoreState); ok {
			reqs = s.podRequests
		}
	}
	if reqs == nil {
		reqs = f.scorer.podRequests(framework.NewPodInfo(pod))
	}
	return f.scorer.score(ctx, pod, nodeInfo, reqs)
}

// ScoreExtensions: none, the strategies already give 0-100.
func (f *Fit) ScoreExtensions() framework.ScoreExtensions { return nil }
