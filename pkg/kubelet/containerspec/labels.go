package containerspec

import (
	"encoding/json"
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	kubelettypes "k8s.io/kubelet/pkg/types"
	"k8s.io/utils/dump"
)

// The annotations upstream's kubelet puts on a container and reads back
// to know it (names as upstream; kept for cri-tools and log collectors).
const (
	PodDeletionGracePeriodAnnotation    = "io.kubernetes.pod.deletionGracePeriod"
	PodTerminationGracePeriodAnnotation = "io.kubernetes.pod.terminationGracePeriod"

	ContainerHashAnnotation                     = "io.kubernetes.container.hash"
	ContainerRestartCountAnnotation             = "io.kubernetes.container.restartCount"
	ContainerTerminationMessagePathAnnotation   = "io.kubernetes.container.terminationMessagePath"
	ContainerTerminationMessagePolicyAnnotation = "io.kubernetes.container.terminationMessagePolicy"
	ContainerPreStopHandlerAnnotation           = "io.kubernetes.container.preStopHandler"
	ContainerPortsAnnotation                    = "io.kubernetes.container.ports"
)

// PodLabels are the sandbox's labels: the pod's own plus the io.kubernetes.pod.* ones.
func PodLabels(pod *corev1.Pod) map[string]string {
	labels := make(map[string]string, len(pod.Labels)+3)
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[kubelettypes.KubernetesPodNameLabel] = pod.Name
	labels[kubelettypes.KubernetesPodNamespaceLabel] = pod.Namespace
	labels[kubelettypes.KubernetesPodUIDLabel] = string(pod.UID)
	return labels
}

// ContainerLabels identify a container's pod and name (and nothing else:
// labels are immutable in the runtime).
func ContainerLabels(pod *corev1.Pod, c *corev1.Container) map[string]string {
	return map[string]string{
		kubelettypes.KubernetesPodNameLabel:       pod.Name,
		kubelettypes.KubernetesPodNamespaceLabel:  pod.Namespace,
		kubelettypes.KubernetesPodUIDLabel:        string(pod.UID),
		kubelettypes.KubernetesContainerNameLabel: c.Name,
	}
}

// ContainerAnnotations are what the kubelet needs back from a container it
// finds in the runtime: hash, restart count, termination message settings,
// grace periods, preStop handler and ports.
func ContainerAnnotations(pod *corev1.Pod, c *corev1.Container, restartCount int) map[string]string {
	a := map[string]string{
		ContainerHashAnnotation:                     strconv.FormatUint(HashContainer(c), 16),
		ContainerRestartCountAnnotation:             strconv.Itoa(restartCount),
		ContainerTerminationMessagePathAnnotation:   c.TerminationMessagePath,
		ContainerTerminationMessagePolicyAnnotation: string(c.TerminationMessagePolicy),
	}
	if pod.DeletionGracePeriodSeconds != nil {
		a[PodDeletionGracePeriodAnnotation] = strconv.FormatInt(*pod.DeletionGracePeriodSeconds, 10)
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		a[PodTerminationGracePeriodAnnotation] = strconv.FormatInt(*pod.Spec.TerminationGracePeriodSeconds, 10)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if raw, err := json.Marshal(c.Lifecycle.PreStop); err != nil {
			klog.ErrorS(err, "Unable to marshal lifecycle PreStop handler for container", "containerName", c.Name, "pod", klog.KObj(pod))
		} else {
			a[ContainerPreStopHandlerAnnotation] = string(raw)
		}
	}
	if len(c.Ports) > 0 {
		if raw, err := json.Marshal(c.Ports); err != nil {
			klog.ErrorS(err, "Unable to marshal container ports for container", "containerName", c.Name, "pod", klog.KObj(pod))
		} else {
			a[ContainerPortsAnnotation] = string(raw)
		}
	}
	return a
}

// HashContainer is upstream's container hash: of the fields whose change
// means a new container (name and image), so a kubelet reading an upstream
// kubelet's containers agrees on which are current.
func HashContainer(c *corev1.Container) uint64 {
	fields, _ := json.Marshal(map[string]string{"name": c.Name, "image": c.Image})
	h := fnv.New32a()
	_, _ = h.Write([]byte(dump.ForHash(fields)))
	return uint64(h.Sum32())
}
