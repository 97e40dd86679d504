package admission

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/nodeports"
)

// PortsRejection is a pod refused for a taken host port, in upstream's
// words: the scheduler's NodePorts predicate, whose rules the kubelet
// applies again at admission (reason NodePorts, message of its
// PredicateFailureError).
type PortsRejection struct{}

// Reason is the pod status reason.
func (PortsRejection) Reason() string { return nodeports.Name }

// Error is the message.
func (PortsRejection) Error() string {
	return "Predicate " + nodeports.Name + " failed: " + nodeports.ErrReason
}

// FitPorts checks the pod's host ports (of its containers and sidecars)
// against those the admitted pods hold: nil when all are free.
func FitPorts(pod *corev1.Pod, inUse framework.HostPortInfo) *PortsRejection {
	for _, p := range framework.GetHostPorts(pod) {
		if inUse.CheckConflict(p.HostIP, string(p.Protocol), p.HostPort) {
			return &PortsRejection{}
		}
	}
	return nil
}
