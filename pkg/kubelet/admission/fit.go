// Package admission is the node's own check of a pod bound to it, as
// upstream kubelet's lifecycle predicate admit handler: the node must
// hold the pod's requests next to the pods it already admitted.
package admission

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiff-dev/skiff/pkg/apis/core/helper"
)

// Upstream's rejection reasons: OutOf<resource>.
const (
	ReasonOutOfCPU              = "OutOfcpu"
	ReasonOutOfMemory           = "OutOfmemory"
	ReasonOutOfEphemeralStorage = "OutOfephemeral-storage"
	ReasonOutOfPods             = "OutOfpods"
	// MessagePrefix starts the status message of a rejected pod.
	MessagePrefix = "Pod was rejected: "
)

// Rejection is why a pod does not fit.
type Rejection struct {
	Resource                  corev1.ResourceName
	Requested, Used, Capacity int64
}

// Reason is the pod status reason, e.g. OutOfcpu.
func (r *Rejection) Reason() string { return "OutOf" + string(r.Resource) }

// Error is upstream's InsufficientResourceError message.
func (r *Rejection) Error() string {
	return fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
		r.Resource, r.Requested, r.Used, r.Capacity)
}

// Requests are a pod's effective requests (init containers, sidecars,
// overhead and pod-level resources counted as upstream).
func Requests(pod *corev1.Pod) corev1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
}

// Fit checks a pod of requests against the node's allocatable, with
// admitted pods already using used: nil when it fits, else the first
// resource short, in upstream's order (pods, cpu, memory,
// ephemeral-storage, then extended resources by name; one the node does
// not have is not checked).
func Fit(requests, used corev1.ResourceList, admitted int, allocatable corev1.ResourceList) *Rejection {
	if pods := allocatable.Pods().Value(); int64(admitted)+1 > pods {
		return &Rejection{Resource: corev1.ResourcePods, Requested: 1, Used: int64(admitted), Capacity: pods}
	}
	value := func(l corev1.ResourceList, name corev1.ResourceName) int64 {
		q, ok := l[name]
		if !ok {
			return 0
		}
		if name == corev1.ResourceCPU {
			return q.MilliValue()
		}
		return q.Value()
	}
	check := func(name corev1.ResourceName) *Rejection {
		req := value(requests, name)
		if req <= 0 {
			return nil
		}
		used, capacity := value(used, name), value(allocatable, name)
		if req > capacity-used {
			return &Rejection{Resource: name, Requested: req, Used: used, Capacity: capacity}
		}
		return nil
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if r := check(name); r != nil {
			return r
		}
	}
	var extended []string
	for name := range requests {
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourcePods:
		default:
			extended = append(extended, string(name))
		}
	}
	sort.Strings(extended)
	for _, name := range extended {
		if _, known := allocatable[corev1.ResourceName(name)]; !known && helper.IsExtendedResourceName(corev1.ResourceName(name)) {
			// As upstream's removeMissingExtendedResources: an extended
			// resource the node does not have is the cluster's, not the
			// node's to check.
			continue
		}
		if r := check(corev1.ResourceName(name)); r != nil {
			return r
		}
	}
	return nil
}

// Allocatable is what a pod is admitted against: the node's own
// allocatable, and the extended resources of the Node as the API has it
// (a device plugin's, or patched in by others).
func Allocatable(own corev1.ResourceList, node *corev1.Node) corev1.ResourceList {
	out := own.DeepCopy()
	if node == nil {
		return out
	}
	for name, q := range node.Status.Allocatable {
		if _, ok := own[name]; !ok && helper.IsExtendedResourceName(name) {
			if out == nil {
				out = corev1.ResourceList{}
			}
			out[name] = q.DeepCopy()
		}
	}
	return out
}

// Add adds b to a.
func Add(a, b corev1.ResourceList) {
	for name, q := range b {
		sum := a[name]
		sum.Add(q)
		a[name] = sum
	}
}

// Sub takes b from a.
func Sub(a, b corev1.ResourceList) {
	for name, q := range b {
		diff := a[name]
		diff.Sub(q)
		a[name] = diff
	}
}
