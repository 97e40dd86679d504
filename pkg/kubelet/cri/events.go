package cri

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Upstream kubelet's container event reasons (pkg/kubelet/events).
const (
	eventCreated                = "Created"
	eventStarted                = "Started"
	eventKilling                = "Killing"
	eventFailedPostStartHook    = "FailedPostStartHook"
	eventFailedPreStopHook      = "FailedPreStopHook"
	eventFailedCreatePodSandBox = "FailedCreatePodSandBox"
	eventSandboxChanged         = "SandboxChanged"
	eventFailedMount            = "FailedMount"
)

// containerRef is the pod with the container's field path, as upstream
// names the object of a container's events.
func containerRef(pod *corev1.Pod, c *corev1.Container) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion, FieldPath: fieldPath(pod, c.Name),
	}
}

func podRef(pod *corev1.Pod) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion,
	}
}

func fieldPath(pod *corev1.Pod, name string) string {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return fmt.Sprintf("spec.ephemeralContainers{%s}", name)
		}
	}
	return fmt.Sprintf("spec.containers{%s}", name)
}

// containerEvent records an event on the container, its runtime id
// replaced by its name (ids make every event distinct).
func (r *Runtime) containerEvent(pod *corev1.Pod, c *corev1.Container, id, eventType, reason, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	if id != "" {
		msg = strings.ReplaceAll(msg, id, c.Name)
	}
	r.cfg.Recorder.Event(containerRef(pod, c), eventType, reason, msg)
}
