package pod

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// PrepareForCreate is the pods' create hook: a new pod is Pending, with the
// QoS class its resources give it, as upstream's strategy sets.
func PrepareForCreate(obj runtime.Object) {
	pod := obj.(*corev1.Pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: QOSClass(&pod.Spec)}
}

// QOSClass classifies a pod spec as upstream does: BestEffort without any
// cpu or memory request or limit, Guaranteed when every container limits
// both and requests equal limits, Burstable otherwise.
func QOSClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	containers := append(append([]corev1.Container{}, spec.Containers...), spec.InitContainers...)
	if spec.Resources != nil {
		containers = append(containers, corev1.Container{Resources: *spec.Resources})
	}
	compute := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}
	any, guaranteed := false, true
	for _, c := range containers {
		for _, name := range compute {
			req, hasReq := nonZero(c.Resources.Requests, name)
			limit, hasLimit := nonZero(c.Resources.Limits, name)
			if hasReq || hasLimit {
				any = true
			}
			if !hasLimit || (hasReq && req.Cmp(limit) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func nonZero(list corev1.ResourceList, name corev1.ResourceName) (resource.Quantity, bool) {
	q, ok := list[name]
	return q, ok && !q.IsZero()
}

// PrepareForStatusUpdate is upstream's pods/status rule beyond keeping the
// spec: owner references stay (old kubelets corrupt them), an omitted QoS
// class or observedGeneration (of the pod or a condition) keeps the stored
// one.
func PrepareForStatusUpdate(obj, old runtime.Object) {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	pod.OwnerReferences = oldPod.OwnerReferences
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = oldPod.Status.QOSClass
	}
	if pod.Status.ObservedGeneration == 0 {
		pod.Status.ObservedGeneration = oldPod.Status.ObservedGeneration
	}
	// Conditions may repeat a type: match them in order per type.
	gens := map[corev1.PodConditionType][]int64{}
	for _, c := range oldPod.Status.Conditions {
		gens[c.Type] = append(gens[c.Type], c.ObservedGeneration)
	}
	for i, c := range pod.Status.Conditions {
		var g int64
		if list := gens[c.Type]; len(list) > 0 {
			g, gens[c.Type] = list[0], list[1:]
		}
		if c.ObservedGeneration == 0 {
			pod.Status.Conditions[i].ObservedGeneration = g
		}
	}
}
