package nodestatus

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/apis/core/helper"
)

// Resources are the node's capacity and allocatable as the kubelet writes
// them over the current status, as upstream's MachineInfo setter: the
// kubelet sets the resources it reports (capacity, allocatable) and keeps
// the extended resources others put in the capacity (a device plugin's, or
// `scheduling.k8s.io/foo` patched in by a test), whose allocatable is their
// capacity; an extended resource gone from the capacity leaves the
// allocatable too. Native resources are the kubelet's own: one it does not
// report is dropped.
func Resources(current corev1.NodeStatus, capacity, allocatable corev1.ResourceList) (corev1.ResourceList, corev1.ResourceList) {
	outCapacity := capacity.DeepCopy()
	if outCapacity == nil {
		outCapacity = corev1.ResourceList{}
	}
	for name, q := range current.Capacity {
		if _, own := capacity[name]; !own && helper.IsExtendedResourceName(name) {
			outCapacity[name] = q.DeepCopy()
		}
	}
	outAllocatable := allocatable.DeepCopy()
	if len(outAllocatable) == 0 {
		outAllocatable = capacity.DeepCopy()
	}
	if outAllocatable == nil {
		outAllocatable = corev1.ResourceList{}
	}
	for name, q := range outCapacity {
		if _, own := outAllocatable[name]; !own && helper.IsExtendedResourceName(name) {
			outAllocatable[name] = q.DeepCopy()
		}
	}
	return outCapacity, outAllocatable
}
