package framework

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// EventResource is the kind of object a cluster event is about.
type EventResource string

// The resources the scheduler watches.
const (
	Pod                   EventResource = "Pod"
	AssignedPod           EventResource = "AssignedPod"
	UnscheduledPod        EventResource = "UnscheduledPod"
	Node                  EventResource = "Node"
	PersistentVolume      EventResource = "PersistentVolume"
	PersistentVolumeClaim EventResource = "PersistentVolumeClaim"
	StorageClass          EventResource = "storage.k8s.io/StorageClass"
	CSINode               EventResource = "storage.k8s.io/CSINode"
	WildCard              EventResource = "*"
)

// ActionType is a bit set of what happened.
type ActionType int64

// Actions, as upstream's: updates split by what changed, so a pod that
// failed on taints is not woken by a label change.
const (
	Add ActionType = 1 << iota
	Delete
	UpdateNodeAllocatable
	UpdateNodeLabel
	UpdateNodeTaint
	UpdateNodeCondition
	UpdateNodeAnnotation
	UpdatePodLabel
	UpdatePodScaleDown
	UpdatePodToleration
	UpdatePodSchedulingGatesEliminated
	UpdatePodGeneratedResourceClaim
	// updatePodOther and updateNodeOther: any other change.
	updatePodOther
	updateNodeOther

	// UpdateNodeUnschedulable is spec.unschedulable's change (upstream
	// folds it into UpdateNodeTaint).
	UpdateNodeUnschedulable = UpdateNodeTaint

	// Update is any update.
	Update = UpdateNodeAllocatable | UpdateNodeLabel | UpdateNodeTaint | UpdateNodeCondition | UpdateNodeAnnotation |
		UpdatePodLabel | UpdatePodScaleDown | UpdatePodToleration | UpdatePodSchedulingGatesEliminated |
		UpdatePodGeneratedResourceClaim | updatePodOther | updateNodeOther
	// All is any action.
	All = Add | Delete | Update
)

// ClusterEvent is something that happened to a resource.
type ClusterEvent struct {
	Resource   EventResource
	ActionType ActionType
	// CustomLabel names the event in metrics and logs (optional).
	CustomLabel string
}

// Match: the registered event e covers the event that happened.
func (e ClusterEvent) Match(happened ClusterEvent) bool {
	if e.ActionType&happened.ActionType == 0 {
		return false
	}
	if e.Resource == WildCard || e.Resource == happened.Resource {
		return true
	}
	// Pod covers both assigned and unscheduled pods' events.
	return e.Resource == Pod && (happened.Resource == AssignedPod || happened.Resource == UnscheduledPod)
}

// Label names the event.
func (e ClusterEvent) Label() string {
	if e.CustomLabel != "" {
		return e.CustomLabel
	}
	return string(e.Resource) + "/" + e.ActionType.String()
}

func (a ActionType) String() string {
	switch a {
	case Add:
		return "Add"
	case Delete:
		return "Delete"
	case UpdateNodeAllocatable:
		return "UpdateNodeAllocatable"
	case UpdateNodeLabel:
		return "UpdateNodeLabel"
	case UpdateNodeTaint:
		return "UpdateNodeTaint"
	case UpdateNodeCondition:
		return "UpdateNodeCondition"
	case UpdateNodeAnnotation:
		return "UpdateNodeAnnotation"
	case UpdatePodLabel:
		return "UpdatePodLabel"
	case UpdatePodScaleDown:
		return "UpdatePodScaleDown"
	case UpdatePodToleration:
		return "UpdatePodToleration"
	case UpdatePodSchedulingGatesEliminated:
		return "UpdatePodSchedulingGatesEliminated"
	case UpdatePodGeneratedResourceClaim:
		return "UpdatePodGeneratedResourceClaim"
	case All:
		return "All"
	case Update:
		return "Update"
	}
	return "Unknown"
}

// QueueingHint: whether an event may make a rejected pod schedulable.
type QueueingHint int

const (
	// QueueSkip: the event cannot help this pod.
	QueueSkip QueueingHint = iota
	// Queue: the event may help; move the pod to activeQ (or backoffQ).
	Queue
)

// QueueingHintFn decides for one pod and one event (oldObj nil on Add,
// newObj nil on Delete); an error counts as Queue.
type QueueingHintFn func(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (QueueingHint, error)

// ClusterEventWithHint is a registered event and its hint (nil: always
// Queue).
type ClusterEventWithHint struct {
	Event          ClusterEvent
	QueueingHintFn QueueingHintFn
}
