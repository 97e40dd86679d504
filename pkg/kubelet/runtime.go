package kubelet

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// Runtime is what runs the node's pods: simulated (pkg/kubelet/simulated)
// or a CRI runtime such as containerd. Its calls return at once: what
// takes time (a start delay, a back-off, a grace period) is a Requeue
// in the result, so one worker serves many pods.
// AllocatingRuntime is a Runtime that may grant a pod other resources
// than its spec asked for at admission (an in-place resize).
type AllocatingRuntime interface {
	Runtime
	// AllocatedRequests are the pod's requests as the node granted them;
	// false: the runtime granted it nothing of its own yet.
	AllocatedRequests(pod *corev1.Pod) (corev1.ResourceList, bool)
}

type Runtime interface {
	// Version is the runtime as nodeInfo.containerRuntimeVersion names it,
	// <name>://<version>.
	Version() string
	// Errors are the reasons the runtime (or its network) cannot run pods
	// now; none: ready.
	Errors(ctx context.Context) []error
	// SyncPod moves the pod's sandbox and containers towards its spec:
	// creates the sandbox, runs the init containers in order, starts the
	// containers, restarts exited ones as the restart policy says after
	// their back-off.
	SyncPod(ctx context.Context, pod *corev1.Pod) (container.SyncResult, error)
	// KillPod stops the pod's containers, each within gracePeriod.
	KillPod(ctx context.Context, pod *corev1.Pod, gracePeriod time.Duration) (container.SyncResult, error)
	// RemovePod forgets a pod that left the node: its containers, sandbox
	// and IPs.
	RemovePod(ctx context.Context, uid types.UID) error
	// PodStatuses are the pods the runtime has, for cleaning up those the
	// API no longer has.
	PodStatuses(ctx context.Context) ([]*container.PodStatus, error)
}
