// Package podutil holds the pod states the workload controllers share, as
// upstream's pkg/api/v1/pod and controller_utils define them: the Ready
// condition, availability after minReadySeconds, and active, terminating
// and terminal pods.
package podutil

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// GetPodCondition is the pod's condition of type t, nil if it has none.
func GetPodCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// GetPodReadyCondition is the pod's Ready condition, nil if it has none.
func GetPodReadyCondition(pod *corev1.Pod) *corev1.PodCondition {
	return GetPodCondition(pod, corev1.PodReady)
}

// IsPodReady: the pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	c := GetPodReadyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodAvailable is upstream's: ready, and for at least minReadySeconds
// at now (ready since exactly now minus minReadySeconds counts).
func IsPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := GetPodReadyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

// IsPodTerminal: the pod succeeded or failed.
func IsPodTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// IsPodActive is upstream's controller.IsPodActive: neither terminal nor
// being deleted.
func IsPodActive(pod *corev1.Pod) bool {
	return !IsPodTerminal(pod) && pod.DeletionTimestamp == nil
}

// IsPodTerminating is upstream's controller.IsPodTerminating: being
// deleted and not terminal yet.
func IsPodTerminating(pod *corev1.Pod) bool {
	return !IsPodTerminal(pod) && pod.DeletionTimestamp != nil
}
