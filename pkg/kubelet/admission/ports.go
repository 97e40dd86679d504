package admission

import corev1 "k8s.io/api/core/v1"

// Upstream's rejection of a pod whose host port is taken: the NodePorts
// predicate's name and reason.
const (
	ReasonNodePorts    = "NodePorts"
	nodePortsErrReason = "node(s) didn't have free ports for the requested pod ports"
)

// HostPort is one host port a pod holds.
type HostPort struct {
	IP       string
	Protocol corev1.Protocol
	Port     int32
}

// anyIP is what an unset hostIP binds.
const anyIP = "0.0.0.0"

// HostPorts are the pod's host ports (of its containers and sidecars, as
// upstream counts them), unset hostIP as 0.0.0.0 and unset protocol as
// TCP.
func HostPorts(pod *corev1.Pod) []HostPort {
	var out []HostPort
	var sidecars []corev1.Container
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars = append(sidecars, c)
		}
	}
	for _, cs := range [][]corev1.Container{sidecars, pod.Spec.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort <= 0 {
					continue
				}
				hp := HostPort{IP: p.HostIP, Protocol: p.Protocol, Port: p.HostPort}
				if hp.IP == "" {
					hp.IP = anyIP
				}
				if hp.Protocol == "" {
					hp.Protocol = corev1.ProtocolTCP
				}
				out = append(out, hp)
			}
		}
	}
	return out
}

// conflicts: a and b bind the same port and protocol on a common address
// (0.0.0.0 shares every address).
func (a HostPort) conflicts(b HostPort) bool {
	if a.Port != b.Port || a.Protocol != b.Protocol {
		return false
	}
	return a.IP == b.IP || a.IP == anyIP || b.IP == anyIP
}

// PortsRejection is a pod refused for a taken host port, in upstream's
// words: reason NodePorts, message of its PredicateFailureError.
type PortsRejection struct{}

// Reason is the pod status reason.
func (PortsRejection) Reason() string { return ReasonNodePorts }

// Error is the message.
func (PortsRejection) Error() string {
	return "Predicate " + ReasonNodePorts + " failed: " + nodePortsErrReason
}

// FitPorts checks the host ports a pod wants against those the admitted
// pods hold: nil when all are free.
func FitPorts(want []HostPort, held [][]HostPort) *PortsRejection {
	for _, w := range want {
		for _, ports := range held {
			for _, h := range ports {
				if w.conflicts(h) {
					return &PortsRejection{}
				}
			}
		}
	}
	return nil
}
