package containerspec

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/qos"
)

// CPU share and CFS quota constants as upstream's cgroup manager uses them.
const (
	MinShares      = 2
	MaxShares      = 262144
	SharesPerCPU   = 1024
	MilliCPUToCPU  = 1000
	QuotaPeriod    = 100000 // µs: 100ms
	MinQuotaPeriod = 1000   // µs: the kernel's minimum quota
)

// OOM score adjustments by QoS class, as upstream.
const (
	GuaranteedOOMScoreAdj = -997
	BestEffortOOMScoreAdj = 1000
)

// MilliCPUToShares is cpu.shares for a cpu request: zero is the kernel's
// minimum (2), not docker's unset 1024.
func MilliCPUToShares(milliCPU int64) int64 {
	if milliCPU == 0 {
		return MinShares
	}
	shares := milliCPU * SharesPerCPU / MilliCPUToCPU
	switch {
	case shares < MinShares:
		return MinShares
	case shares > MaxShares:
		return MaxShares
	}
	return shares
}

// MilliCPUToQuota is cfs_quota_us for a cpu limit over period: 0 (no
// quota) for no limit, else at least 1ms.
func MilliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	quota := milliCPU * period / MilliCPUToCPU
	if quota < MinQuotaPeriod {
		return MinQuotaPeriod
	}
	return quota
}

// linuxResources is upstream's calculateLinuxResources with the CFS quota
// on and the default period: a missing cpu request is the cpu limit.
func linuxResources(cpuRequest, cpuLimit, memoryLimit *resource.Quantity) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	if cpuRequest == nil && cpuLimit != nil {
		r.CpuShares = MilliCPUToShares(cpuLimit.MilliValue())
	} else {
		r.CpuShares = MilliCPUToShares(milliValue(cpuRequest))
	}
	if m := memoryLimit.Value(); m != 0 {
		r.MemoryLimitInBytes = m
	}
	r.CpuPeriod = QuotaPeriod
	r.CpuQuota = MilliCPUToQuota(milliValue(cpuLimit), QuotaPeriod)
	return r
}

func milliValue(q *resource.Quantity) int64 {
	if q == nil {
		return 0
	}
	return q.MilliValue()
}

// ContainerResources are the container's cgroup settings: shares from the
// cpu request (else limit), quota from the cpu limit, the memory limit
// (pod-level limits standing in for unset ones), and oom_score_adj by QoS.
// memoryCapacity is the node's memory in bytes.
func ContainerResources(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) *runtimeapi.LinuxContainerResources {
	podLevel := resourcehelper.IsPodLevelResourcesSet(pod)
	cpuLimit := c.Resources.Limits.Cpu()
	memoryLimit := c.Resources.Limits.Memory()
	if podLevel {
		if cpuLimit.IsZero() {
			cpuLimit = pod.Spec.Resources.Limits.Cpu()
		}
		if memoryLimit.IsZero() {
			memoryLimit = pod.Spec.Resources.Limits.Memory()
		}
	}
	var cpuRequest *resource.Quantity
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		cpuRequest = c.Resources.Requests.Cpu()
	} else {
		cpuRequest = cpuLimit
	}
	r := linuxResources(cpuRequest, cpuLimit, memoryLimit)
	r.OomScoreAdj = OOMScoreAdj(pod, c, memoryCapacity)
	return r
}

// SandboxResources are the sandbox's resources (the pod's requests and
// limits without overhead) and its overhead, as upstream gives the runtime.
func SandboxResources(pod *corev1.Pod) (resources, overhead *runtimeapi.LinuxContainerResources) {
	opts := resourcehelper.PodResourcesOptions{ExcludeOverhead: true}
	req := resourcehelper.PodRequests(pod, opts)
	lim := resourcehelper.PodLimits(pod, opts)
	var cpuRequest *resource.Quantity
	if _, ok := req[corev1.ResourceCPU]; ok {
		cpuRequest = req.Cpu()
	}
	resources = linuxResources(cpuRequest, lim.Cpu(), lim.Memory())
	overhead = &runtimeapi.LinuxContainerResources{}
	if pod.Spec.Overhead != nil {
		// Overhead is both request and limit.
		cpu, memory := pod.Spec.Overhead.Cpu(), pod.Spec.Overhead.Memory()
		overhead = linuxResources(cpu, cpu, memory)
	}
	return resources, overhead
}

// OOMScoreAdj is the container's oom_score_adj by upstream's policy:
// -997 for Guaranteed and node-critical pods, 1000 for BestEffort, and for
// Burstable 1000 - 1000*request/capacity within [3, 999] (a sidecar no
// higher than the pod's smallest regular container).
func OOMScoreAdj(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) int64 {
	if isNodeCriticalPod(pod) {
		return GuaranteedOOMScoreAdj
	}
	switch qos.PodQOS(pod) {
	case corev1.PodQOSGuaranteed:
		return GuaranteedOOMScoreAdj
	case corev1.PodQOSBestEffort:
		return BestEffortOOMScoreAdj
	}
	if memoryCapacity <= 0 {
		// Unknown capacity: the least protection a Burstable pod gets.
		return BestEffortOOMScoreAdj - 1
	}
	var remaining int64
	if resourcehelper.IsPodLevelRequestsSet(pod) {
		remaining = remainingPodMemoryRequestPerContainer(pod)
	}
	adj := 1000 - 1000*(c.Resources.Requests.Memory().Value()+remaining)/memoryCapacity
	if isSidecar(pod, c) && len(pod.Spec.Containers) > 0 {
		minAdj := 1000 - 1000*(minRegularContainerMemory(pod)+remaining)/memoryCapacity
		if adj > minAdj {
			adj = minAdj
		}
	}
	if adj < 1000+GuaranteedOOMScoreAdj {
		return 1000 + GuaranteedOOMScoreAdj
	}
	if adj == BestEffortOOMScoreAdj {
		return adj - 1
	}
	return adj
}

func remainingPodMemoryRequestPerContainer(pod *corev1.Pod) int64 {
	if pod.Spec.Resources.Requests.Memory().IsZero() {
		return 0
	}
	n := int64(len(pod.Spec.Containers) + len(pod.Spec.InitContainers))
	containers := resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{})
	remaining := pod.Spec.Resources.Requests.Memory().Value() - containers.Memory().Value()
	return max(remaining, 0) / n
}

func minRegularContainerMemory(pod *corev1.Pod) int64 {
	m := pod.Spec.Containers[0].Resources.Requests.Memory().Value()
	for i := 1; i < len(pod.Spec.Containers); i++ {
		m = min(m, pod.Spec.Containers[i].Resources.Requests.Memory().Value())
	}
	return m
}

// isSidecar: a restartable init container of the pod.
func isSidecar(pod *corev1.Pod, c *corev1.Container) bool {
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		return false
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			return true
		}
	}
	return false
}

// Annotations and priorities by which upstream knows critical pods.
const (
	configSourceAnnotation = "kubernetes.io/config.source"
	apiserverSource        = "api"
	systemCriticalPriority = 2 * 1000000000
	systemNodeCritical     = "system-node-critical"
)

// isNodeCriticalPod: a critical pod (static, mirror, or priority at
// least system-critical) of priority class system-node-critical.
func isNodeCriticalPod(pod *corev1.Pod) bool {
	if pod.Spec.PriorityClassName != systemNodeCritical {
		return false
	}
	if source, ok := pod.Annotations[configSourceAnnotation]; ok && source != apiserverSource {
		return true
	}
	if _, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return true
	}
	return pod.Spec.Priority != nil && *pod.Spec.Priority >= systemCriticalPriority
}
