// Package container is the runtime's view of a pod, as the kubelet reads
// it from a Runtime: the sandbox, its IPs and the state of each container.
// pkg/kubelet/status turns it into the API's PodStatus.
package container

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// State is a container's state in the runtime.
type State string

const (
	// StateNone: not created yet (or removed to be started again).
	StateNone    State = ""
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
)

// Upstream kubelet's waiting reasons.
const (
	ReasonContainerCreating = "ContainerCreating"
	ReasonPodInitializing   = "PodInitializing"
	ReasonCrashLoopBackOff  = "CrashLoopBackOff"
	// Terminated reasons.
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
)

// Termination is how a container instance ended.
type Termination struct {
	ID                    string
	ExitCode              int32
	Reason, Message       string
	StartedAt, FinishedAt time.Time
}

// ContainerStatus is the latest instance of one container of the pod.
type ContainerStatus struct {
	Name string
	// ID is <runtime>://<id>, "" before the container is created.
	ID             string
	Image, ImageID string
	State          State
	StartedAt      time.Time
	// Exited is set in StateExited.
	Exited *Termination
	// Last is the instance before this one, after a restart.
	Last         *Termination
	RestartCount int32
	// WaitingReason and WaitingMessage say why a container that does not
	// run is not started (again), e.g. CrashLoopBackOff.
	WaitingReason, WaitingMessage string
	// Allocated are the resources the node granted the container (an
	// in-place resize changes them); nil: its spec's.
	Allocated *corev1.ResourceRequirements
	// Actual are the resources the running instance has; nil: Allocated.
	Actual *corev1.ResourceRequirements
}

// PodStatus is a pod as its runtime has it.
type PodStatus struct {
	UID types.UID
	// SandboxCreated: the pod had a sandbox (it may have stopped since).
	SandboxCreated bool
	SandboxReady   bool
	// IPs of the sandbox, the primary first.
	IPs            []string
	InitContainers []ContainerStatus
	Containers     []ContainerStatus
	// EphemeralContainers are the pod's ephemeral containers (kubectl
	// debug), in spec order; they never restart.
	EphemeralContainers []ContainerStatus
	// ResizeConditions are the pod's PodResizePending and
	// PodResizeInProgress conditions, when a resize is pending or under
	// way.
	ResizeConditions []corev1.PodCondition
}

// Running tells whether any container may still run: a pod is terminal
// only when none does.
func (s *PodStatus) Running() bool {
	for _, list := range [][]ContainerStatus{s.InitContainers, s.Containers, s.EphemeralContainers} {
		for _, c := range list {
			if c.State == StateRunning || c.State == StateCreated {
				return true
			}
		}
	}
	return false
}

// Find is the named container's status, nil if the runtime has none.
func (s *PodStatus) Find(name string, init bool) *ContainerStatus {
	list := s.Containers
	if init {
		list = s.InitContainers
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// FindEphemeral is the named ephemeral container's status, nil if the
// runtime has none.
func (s *PodStatus) FindEphemeral(name string) *ContainerStatus {
	for i := range s.EphemeralContainers {
		if s.EphemeralContainers[i].Name == name {
			return &s.EphemeralContainers[i]
		}
	}
	return nil
}

// SyncResult is the pod after a SyncPod or KillPod.
type SyncResult struct {
	Status *PodStatus
	// Requeue: sync again after this long (a start delay, a back-off, a
	// grace period); 0: only on a change of the pod.
	Requeue time.Duration
}
