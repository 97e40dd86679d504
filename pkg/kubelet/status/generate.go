// Package status is the kubelet's pod status manager: it computes a pod's
// API status from what its runtime reports (phase, conditions, container
// statuses, IPs, QoS class) with upstream kubelet's rules, and writes it
// to pods/status with a strategic merge patch only when it changed.
package status

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/qos"
)

// Upstream kubelet's condition reasons.
const (
	ReasonUnknownContainerStatuses = "UnknownContainerStatuses"
	ReasonPodCompleted             = "PodCompleted"
	ReasonPodFailed                = "PodFailed"
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	ReasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
	ReasonPodSandboxNotReady       = "PodSandboxNotReady"
	messageNoPodSandbox            = "no pod sandbox exists"
	messageSandboxNotReady         = "pod sandbox is not ready"
)

// Options are what the status depends on besides the pod and its runtime.
type Options struct {
	Now time.Time
	// HostIPs are the node's InternalIPs, the primary first.
	HostIPs []string
	// Ready tells whether a running container passes its readiness probe;
	// nil: every running container is ready.
	Ready func(pod *corev1.Pod, container string) bool
	// Started tells whether a running container passed its startup probe;
	// nil: every running container has started.
	Started func(pod *corev1.Pod, container string) bool
	// Terminal: the pod is being stopped for good (deleted, or done), so
	// its exited containers will not restart.
	Terminal bool
}

// Generate is the pod's status from its runtime status rs (nil: the
// runtime has nothing of it yet).
func Generate(pod *corev1.Pod, rs *container.PodStatus, o Options) corev1.PodStatus {
	if rs == nil {
		rs = &container.PodStatus{UID: pod.UID}
	}
	old := &pod.Status
	s := corev1.PodStatus{
		QOSClass:           qos.PodQOS(pod),
		ObservedGeneration: pod.Generation,
		Reason:             old.Reason,
		Message:            old.Message,
		NominatedNodeName:  old.NominatedNodeName,
		StartTime:          old.StartTime,
	}
	if s.StartTime == nil {
		s.StartTime = ptr.To(metav1.NewTime(o.Now))
	}
	defaultReason := container.ReasonContainerCreating
	if len(pod.Spec.InitContainers) > 0 {
		defaultReason = container.ReasonPodInitializing
	}
	s.InitContainerStatuses = containerStatuses(pod, pod.Spec.InitContainers, rs, true, defaultReason, o)
	s.ContainerStatuses = containerStatuses(pod, pod.Spec.Containers, rs, false, defaultReason, o)
	s.EphemeralContainerStatuses = ephemeralStatuses(pod, rs, defaultReason, o)

	initialized := false
	for _, c := range old.Conditions {
		if c.Type == corev1.PodInitialized && c.Status == corev1.ConditionTrue {
			initialized = true
		}
	}
	s.Phase = Phase(pod, s.InitContainerStatuses, s.ContainerStatuses, o.Terminal, initialized)
	// A terminal phase is final.
	if old.Phase == corev1.PodSucceeded || old.Phase == corev1.PodFailed {
		s.Phase = old.Phase
	}

	all := append(append([]corev1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
	gen := pod.Generation
	ready := corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, ObservedGeneration: gen}
	if !rs.SandboxReady {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, ReasonPodSandboxNotReady, messageNoPodSandbox
		if rs.SandboxCreated {
			ready.Message = messageSandboxNotReady
		}
	}
	containersReady := containersReadyCondition(pod, all, s.Phase)
	conditions := []corev1.PodCondition{
		ready,
		initializedCondition(pod, s.InitContainerStatuses, all, s.Phase),
		podReadyCondition(pod, containersReady),
		containersReady,
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	}
	conditions = append(conditions, rs.ResizeConditions...)
	for i := range conditions {
		conditions[i].ObservedGeneration = gen
		conditions[i].LastTransitionTime = transitionTime(old.Conditions, conditions[i], o.Now)
	}
	s.Conditions = mergeConditions(old.Conditions, conditions)

	s.HostIPs = podIPs[corev1.HostIP](o.HostIPs)
	if len(s.HostIPs) > 0 {
		s.HostIP = s.HostIPs[0].IP
	}
	ips := rs.IPs
	if len(ips) == 0 {
		// The sandbox is gone (a finished pod): its IPs stay reported.
		for _, ip := range old.PodIPs {
			ips = append(ips, ip.IP)
		}
	}
	s.PodIPs = podIPs[corev1.PodIP](ips)
	if len(s.PodIPs) > 0 {
		s.PodIP = s.PodIPs[0].IP
	}
	return s
}

// Rejected is the status of a pod the node did not admit, as upstream's
// kubelet writes it: Failed with the reason, no containers, no conditions
// of the kubelet's.
func Rejected(pod *corev1.Pod, reason, message string, now time.Time) corev1.PodStatus {
	s := corev1.PodStatus{Phase: corev1.PodFailed, Reason: reason, Message: message,
		QOSClass: qos.PodQOS(pod), ObservedGeneration: pod.Generation, StartTime: pod.Status.StartTime}
	if s.StartTime == nil {
		s.StartTime = ptr.To(metav1.NewTime(now))
	}
	return s
}

func podIPs[T corev1.PodIP | corev1.HostIP](ips []string) []T {
	var out []T
	for _, ip := range ips {
		out = append(out, T{IP: ip})
	}
	return out
}

func terminal(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}

// transitionTime keeps the old condition's time unless its status changed.
func transitionTime(old []corev1.PodCondition, c corev1.PodCondition, now time.Time) metav1.Time {
	for _, o := range old {
		if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
			return o.LastTransitionTime
		}
	}
	return metav1.NewTime(now)
}

// ownedByKubelet are the condition types the kubelet writes: others
// (DisruptionTarget, readiness gates, the scheduler's) stay as they are.
var ownedByKubelet = map[corev1.PodConditionType]bool{
	corev1.PodScheduled: true, corev1.PodReady: true, corev1.PodInitialized: true, corev1.ContainersReady: true,
	corev1.PodReadyToStartContainers: true, corev1.PodResizeInProgress: true, corev1.PodResizePending: true,
}

// mergeConditions are the old conditions the kubelet does not own, then
// the kubelet's, as upstream's status manager merges them.
func mergeConditions(old, kubelets []corev1.PodCondition) []corev1.PodCondition {
	out := make([]corev1.PodCondition, 0, len(old)+len(kubelets))
	for _, c := range old {
		if !ownedByKubelet[c.Type] {
			out = append(out, c)
		}
	}
	return append(out, kubelets...)
}

func containerStatuses(pod *corev1.Pod, specs []corev1.Container, rs *container.PodStatus, init bool, defaultReason string, o Options) []corev1.ContainerStatus {
	if len(specs) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, 0, len(specs))
	for i := range specs {
		spec := &specs[i]
		cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, Started: ptr.To(false)}
		if r := rs.Find(spec.Name, init); r != nil {
			cs.ContainerID, cs.RestartCount = r.ID, r.RestartCount
			if r.Image != "" {
				cs.Image = r.Image
			}
			cs.ImageID = r.ImageID
			switch r.State {
			case container.StateRunning:
				cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(r.StartedAt)}
				cs.Started = ptr.To(o.Started == nil || o.Started(pod, spec.Name))
			case container.StateExited:
				if r.WaitingReason != "" {
					// Exited and waiting to restart: the exit is lastState.
					cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: r.WaitingReason, Message: r.WaitingMessage}
					cs.LastTerminationState.Terminated = terminated(r.Exited)
				} else {
					cs.State.Terminated = terminated(r.Exited)
				}
			default:
				reason := r.WaitingReason
				if reason == "" {
					reason = defaultReason
				}
				cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: r.WaitingMessage}
			}
			if r.Last != nil && cs.LastTerminationState.Terminated == nil {
				cs.LastTerminationState.Terminated = terminated(r.Last)
			}
		} else {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: defaultReason}
		}
		switch {
		case init && !restartable(spec):
			// An init container is ready once it completed.
			cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		case cs.State.Running != nil:
			cs.Ready = *cs.Started && (o.Ready == nil || o.Ready(pod, spec.Name))
		}
		// As upstream: the allocated requests (an in-place resize may not
		// have been granted yet) and, while it runs, the resources the
		// instance has (also for a BestEffort pod: they tell the API
		// server the node resizes).
		allocated := &spec.Resources
		var actual *corev1.ResourceRequirements
		if r := rs.Find(spec.Name, init); r != nil {
			if r.Allocated != nil {
				allocated = r.Allocated
			}
			actual = r.Actual
		}
		if actual == nil {
			actual = allocated
		}
		if len(allocated.Requests) > 0 {
			cs.AllocatedResources = allocated.Requests.DeepCopy()
		}
		if cs.State.Running != nil {
			cs.Resources = &corev1.ResourceRequirements{Requests: actual.Requests.DeepCopy(), Limits: actual.Limits.DeepCopy()}
		}
		out = append(out, cs)
	}
	return out
}

// ephemeralStatuses are the ephemeral containers' statuses as upstream's:
// never ready, no started, no resources; times to the second, as the API
// keeps them.
func ephemeralStatuses(pod *corev1.Pod, rs *container.PodStatus, defaultReason string, o Options) []corev1.ContainerStatus {
	if len(pod.Spec.EphemeralContainers) == 0 {
		return nil
	}
	specs := make([]corev1.Container, len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.EphemeralContainers {
		specs[i] = corev1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
	}
	view := &container.PodStatus{UID: rs.UID, Containers: rs.EphemeralContainers}
	o.Ready, o.Started = nil, nil
	out := containerStatuses(pod, specs, view, false, defaultReason, o)
	round := func(t *metav1.Time) { *t = metav1.NewTime(t.Rfc3339Copy().Time) }
	for i := range out {
		cs := &out[i]
		cs.Ready, cs.Started, cs.Resources, cs.AllocatedResources = false, nil, nil, nil
		for _, st := range []*corev1.ContainerState{&cs.State, &cs.LastTerminationState} {
			if st.Running != nil {
				round(&st.Running.StartedAt)
			}
			if st.Terminated != nil {
				round(&st.Terminated.StartedAt)
				round(&st.Terminated.FinishedAt)
			}
		}
	}
	return out
}

func terminated(t *container.Termination) *corev1.ContainerStateTerminated {
	if t == nil {
		return &corev1.ContainerStateTerminated{ExitCode: 0, Reason: container.ReasonCompleted}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: t.ExitCode, Reason: t.Reason, Message: t.Message, ContainerID: t.ID,
		StartedAt: metav1.NewTime(t.StartedAt), FinishedAt: metav1.NewTime(t.FinishedAt),
	}
}

// restartable: a sidecar, an init container with restartPolicy Always.
func restartable(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func find(statuses []corev1.ContainerStatus, name string) (corev1.ContainerStatus, bool) {
	for _, s := range statuses {
		if s.Name == name {
			return s, true
		}
	}
	return corev1.ContainerStatus{}, false
}

func containersReadyCondition(pod *corev1.Pod, statuses []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}
	switch phase {
	case corev1.PodSucceeded:
		c.Reason = ReasonPodCompleted
		return c
	case corev1.PodFailed:
		c.Reason = ReasonPodFailed
		return c
	}
	var unknown, unready []string
	check := func(name string) {
		if s, ok := find(statuses, name); !ok {
			unknown = append(unknown, name)
		} else if !s.Ready {
			unready = append(unready, name)
		}
	}
	for i := range pod.Spec.InitContainers {
		if restartable(&pod.Spec.InitContainers[i]) {
			check(pod.Spec.InitContainers[i].Name)
		}
	}
	for _, spec := range pod.Spec.Containers {
		check(spec.Name)
	}
	var messages []string
	if len(unknown) > 0 {
		messages = append(messages, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		messages = append(messages, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(messages) > 0 {
		c.Reason, c.Message = ReasonContainersNotReady, strings.Join(messages, ", ")
		return c
	}
	c.Status = corev1.ConditionTrue
	return c
}

func podReadyCondition(pod *corev1.Pod, containersReady corev1.PodCondition) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.PodReady, Status: containersReady.Status, Reason: containersReady.Reason, Message: containersReady.Message}
	if c.Status != corev1.ConditionTrue {
		return c
	}
	var messages []string
	for _, gate := range pod.Spec.ReadinessGates {
		var found *corev1.PodCondition
		for i := range pod.Status.Conditions {
			if pod.Status.Conditions[i].Type == gate.ConditionType {
				found = &pod.Status.Conditions[i]
			}
		}
		switch {
		case found == nil:
			messages = append(messages, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(gate.ConditionType)))
		case found.Status != corev1.ConditionTrue:
			messages = append(messages, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(gate.ConditionType), found.Status))
		}
	}
	if len(messages) > 0 {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, ReasonReadinessGatesNotReady, strings.Join(messages, ", ")
	}
	return c
}

func initializedCondition(pod *corev1.Pod, initStatuses, all []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	var unknown, incomplete []string
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		s, ok := find(initStatuses, spec.Name)
		switch {
		case !ok:
			unknown = append(unknown, spec.Name)
		case restartable(spec) && (s.Started == nil || !*s.Started):
			incomplete = append(incomplete, spec.Name)
		case !restartable(spec) && !s.Ready:
			incomplete = append(incomplete, spec.Name)
		}
	}
	if phase == corev1.PodSucceeded && len(unknown) == 0 {
		c.Reason = ReasonPodCompleted
		return c
	}
	// Once a regular container has started, the pod stays initialized.
	for _, spec := range pod.Spec.Containers {
		if s, ok := find(all, spec.Name); ok && (s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil) {
			return c
		}
	}
	var messages []string
	if len(unknown) > 0 {
		messages = append(messages, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(incomplete) > 0 {
		messages = append(messages, fmt.Sprintf("containers with incomplete status: %s", incomplete))
	}
	if len(messages) > 0 {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, ReasonContainersNotInitialized, strings.Join(messages, ", ")
	}
	return c
}
