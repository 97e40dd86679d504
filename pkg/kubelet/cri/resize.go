package cri

import (
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/admission"
	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
)

// In-place resize (InPlacePodVerticalScaling) as upstream's kubelet: the
// node grants a pod's new container resources when they fit next to the
// other pods' granted ones (else the resize is pending, Infeasible or
// Deferred), then applies them to the running containers through
// UpdateContainerResources, restarting those whose resize policy asks.

// Upstream's event reasons of a resize.
const (
	eventResizeStarted    = "ResizeStarted"
	eventResizeCompleted  = "ResizeCompleted"
	eventResizeError      = "ResizeError"
	eventResizeDeferred   = "ResizeDeferred"
	eventResizeInfeasible = "ResizeInfeasible"
)

// resizable are the containers a resize changes: the regular ones and the
// sidecars.
func resizable(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if restartable(&pod.Spec.InitContainers[i]) {
			out = append(out, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

func isResizable(pod *corev1.Pod, name string) bool {
	for _, c := range resizable(pod) {
		if c.Name == name {
			return true
		}
	}
	return false
}

// specResources are the resizable containers' resources in the pod's spec.
func specResources(pod *corev1.Pod) map[string]corev1.ResourceRequirements {
	out := map[string]corev1.ResourceRequirements{}
	for _, c := range resizable(pod) {
		out[c.Name] = *c.Resources.DeepCopy()
	}
	return out
}

// equalResources compares cpu and memory requests and limits by value
// (1000m is 1).
func equalResources(a, b corev1.ResourceRequirements) bool {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if !equalQuantity(a.Requests, b.Requests, name) || !equalQuantity(a.Limits, b.Limits, name) {
			return false
		}
	}
	return true
}

func equalQuantity(a, b corev1.ResourceList, name corev1.ResourceName) bool {
	qa, oka := a[name]
	qb, okb := b[name]
	return oka == okb && qa.Cmp(qb) == 0
}

func equalAllocations(a, b map[string]corev1.ResourceRequirements) bool {
	if len(a) != len(b) {
		return false
	}
	for name, r := range a {
		o, ok := b[name]
		if !ok || !equalResources(r, o) {
			return false
		}
	}
	return true
}

// withResources is a copy of pod whose resizable containers have the
// given resources (those it has none for keep their spec's).
func withResources(pod *corev1.Pod, resources map[string]corev1.ResourceRequirements) *corev1.Pod {
	out := pod.DeepCopy()
	for _, c := range resizable(out) {
		if r, ok := resources[c.Name]; ok {
			c.Resources = *r.DeepCopy()
		}
	}
	return out
}

// admitResize tells whether the pod with its desired resources fits the
// node's allocatable next to the other pods' granted resources: "" when
// it does, else upstream's PodResizePending reason and message.
func admitResize(desired *corev1.Pod, others []map[string]corev1.ResourceRequirements, allocatable corev1.ResourceList) (reason, message string) {
	requests := admission.Requests(desired)
	cpu, memory := requests.Cpu().MilliValue(), requests.Memory().Value()
	cpuCap, memoryCap := allocatable.Cpu().MilliValue(), allocatable.Memory().Value()
	switch {
	case memory > memoryCap:
		return corev1.PodReasonInfeasible, fmt.Sprintf("Node didn't have enough capacity: memory, requested: %d, capacity: %d", memory, memoryCap)
	case cpu > cpuCap:
		return corev1.PodReasonInfeasible, fmt.Sprintf("Node didn't have enough capacity: cpu, requested: %d, capacity: %d", cpu, cpuCap)
	}
	used := corev1.ResourceList{}
	for _, p := range others {
		for _, r := range p {
			admission.Add(used, r.Requests)
		}
	}
	if rej := admission.Fit(requests, used, len(others), allocatable); rej != nil {
		return corev1.PodReasonDeferred, rej.Error()
	}
	return "", ""
}

// known: the runtime synced the pod since it started (a pod gone while
// the agent was down keeps its checkpoint until removed, but no resources).
func (r *Runtime) known(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pods[uid]
	return ok
}

// resizeAction is what a running container needs for its allocated
// resources: nothing, an update in place, or a restart.
type resizeAction int

const (
	resizeNone resizeAction = iota
	resizeUpdate
	resizeRestart
)

// actionFor compares the instance's resources with the allocated ones: a
// resource that changed and whose resize policy is RestartContainer
// restarts the container.
func actionFor(c *corev1.Container, actual, allocated corev1.ResourceRequirements) resizeAction {
	if equalResources(actual, allocated) {
		return resizeNone
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if equalQuantity(actual.Requests, allocated.Requests, name) && equalQuantity(actual.Limits, allocated.Limits, name) {
			continue
		}
		for _, p := range c.ResizePolicy {
			if p.ResourceName == name && p.RestartPolicy == corev1.RestartContainer {
				return resizeRestart
			}
		}
	}
	return resizeUpdate
}

func resizeCondition(t corev1.PodConditionType, reason, message string, gen int64) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message, ObservedGeneration: gen}
}

// syncResize grants the pod's spec resources when they changed and fit,
// applies the granted ones to its running containers, and returns the
// pod as it is to run: its containers with the granted resources.
func (s *syncer) syncResize() *corev1.Pod {
	r, pod := s.r, s.pod
	logger := klog.FromContext(s.ctx).WithValues("pod", klog.KObj(pod))
	spec := specResources(pod)
	cur, ok := r.allocs.get(pod.UID)
	if !ok || cur.Allocated == nil {
		// First seen: the pod was admitted with its spec's resources.
		if err := r.allocs.setAllocated(pod.UID, spec); err != nil {
			logger.Error(err, "Recording the pod's resources failed")
		}
		cur.Allocated = spec
	}
	var conditions []corev1.PodCondition
	if !equalAllocations(spec, cur.Allocated) {
		reason, msg := "", ""
		if r.cfg.NodeAllocatable != nil {
			reason, msg = admitResize(pod, r.allocs.others(pod.UID, r.known), r.cfg.NodeAllocatable())
		}
		if reason != "" {
			logger.V(3).Info("Pod resize pending", "reason", reason, "message", msg)
			conditions = append(conditions, resizeCondition(corev1.PodResizePending, reason, msg, pod.Generation))
			// Once per pending state: a deferred resize's message changes
			// with the node's use.
			if s.st.resizePending != reason {
				event := eventResizeDeferred
				if reason == corev1.PodReasonInfeasible {
					event = eventResizeInfeasible
				}
				r.cfg.Recorder.Eventf(podRef(pod), corev1.EventTypeWarning, event, "Pod resize %s: %s", reason, describeResize(pod, pod.Generation, msg))
			}
			s.st.resizePending = reason
		} else {
			if err := r.allocs.setAllocated(pod.UID, spec); err != nil {
				logger.Error(err, "Recording the pod's resized resources failed")
			}
			cur.Allocated = spec
			s.st.resizePending = ""
			r.cfg.Recorder.Eventf(podRef(pod), corev1.EventTypeNormal, eventResizeStarted, "Pod resize started: %s", describeResize(pod, pod.Generation, ""))
		}
	} else {
		s.st.resizePending = ""
	}
	run := withResources(pod, cur.Allocated)
	if errMsg := s.actuate(run, cur); errMsg != "" {
		s.st.resizing = true
		conditions = append(conditions, resizeCondition(corev1.PodResizeInProgress, corev1.PodReasonError, errMsg, pod.Generation))
		if s.st.resizeError != errMsg {
			r.cfg.Recorder.Eventf(podRef(pod), corev1.EventTypeWarning, eventResizeError, "Pod resize error: %s", describeResize(run, pod.Generation, errMsg))
		}
		s.st.resizeError = errMsg
		s.after(retryInterval)
	} else if s.st.resizeError != "" || s.st.resizing {
		s.st.resizeError = ""
		s.st.resizing = false
		r.cfg.Recorder.Eventf(podRef(pod), corev1.EventTypeNormal, eventResizeCompleted, "Pod resize completed: %s", describeResize(run, pod.Generation, ""))
	}
	r.mu.Lock()
	s.st.resizeConditions = conditions
	r.mu.Unlock()
	return run
}

// actuate applies the granted resources to the running containers of run
// (the pod with them); "" when all have them, else the first error.
func (s *syncer) actuate(run *corev1.Pod, cur podResources) string {
	r := s.r
	logger := klog.FromContext(s.ctx).WithValues("pod", klog.KObj(run))
	var firstErr string
	for _, c := range resizable(run) {
		inst := s.v.active(c.Name)
		if !running(inst) {
			continue
		}
		allocated := c.Resources
		actual := allocated
		if a, ok := cur.Actuated[c.Name]; ok && a.ID == inst.Id {
			actual = a.Resources
		} else {
			// An instance started before its resources were recorded (an
			// agent upgrade) has its spec's at start: record those.
			if err := r.allocs.setActuated(run.UID, c.Name, inst.Id, allocated); err != nil {
				logger.Error(err, "Recording the container's resources failed", "container", c.Name)
			}
			continue
		}
		switch actionFor(c, actual, allocated) {
		case resizeNone:
			continue
		case resizeRestart:
			s.st.resizing = true
			logger.V(2).Info("Restarting container to resize it", "container", c.Name)
			r.containerEvent(run, c, inst.Id, corev1.EventTypeNormal, eventKilling, "Container %s resize requires restart", c.Name)
			s.dirty = true
			if err := r.runtime.StopContainer(s.ctx, inst.Id, int64(terminationGrace(run)/time.Second)); err != nil {
				if firstErr == "" {
					firstErr = fmt.Sprintf("restarting container %s: %v", c.Name, grpcMessage(err))
				}
				continue
			}
			s.start(c, inst)
		case resizeUpdate:
			s.st.resizing = true
			if msg := s.checkMemoryDecrease(inst, actual, allocated); msg != "" {
				if firstErr == "" {
					firstErr = msg
				}
				continue
			}
			lr := containerspec.ContainerResources(run, c, r.cfg.MemoryCapacity)
			logger.V(2).Info("Resizing container", "container", c.Name, "shares", lr.CpuShares, "quota", lr.CpuQuota, "memory", lr.MemoryLimitInBytes)
			if err := r.runtime.UpdateContainerResources(s.ctx, inst.Id, &runtimeapi.ContainerResources{Linux: lr}); err != nil {
				if firstErr == "" {
					firstErr = fmt.Sprintf("updating the resources of container %s: %v", c.Name, grpcMessage(err))
				}
				continue
			}
			if err := r.allocs.setActuated(run.UID, c.Name, inst.Id, allocated); err != nil {
				logger.Error(err, "Recording the container's resources failed", "container", c.Name)
			}
		}
	}
	return firstErr
}

// checkMemoryDecrease refuses a memory limit below what the container
// uses now, as upstream: "" when the new limit is above the usage.
func (s *syncer) checkMemoryDecrease(inst *runtimeapi.ContainerStatus, actual, allocated corev1.ResourceRequirements) string {
	newLimit, ok := allocated.Limits[corev1.ResourceMemory]
	if !ok {
		return ""
	}
	if old, had := actual.Limits[corev1.ResourceMemory]; had && newLimit.Cmp(old) >= 0 {
		return ""
	}
	stats, err := s.r.runtime.ContainerStats(s.ctx, inst.Id)
	if err != nil || stats.GetMemory().GetUsageBytes() == nil {
		return ""
	}
	usage := stats.GetMemory().GetUsageBytes().GetValue()
	if ws := stats.GetMemory().GetWorkingSetBytes(); ws != nil {
		usage = ws.GetValue()
	}
	if uint64(newLimit.Value()) <= usage {
		return fmt.Sprintf("attempting to set pod memory limit (%d) below current usage (%d)", newLimit.Value(), usage)
	}
	return ""
}

// resizeStatus fills in the containers' granted and actual resources and
// the pod's resize conditions.
func (r *Runtime) resizeStatus(pod *corev1.Pod, v *podView, st *podState, s *container.PodStatus) {
	cur, ok := r.allocs.get(pod.UID)
	if !ok {
		return
	}
	fill := func(list []container.ContainerStatus) {
		for i := range list {
			cs := &list[i]
			a, ok := cur.Allocated[cs.Name]
			if !ok {
				continue
			}
			cs.Allocated = a.DeepCopy()
			if inst := v.active(cs.Name); inst != nil {
				if act, ok := cur.Actuated[cs.Name]; ok && act.ID == inst.Id {
					cs.Actual = act.Resources.DeepCopy()
				}
			}
		}
	}
	fill(s.InitContainers)
	fill(s.Containers)
	if st != nil {
		r.mu.Lock()
		s.ResizeConditions = append([]corev1.PodCondition(nil), st.resizeConditions...)
		r.mu.Unlock()
	}
}

// describeResize is the resize in an event as upstream prints it: the
// containers' resources (pod, in spec order), the pod's generation and
// what went wrong, if anything.
func describeResize(pod *corev1.Pod, generation int64, errMsg string) string {
	type ctr struct {
		Name      string                      `json:"name"`
		Resources corev1.ResourceRequirements `json:"resources"`
	}
	body := struct {
		Containers []ctr  `json:"containers"`
		Generation int64  `json:"generation"`
		Error      string `json:"error,omitempty"`
	}{Generation: generation, Error: errMsg}
	for _, c := range resizable(pod) {
		body.Containers = append(body.Containers, ctr{Name: c.Name, Resources: c.Resources})
	}
	data, _ := json.Marshal(body)
	return string(data)
}

// AllocatedRequests are the pod's requests with the resources the node
// granted its containers (kubelet.AllocatingRuntime): what the node's
// admission counts for a pod resized in place.
func (r *Runtime) AllocatedRequests(pod *corev1.Pod) (corev1.ResourceList, bool) {
	cur, ok := r.allocs.get(pod.UID)
	if !ok || cur.Allocated == nil {
		return nil, false
	}
	return admission.Requests(withResources(pod, cur.Allocated)), true
}
