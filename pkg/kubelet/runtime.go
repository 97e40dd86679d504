package kubelet

import "context"

// Runtime is what runs the node's pods: simulated (pkg/kubelet/simulated)
// or a CRI runtime such as containerd. The node side asks it only what its
// status reports.
type Runtime interface {
	// Version is the runtime as nodeInfo.containerRuntimeVersion names it,
	// <name>://<version>.
	Version() string
	// Errors are the reasons the runtime (or its network) cannot run pods
	// now; none: ready.
	Errors(ctx context.Context) []error
}
