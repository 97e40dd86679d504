package framework

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	resourcehelper "k8s.io/component-helpers/resource"
)

// PodUpdateEvents are the events a pod's update is, as upstream's
// PodSchedulingPropertiesChange: one per property that changed, or one
// update matched only by plugins registering every Pod update. The
// resource is AssignedPod for a bound pod, UnscheduledPod otherwise.
func PodUpdateEvents(oldPod, newPod *v1.Pod) []ClusterEvent {
	r := UnscheduledPod
	if newPod.Spec.NodeName != "" {
		r = AssignedPod
	}
	var events []ClusterEvent
	add := func(a ActionType) { events = append(events, ClusterEvent{Resource: r, ActionType: a}) }
	if !equality.Semantic.DeepEqual(oldPod.Labels, newPod.Labels) {
		add(UpdatePodLabel)
	}
	if podScaledDown(oldPod, newPod) {
		add(UpdatePodScaleDown)
	}
	if len(newPod.Spec.SchedulingGates) == 0 && len(oldPod.Spec.SchedulingGates) != 0 {
		add(UpdatePodSchedulingGatesEliminated)
	}
	// Tolerations can only be added, so their count tells.
	if len(newPod.Spec.Tolerations) != len(oldPod.Spec.Tolerations) {
		add(UpdatePodToleration)
	}
	if !equality.Semantic.DeepEqual(oldPod.Status.ResourceClaimStatuses, newPod.Status.ResourceClaimStatuses) {
		add(UpdatePodGeneratedResourceClaim)
	}
	if len(events) == 0 {
		add(updatePodOther)
	}
	return events
}

func podScaledDown(oldPod, newPod *v1.Pod) bool {
	oldReq := resourcehelper.PodRequests(oldPod, resourcehelper.PodResourcesOptions{})
	newReq := resourcehelper.PodRequests(newPod, resourcehelper.PodResourcesOptions{})
	for name, o := range oldReq {
		n, ok := newReq[name]
		if !ok || o.MilliValue() > n.MilliValue() {
			return true
		}
	}
	return false
}

// NodeUpdateEvents are the events a node's update is, as upstream's
// NodeSchedulingPropertiesChange; none if nothing the scheduler reads
// changed.
func NodeUpdateEvents(oldNode, newNode *v1.Node) []ClusterEvent {
	var events []ClusterEvent
	add := func(a ActionType) { events = append(events, ClusterEvent{Resource: Node, ActionType: a}) }
	// Only becoming schedulable can help a pod.
	if oldNode.Spec.Unschedulable != newNode.Spec.Unschedulable && !newNode.Spec.Unschedulable {
		add(UpdateNodeUnschedulable)
	}
	if !equality.Semantic.DeepEqual(oldNode.Status.Allocatable, newNode.Status.Allocatable) {
		add(UpdateNodeAllocatable)
	}
	if !equality.Semantic.DeepEqual(oldNode.Labels, newNode.Labels) {
		add(UpdateNodeLabel)
	}
	if !equality.Semantic.DeepEqual(oldNode.Spec.Taints, newNode.Spec.Taints) {
		add(UpdateNodeTaint)
	}
	if !equality.Semantic.DeepEqual(conditionStatuses(oldNode), conditionStatuses(newNode)) {
		add(UpdateNodeCondition)
	}
	if !equality.Semantic.DeepEqual(oldNode.Annotations, newNode.Annotations) {
		add(UpdateNodeAnnotation)
	}
	return events
}

func conditionStatuses(n *v1.Node) map[v1.NodeConditionType]v1.ConditionStatus {
	m := make(map[v1.NodeConditionType]v1.ConditionStatus, len(n.Status.Conditions))
	for _, c := range n.Status.Conditions {
		m[c.Type] = c.Status
	}
	return m
}

// Events the queue raises itself.
var (
	// EventUnschedulableTimeout: a pod stayed unschedulable for
	// podMaxInUnschedulablePodsDuration.
	EventUnschedulableTimeout = ClusterEvent{Resource: WildCard, ActionType: All, CustomLabel: "UnschedulableTimeout"}
	// EventAssignedPodDelete and the others below are the cluster events
	// the scheduler's informers raise.
	EventAssignedPodAdd    = ClusterEvent{Resource: AssignedPod, ActionType: Add}
	EventAssignedPodDelete = ClusterEvent{Resource: AssignedPod, ActionType: Delete}
	EventNodeAdd           = ClusterEvent{Resource: Node, ActionType: Add}
	EventNodeDelete        = ClusterEvent{Resource: Node, ActionType: Delete}
)
