package noderesources

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// resourceAllocationScorer scores a node by how much of its allocatable
// the pod would use, for each configured resource, with a strategy.
type resourceAllocationScorer struct {
	name string
	// useRequested: count the real requests; otherwise cpu and memory
	// count containers without requests at the non-zero defaults, as
	// upstream does, so empty pods do not all pile onto one node.
	useRequested bool
	resources    []configv1.ResourceSpec
	// scorer maps (requested with the pod, requested without it,
	// allocatable) per resource to a score in [0, 100].
	scorer func(requested, allocated, allocatable []int64) int64
}

// podRequests is the pod's request of each configured resource.
func (r *resourceAllocationScorer) podRequests(pi *framework.PodInfo) []int64 {
	out := make([]int64, len(r.resources))
	for i, res := range r.resources {
		name := v1.ResourceName(res.Name)
		switch {
		case !r.useRequested && name == v1.ResourceCPU:
			out[i] = pi.NonZeroRequests.MilliCPU
		case !r.useRequested && name == v1.ResourceMemory:
			out[i] = pi.NonZeroRequests.Memory
		case name == v1.ResourcePods:
			// A pod never requests "pods".
		default:
			out[i] = pi.Requests.Get(name)
		}
	}
	return out
}

// isBestEffort: the pod requests none of the resources.
func isBestEffort(reqs []int64) bool {
	for _, r := range reqs {
		if r != 0 {
			return false
		}
	}
	return true
}

// score runs the strategy on one node.
func (r *resourceAllocationScorer) score(ctx context.Context, pod *v1.Pod, nodeInfo *framework.NodeInfo, podRequests []int64) (int64, *framework.Status) {
	if nodeInfo.Node() == nil {
		return 0, framework.NewStatus(framework.Error, "node not found")
	}
	if len(r.resources) == 0 {
		return 0, framework.NewStatus(framework.Error, "resources not found")
	}
	requested := make([]int64, len(r.resources))
	allocated := make([]int64, len(r.resources))
	allocatable := make([]int64, len(r.resources))
	for i := range r.resources {
		name := v1.ResourceName(r.resources[i].Name)
		// An extended resource the pod does not ask for does not count,
		// or nodes with spare GPUs would score down for CPU-only pods.
		if podRequests[i] == 0 && framework.IsScalarResourceName(name) {
			continue
		}
		alloc, used := r.nodeAmounts(nodeInfo, name)
		if alloc == 0 {
			continue
		}
		allocatable[i] = alloc
		allocated[i] = used
		requested[i] = used + podRequests[i]
	}
	s := r.scorer(requested, allocated, allocatable)
	if v := klog.FromContext(ctx).V(10); v.Enabled() {
		v.Info("Listed internal info for allocatable resources, requested resources and score", "pod", klog.KObj(pod),
			"node", klog.KObj(nodeInfo.Node()), "resourceAllocationScorer", r.name,
			"allocatableResource", allocatable, "requestedResource", requested, "resourceScore", s)
	}
	return s, nil
}

// nodeAmounts: the node's allocatable and what its pods take of one
// resource; (0, 0) for a resource the node does not have.
func (r *resourceAllocationScorer) nodeAmounts(ni *framework.NodeInfo, name v1.ResourceName) (int64, int64) {
	req := ni.NonZeroRequested
	if r.useRequested {
		req = ni.Requested
	}
	switch name {
	case v1.ResourceCPU:
		return ni.Allocatable.MilliCPU, req.MilliCPU
	case v1.ResourceMemory:
		return ni.Allocatable.Memory, req.Memory
	case v1.ResourceEphemeralStorage:
		return ni.Allocatable.EphemeralStorage, ni.Requested.EphemeralStorage
	}
	if alloc, ok := ni.Allocatable.ScalarResources[name]; ok {
		return alloc, ni.Requested.ScalarResources[name]
	}
	return 0, 0
}
