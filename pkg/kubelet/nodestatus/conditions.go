// Package nodestatus computes a node's status as the kubelet reports it:
// the conditions with upstream's reasons and messages, and whether a status
// differs from the last one enough to be written (heartbeats alone do not).
package nodestatus

import (
	"errors"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pressure is what the node is short of.
type Pressure struct {
	Memory, Disk, PID bool
}

// condition is one condition's two states, in upstream kubelet's words.
type condition struct {
	typ                   corev1.NodeConditionType
	okReason, okMessage   string
	badReason, badMessage string
}

var pressureConditions = []condition{
	{corev1.NodeMemoryPressure, "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
		"KubeletHasInsufficientMemory", "kubelet has insufficient memory available"},
	{corev1.NodeDiskPressure, "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
		"KubeletHasDiskPressure", "kubelet has disk pressure"},
	{corev1.NodePIDPressure, "KubeletHasSufficientPID", "kubelet has sufficient PID available",
		"KubeletHasInsufficientPID", "kubelet has insufficient PID available"},
}

// Conditions are the node's conditions at now, in upstream's order
// (MemoryPressure, DiskPressure, PIDPressure, Ready): each keeps its
// lastTransitionTime from previous unless its status changed, and gets now
// as its heartbeat. notReady are the reasons the node is not ready (the
// runtime's or its network's); none: Ready.
func Conditions(previous []corev1.NodeCondition, now metav1.Time, p Pressure, notReady []error) []corev1.NodeCondition {
	pressed := []bool{p.Memory, p.Disk, p.PID}
	var out []corev1.NodeCondition
	for i, c := range pressureConditions {
		cond := corev1.NodeCondition{Type: c.typ, Status: corev1.ConditionFalse, Reason: c.okReason, Message: c.okMessage}
		if pressed[i] {
			cond = corev1.NodeCondition{Type: c.typ, Status: corev1.ConditionTrue, Reason: c.badReason, Message: c.badMessage}
		}
		out = append(out, cond)
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if len(notReady) > 0 {
		ready = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: errors.Join(notReady...).Error()}
	}
	out = append(out, ready)
	for i := range out {
		out[i].LastHeartbeatTime = now
		out[i].LastTransitionTime = now
		for _, old := range previous {
			if old.Type == out[i].Type && old.Status == out[i].Status && !old.LastTransitionTime.IsZero() {
				out[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	return out
}

// Changed reports whether status differs from previous in more than the
// conditions' heartbeats: only then is it written before the report
// interval has passed, as upstream's kubelet decides.
func Changed(previous, status *corev1.NodeStatus) bool {
	if previous == nil || status == nil {
		return previous != status
	}
	a, b := previous.DeepCopy(), status.DeepCopy()
	for _, s := range []*corev1.NodeStatus{a, b} {
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		sort.SliceStable(s.Conditions, func(i, j int) bool { return s.Conditions[i].Type < s.Conditions[j].Type })
	}
	return !apiequality.Semantic.DeepEqual(a, b)
}
