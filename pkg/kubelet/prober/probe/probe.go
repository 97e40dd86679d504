// Package probe runs one check of a container the way upstream kubelet's
// probes do: an HTTP GET, a TCP connect, a gRPC health Check or a command
// run in the container. Each check answers a Result and the output that
// upstream shows in the Unhealthy event; an error is a check that could
// not be made at all (upstream's "probe errored").
package probe

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Result is one check's outcome.
type Result string

const (
	Success Result = "success"
	// Warning is a success with something to report (an HTTP redirect to
	// another host that was not followed).
	Warning Result = "warning"
	Failure Result = "failure"
	Unknown Result = "unknown"
)

// UserAgent is what upstream kubelet v1.37 sends as User-Agent on HTTP
// and gRPC probes.
const UserAgent = "kube-probe/1.37"

// maxOutput bounds what is read of a response body or a command's output,
// as upstream (10 KiB).
const maxOutput = 10 << 10

// ResolvePort is port as a number: itself, or the containerPort of the
// container's port of that name.
func ResolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	n := -1
	switch port.Type {
	case intstr.Int:
		n = port.IntValue()
	case intstr.String:
		found := false
		for _, p := range c.Ports {
			if p.Name == port.StrVal {
				n, found = int(p.ContainerPort), true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("port %q not found", port.StrVal)
		}
	default:
		return n, fmt.Errorf("intOrString had no kind: %+v", port)
	}
	if n <= 0 || n >= 65536 {
		return n, fmt.Errorf("invalid port number: %v", n)
	}
	return n, nil
}
