package framework

import "testing"

func TestActionTypesAreDistinctBits(t *testing.T) {
	seen := ActionType(0)
	for _, a := range []ActionType{Add, Delete, UpdateNodeAllocatable, UpdateNodeLabel, UpdateNodeTaint, UpdateNodeCondition,
		UpdateNodeAnnotation, UpdatePodLabel, UpdatePodScaleDown, UpdatePodToleration, UpdatePodSchedulingGatesEliminated,
		UpdatePodGeneratedResourceClaim, updatePodOther, updateNodeOther} {
		if a&(a-1) != 0 || seen&a != 0 {
			t.Fatalf("%v (%d) is not a new single bit", a, a)
		}
		seen |= a
	}
	if seen != All {
		t.Fatalf("All = %b, want %b", All, seen)
	}
}

func TestClusterEventMatch(t *testing.T) {
	reg := ClusterEvent{Resource: Pod, ActionType: Delete}
	if !reg.Match(ClusterEvent{Resource: AssignedPod, ActionType: Delete}) {
		t.Error("Pod/Delete should match AssignedPod/Delete")
	}
	if reg.Match(ClusterEvent{Resource: AssignedPod, ActionType: Add}) {
		t.Error("Pod/Delete should not match AssignedPod/Add")
	}
	if !(ClusterEvent{Resource: WildCard, ActionType: All}).Match(ClusterEvent{Resource: Node, ActionType: UpdateNodeTaint}) {
		t.Error("*/All should match anything")
	}
	if (ClusterEvent{Resource: Node, ActionType: UpdateNodeLabel}).Match(ClusterEvent{Resource: Node, ActionType: UpdateNodeTaint}) {
		t.Error("label update should not match a taint update")
	}
}
