package noderesources

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

const (
	// BalancedAllocationName is NodeResourcesBalancedAllocation's name.
	BalancedAllocationName = names.NodeResourcesBalancedAllocation

	balancedPreScoreStateKey framework.StateKey = "PreScore" + BalancedAllocationName
)

// BalancedAllocation is NodeResourcesBalancedAllocation.
type BalancedAllocation struct {
	scorer *resourceAllocationScorer
}

var (
	_ framework.PreScorePlugin = &BalancedAllocation{}
	_ framework.ScorePlugin    = &BalancedAllocation{}
)

// NewBalancedAllocation builds the plugin from
// *NodeResourcesBalancedAllocationArgs (nil: cpu and memory).
func NewBalancedAllocation(_ context.Context, obj runtime.Object, _ framework.Handle) (framework.Plugin, error) {
	args, err := balancedArgs(obj)
	if err != nil {
		return nil, err
	}
	return &BalancedAllocation{scorer: &resourceAllocationScorer{
		name:         BalancedAllocationName,
		useRequested: true,
		resources:    args.Resources,
		scorer:       balancedResourceScorer,
	}}, nil
}

// Name is the plugin's name.
func (ba *BalancedAllocation) Name() string { return BalancedAllocationName }

// PreScore computes the pod's real requests; a pod requesting none of the
// resources cannot change any node's balance, so Score is skipped.
func (ba *BalancedAllocation) PreScore(_ context.Context, state *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) *framework.Status {
	reqs := ba.scorer.podRequests(framework.NewPodInfo(pod))
	if isBestEffort(reqs) {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(balancedPreScoreStateKey, &preScoreState{podRequests: reqs})
	return nil
}

// Score is the balance score of the node with the pod.
func (ba *BalancedAllocation) Score(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	var reqs []int64
	if c, err := state.Read(balancedPreScoreStateKey); err == nil {
		if s, ok := c.(*preScoreState); ok {
			reqs = s.podRequests
		}
	}
	if reqs == nil {
		reqs = ba.scorer.podRequests(framework.NewPodInfo(pod))
		if isBestEffort(reqs) {
			return 0, nil
		}
	}
	return ba.scorer.score(ctx, pod, nodeInfo, reqs)
}

// ScoreExtensions: none.
func (ba *BalancedAllocation) ScoreExtensions() framework.ScoreExtensions { return nil }
