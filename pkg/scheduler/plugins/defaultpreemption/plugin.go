// Package defaultpreemption is the DefaultPreemption PostFilter plugin,
// after upstream's (synchronous preemption, single pods): when no node
// fits a pod, it looks for a node where removing lower-priority pods
// makes room, picks the one whose victims matter least, and prepares it —
// the victims get the DisruptionTarget condition and are deleted,
// lower-priority pods nominated there lose the nomination, and the
// preemptor is nominated to the node.
package defaultpreemption

import (
	"context"
	"fmt"
	"math/rand"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.DefaultPreemption

// Upstream's defaults for DefaultPreemptionArgs.
const (
	DefaultMinCandidateNodesPercentage int32 = 10
	DefaultMinCandidateNodesAbsolute   int32 = 100
)

// DefaultPreemption is the plugin.
type DefaultPreemption struct {
	handle                      framework.Handle
	minCandidateNodesPercentage int32
	minCandidateNodesAbsolute   int32
	podLister                   corelisters.PodLister
	pdbLister                   policylisters.PodDisruptionBudgetLister
	// offset picks where the dry run starts among the candidate nodes,
	// so preemption does not always hit the same nodes (tests fix it).
	offset func(n int32) int32
}

var _ framework.PostFilterPlugin = &DefaultPreemption{}

// Name is the plugin's name.
func (pl *DefaultPreemption) Name() string { return Name }

// New builds the plugin from *DefaultPreemptionArgs (nil: defaults).
func New(_ context.Context, args runtime.Object, h framework.Handle) (framework.Plugin, error) {
	pl := &DefaultPreemption{
		handle:                      h,
		minCandidateNodesPercentage: DefaultMinCandidateNodesPercentage,
		minCandidateNodesAbsolute:   DefaultMinCandidateNodesAbsolute,
		offset:                      rand.Int31n,
	}
	switch a := args.(type) {
	case nil:
	case *configv1.DefaultPreemptionArgs:
		if a.MinCandidateNodesPercentage != nil {
			pl.minCandidateNodesPercentage = *a.MinCandidateNodesPercentage
		}
		if a.MinCandidateNodesAbsolute != nil {
			pl.minCandidateNodesAbsolute = *a.MinCandidateNodesAbsolute
		}
	default:
		return nil, fmt.Errorf("got args of type %T, want *DefaultPreemptionArgs", args)
	}
	// Upstream's validation.
	if p := pl.minCandidateNodesPercentage; p < 0 || p > 100 {
		return nil, fmt.Errorf("minCandidateNodesPercentage: Invalid value: %d: not in valid range [0, 100]", p)
	}
	if a := pl.minCandidateNodesAbsolute; a < 0 {
		return nil, fmt.Errorf("minCandidateNodesAbsolute: Invalid value: %d: not in valid range [0, inf)", a)
	}
	if pl.minCandidateNodesPercentage == 0 && pl.minCandidateNodesAbsolute == 0 {
		return nil, fmt.Errorf("minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time as minCandidateNodesAbsolute")
	}
	f := h.SharedInformerFactory()
	if f == nil {
		return nil, fmt.Errorf("SharedInformerFactory is nil")
	}
	pl.podLister = f.Core().V1().Pods().Lister()
	pl.pdbLister = f.Policy().V1().PodDisruptionBudgets().Lister()
	return pl, nil
}

// PostFilter tries to make room for pod by preemption. Its status's
// message starts "preemption: ", as upstream's, so the core's
// FailedScheduling message ends with it.
func (pl *DefaultPreemption) PostFilter(ctx context.Context, state *framework.CycleState, pod *v1.Pod, filtered *framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	res, st := pl.preempt(ctx, state, pod, filtered)
	if msg := st.Message(); msg != "" {
		return res, framework.NewStatus(st.Code(), "preemption: "+msg)
	}
	return res, st
}

func (pl *DefaultPreemption) preempt(ctx context.Context, state *framework.CycleState, pod *v1.Pod, filtered *framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	logger := klog.FromContext(ctx)
	// The informer's copy may know of a nomination made since the pod
	// was popped.
	if p, err := pl.podLister.Pods(pod.Namespace).Get(pod.Name); err == nil && p.UID == pod.UID {
		pod = p
	} else {
		logger.V(5).Info("Preemptor not in the informer's cache; using the queued copy", "pod", klog.KObj(pod), "err", err)
	}
	if ok, msg := pl.podEligibleToPreemptOthers(pod, filtered.Get(pod.Status.NominatedNodeName)); !ok {
		logger.V(5).Info("Pod is not eligible for preemption", "pod", klog.KObj(pod), "reason", msg)
		return nil, framework.NewStatus(framework.Unschedulable, msg)
	}
	all, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	candidates, statuses, err := pl.findCandidates(ctx, state, all, pod, filtered)
	if err != nil && len(candidates) == 0 {
		return nil, framework.AsStatus(err)
	}
	if len(candidates) == 0 {
		logger.V(2).Info("No preemption candidate is found; preemption is not helpful for scheduling", "pod", klog.KObj(pod))
		if pod.Status.NominatedNodeName != "" {
			// Upstream overrides the nomination with "" here.
			if err := pl.setNominatedNodeName(ctx, pod, ""); err != nil {
				logger.Error(err, "Clearing the preemptor's nominatedNodeName", "pod", klog.KObj(pod))
			}
		}
		return &framework.PostFilterResult{}, framework.NewStatus(framework.Unschedulable, fitErrorMessage(len(all), statuses, notHelpful))
	}
	best := pickOneNodeForPreemption(candidates)
	logger.V(2).Info("The target node for the preemption is determined", "node", best.node, "pod", klog.KObj(pod))
	if st := pl.prepareCandidate(ctx, best, pod); !st.IsSuccess() {
		return nil, st
	}
	return &framework.PostFilterResult{NominatedNodeName: best.node},
		framework.NewStatus(framework.Success, fmt.Sprintf("found a potential placement for pod on node %v, preempting %d victims", best.node, len(best.victims)))
}
