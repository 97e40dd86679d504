package metrics

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/pkg/kubelet/simulated"
)

// Window is the interval simulated usage is reported over: metrics-server's
// default --metric-resolution.
const Window = 15 * time.Second

// simulatedRuntimePrefix starts the containerRuntimeVersion simulated
// nodes report.
const simulatedRuntimePrefix = "skiff-simulated://"

// Simulated is the Source of simulated nodes (skiff agent --simulate):
// their runtime runs nothing, and a running pod uses what its
// skiff.dev/sim-usage annotation says ("cpu=250m,memory=64Mi"; nothing
// without it), split evenly over its containers. A node uses the sum of
// its running pods. Nodes on another runtime report nothing here.
type Simulated struct{}

var _ Source = Simulated{}

// IsSimulated reports whether node is a simulated one.
func IsSimulated(node *corev1.Node) bool {
	return strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, simulatedRuntimePrefix)
}

func running(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil
}

// podUsage is the pod's whole usage, cpu and memory always present.
func podUsage(pod *corev1.Pod) corev1.ResourceList {
	usage := corev1.ResourceList{corev1.ResourceCPU: resource.Quantity{Format: resource.DecimalSI}, corev1.ResourceMemory: resource.Quantity{Format: resource.BinarySI}}
	if v, ok := pod.Annotations[simulated.AnnotationUsage]; ok {
		// A bad annotation is reported by the agent (FailedSimulation):
		// here it means no usage.
		if parsed, err := simulated.ParseCapacity(v); err == nil {
			for k, q := range parsed {
				usage[k] = q
			}
		}
	}
	return usage
}

// NodeUsage sums the node's running pods.
func (Simulated) NodeUsage(node *corev1.Node, pods []*corev1.Pod) (corev1.ResourceList, TimeInfo, bool) {
	if !IsSimulated(node) {
		return nil, TimeInfo{}, false
	}
	total := corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(0, resource.DecimalSI), corev1.ResourceMemory: *resource.NewQuantity(0, resource.BinarySI)}
	for _, pod := range pods {
		if !running(pod) {
			continue
		}
		for k, q := range podUsage(pod) {
			sum := total[k]
			sum.Add(q)
			total[k] = sum
		}
	}
	return total, TimeInfo{Window: Window}, true
}

// PodUsage splits a running pod's usage over its containers.
func (Simulated) PodUsage(node *corev1.Node, pod *corev1.Pod) ([]metricsv1beta1.ContainerMetrics, TimeInfo, bool) {
	if !IsSimulated(node) || !running(pod) || len(pod.Spec.Containers) == 0 {
		return nil, TimeInfo{}, false
	}
	n := int64(len(pod.Spec.Containers))
	containers := make([]metricsv1beta1.ContainerMetrics, n)
	for i, c := range pod.Spec.Containers {
		containers[i] = metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: corev1.ResourceList{}}
	}
	for k, q := range podUsage(pod) {
		// Whole units (bytes) for memory, millis for the rest; the first
		// container takes the remainder.
		total, quantity := q.MilliValue(), func(v int64) resource.Quantity { return *resource.NewMilliQuantity(v, resource.DecimalSI) }
		if k == corev1.ResourceMemory {
			total, quantity = q.Value(), func(v int64) resource.Quantity { return *resource.NewQuantity(v, resource.BinarySI) }
		}
		for i := range containers {
			share := total / n
			if i == 0 {
				share += total % n
			}
			containers[i].Usage[k] = quantity(share)
		}
	}
	return containers, TimeInfo{Window: Window}, true
}
