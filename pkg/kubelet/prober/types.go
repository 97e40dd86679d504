package prober

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/pkg/kubelet/prober/probe"
)

// Execer runs exec probes' commands in containers (the CRI runtime's
// ExecSync).
type Execer = probe.Execer

// ProbeType is which of a container's probes: upstream's names, as in
// events ("Liveness probe failed: ...") and the probe_type metric label.
type ProbeType string

const (
	Liveness  ProbeType = "Liveness"
	Readiness ProbeType = "Readiness"
	Startup   ProbeType = "Startup"
)

// Result is a probe's state for one container instance, as upstream's
// results manager keeps it: a result is set once failureThreshold
// failures or successThreshold successes ran in a row.
type Result int

const (
	// Unknown: a startup probe that has not succeeded nor failed yet.
	Unknown Result = iota - 1
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	}
	return "UNKNOWN"
}

// Update is a probe's result that changed.
type Update struct {
	PodUID        types.UID
	ContainerName string
	// ContainerID is the instance probed, as the runtime names it
	// (<runtime>://<id>).
	ContainerID string
	Probe       ProbeType
	Result      Result
	// Kill is set when a liveness or startup probe failed: the container
	// is to be killed (and restarted as its restart policy says).
	Kill *Kill
}

// Kill is a running container that failed its liveness or startup probe.
type Kill struct {
	ContainerID string
	Probe       ProbeType
	// Cause is upstream's cause of the kill: "Container x failed
	// liveness probe" ("Init container x failed startup probe" for a
	// sidecar).
	Cause string
	// Message is upstream's reason for the kill, the message of the
	// runtime's Killing event: "Container x failed liveness probe, will be
	// restarted" (without ", will be restarted" when the restart policy
	// does not restart it).
	Message string
	// Restart: the restart policy restarts the container after the kill.
	Restart bool
	// GracePeriod is how long the container has to stop: the pod's
	// deletion grace period if it is being deleted, else the probe's
	// terminationGracePeriodSeconds, else the pod's, else 2s.
	GracePeriod time.Duration
}
