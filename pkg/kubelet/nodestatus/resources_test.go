package nodestatus

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestResourcesKeepOthersExtendedResources(t *testing.T) {
	q := resource.MustParse
	capacity := corev1.ResourceList{corev1.ResourceCPU: q("4"), corev1.ResourceMemory: q("8Gi"), corev1.ResourcePods: q("110")}
	allocatable := corev1.ResourceList{corev1.ResourceCPU: q("4"), corev1.ResourceMemory: q("7Gi"), corev1.ResourcePods: q("110")}
	current := corev1.NodeStatus{
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU: q("2"), "scheduling.k8s.io/foo": q("5"), "example.com/fakecpu": q("1k"),
			// A native resource the kubelet no longer reports goes.
			"hugepages-2Mi": q("1Gi"),
		},
		Allocatable: corev1.ResourceList{
			"scheduling.k8s.io/foo": q("5"),
			// Gone from the capacity: gone from allocatable.
			"example.com/gone": q("1"),
		},
	}
	gotCapacity, gotAllocatable := Resources(current, capacity, allocatable)
	wantCapacity := corev1.ResourceList{corev1.ResourceCPU: q("4"), corev1.ResourceMemory: q("8Gi"), corev1.ResourcePods: q("110"),
		"scheduling.k8s.io/foo": q("5"), "example.com/fakecpu": q("1k")}
	wantAllocatable := corev1.ResourceList{corev1.ResourceCPU: q("4"), corev1.ResourceMemory: q("7Gi"), corev1.ResourcePods: q("110"),
		"scheduling.k8s.io/foo": q("5"), "example.com/fakecpu": q("1k")}
	equal := func(a, b corev1.ResourceList) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || v.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	if !equal(gotCapacity, wantCapacity) {
		t.Errorf("capacity %v, want %v", gotCapacity, wantCapacity)
	}
	if !equal(gotAllocatable, wantAllocatable) {
		t.Errorf("allocatable %v, want %v", gotAllocatable, wantAllocatable)
	}
	// The kubelet's own lists are not written through.
	if _, ok := capacity["scheduling.k8s.io/foo"]; ok {
		t.Error("Resources changed the kubelet's capacity")
	}
	// No allocatable configured: the capacity.
	_, alloc := Resources(corev1.NodeStatus{}, capacity, nil)
	if !equal(alloc, capacity) {
		t.Errorf("allocatable without one configured %v, want %v", alloc, capacity)
	}
}
