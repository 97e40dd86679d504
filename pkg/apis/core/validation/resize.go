package validation

import (
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/pkg/kubelet/qos"
)

// resizableResources are the only resources an in-place resize changes.
var resizableResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

// ValidatePodResize validates a write to pods/resize as upstream's
// ValidatePodResize: the pod stays valid, keeps its QoS class, its
// containers (names and order), and their requests and limits of cpu and
// memory (which may change, not go); nothing else changes, resize
// policies included. pod is the stored pod with the request's resources
// and resize policies.
func ValidatePodResize(pod, old *corev1.Pod) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := validatePodSpecForPod(pod)
	if _, ok := old.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return append(errs, field.Forbidden(field.NewPath(""), "static pods cannot be resized"))
	}
	if old.Spec.OS != nil && old.Spec.OS.Name == corev1.Windows {
		return append(errs, field.Forbidden(field.NewPath(""), "windows pods cannot be resized"))
	}
	if qos.PodQOS(old) != qos.ComputePodQOS(pod) {
		errs = append(errs, field.Invalid(specPath, pod.Status.QOSClass, "Pod QOS Class may not change as a result of resizing"))
	}
	if !resizeSupported(old) {
		errs = append(errs, field.Forbidden(specPath, "Pod running on node without support for resize"))
	}
	if order := validateResizeOrdering(pod, old, specPath); len(order) > 0 {
		return append(errs, order...)
	}
	for i := range old.Spec.Containers {
		p := specPath.Child("containers").Index(i)
		errs = append(errs, validateResourceRemoval(&pod.Spec.Containers[i].Resources, &old.Spec.Containers[i].Resources, p.Child("resources"))...)
	}
	for i := range old.Spec.InitContainers {
		if !restartableInit(&old.Spec.InitContainers[i]) {
			continue
		}
		p := specPath.Child("initContainers").Index(i)
		errs = append(errs, validateResourceRemoval(&pod.Spec.InitContainers[i].Resources, &old.Spec.InitContainers[i].Resources, p.Child("resources"))...)
	}
	// With the cpu and memory put back, the spec must be the stored one:
	// as upstream's, a resize changes no resize policy either.
	munged := pod.Spec.DeepCopy()
	for i := range munged.Containers {
		restoreResizable(&munged.Containers[i], &old.Spec.Containers[i])
	}
	for i := range munged.InitContainers {
		if restartableInit(&old.Spec.InitContainers[i]) {
			restoreResizable(&munged.InitContainers[i], &old.Spec.InitContainers[i])
		}
	}
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		errs = append(errs, field.Forbidden(specPath, "only cpu and memory resources are mutable"))
	}
	return errs
}

// resizeSupported: a running container reports its resources (the node
// resizes), or none runs and nothing tells otherwise, as upstream's
// version-skew rule.
func resizeSupported(pod *corev1.Pod) bool {
	for _, c := range pod.Status.ContainerStatuses {
		if c.State.Running != nil {
			return c.Resources != nil
		}
	}
	return true
}

func validateResizeOrdering(pod, old *corev1.Pod, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, list := range []struct {
		name     string
		new, old []corev1.Container
	}{{"containers", pod.Spec.Containers, old.Spec.Containers}, {"initContainers", pod.Spec.InitContainers, old.Spec.InitContainers}} {
		if len(list.new) != len(list.old) {
			errs = append(errs, field.Forbidden(specPath.Child(list.name), "containers may not be added or removed on resize"))
			continue
		}
		for i := range list.new {
			if list.new[i].Name != list.old[i].Name {
				errs = append(errs, field.Forbidden(specPath.Child(list.name).Index(i).Child("name"), "containers may not be renamed or reordered on resize"))
			}
		}
	}
	return errs
}

// validateResourceRemoval: a cpu or memory request or limit once set
// stays set (one error for the requests, one for the limits, as upstream).
func validateResourceRemoval(req, old *corev1.ResourceRequirements, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	removed := func(list, oldList corev1.ResourceList) bool {
		for _, name := range resizableResources {
			if _, had := oldList[name]; had {
				if _, has := list[name]; !has {
					return true
				}
			}
		}
		return false
	}
	if removed(req.Requests, old.Requests) {
		errs = append(errs, field.Forbidden(fldPath.Child("requests"), "resource requests cannot be removed"))
	}
	if removed(req.Limits, old.Limits) {
		errs = append(errs, field.Forbidden(fldPath.Child("limits"), "resource limits cannot be removed"))
	}
	return errs
}

// restoreResizable puts old's cpu and memory requests and limits back
// into c, keeping c's other resources.
func restoreResizable(c, old *corev1.Container) {
	c.Resources.Requests = restoreCPUMemory(c.Resources.Requests, old.Resources.Requests)
	c.Resources.Limits = restoreCPUMemory(c.Resources.Limits, old.Resources.Limits)
}

func restoreCPUMemory(list, old corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range list {
		out[name] = q
	}
	for _, name := range resizableResources {
		delete(out, name)
		if q, ok := old[name]; ok {
			out[name] = q
		}
	}
	if len(out) == 0 && old == nil {
		return nil
	}
	return out
}

func restartableInit(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}
