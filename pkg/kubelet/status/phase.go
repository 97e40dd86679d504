package status

import corev1 "k8s.io/api/core/v1"

// shouldRestart tells whether a container that exited with code restarts:
// sidecars always, the others as the pod's restartPolicy says.
func shouldRestart(pod *corev1.Pod, c *corev1.Container, code int32) bool {
	if restartable(c) {
		return true
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	default:
		return true
	}
}

// ShouldRestart is shouldRestart for runtimes.
func ShouldRestart(pod *corev1.Pod, c *corev1.Container, code int32) bool {
	return shouldRestart(pod, c, code)
}

// Phase is the pod's phase from its container statuses, as upstream's
// kubelet getPhase: Pending until the init containers completed and every
// container started, Running while one runs or restarts, Succeeded or
// Failed when all exited for good. terminal: the pod is stopped for good;
// initialized: it was initialized before (sidecars restarting do not make
// it Pending again).
func Phase(pod *corev1.Pod, initStatuses, statuses []corev1.ContainerStatus, terminal, initialized bool) corev1.PodPhase {
	pendingInit, pendingSidecars, failedInitFinal := 0, 0, 0
	unknown, running, waiting, stopped, stoppedFinal, succeeded := 0, 0, 0, 0, 0, 0
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		s, ok := find(initStatuses, spec.Name)
		if restartable(spec) {
			switch {
			case !ok:
				unknown++
				pendingSidecars++
			case s.State.Running != nil:
				if s.Started == nil || !*s.Started {
					pendingSidecars++
				}
				running++
			case s.State.Terminated != nil:
				// A stopped sidecar counts for nothing.
			case s.State.Waiting != nil && s.LastTerminationState.Terminated == nil:
				pendingSidecars++
				waiting++
			}
			continue
		}
		switch {
		case !ok:
			pendingInit++
		case s.State.Running != nil:
			pendingInit++
		case s.State.Terminated != nil:
			if code := s.State.Terminated.ExitCode; code != 0 && !shouldRestart(pod, spec, code) {
				failedInitFinal++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			if code := s.LastTerminationState.Terminated.ExitCode; code != 0 && !shouldRestart(pod, spec, code) {
				failedInitFinal++
			}
		default:
			pendingInit++
		}
	}
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		s, ok := find(statuses, spec.Name)
		switch {
		case !ok:
			unknown++
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			code := s.State.Terminated.ExitCode
			if !shouldRestart(pod, spec, code) {
				stoppedFinal++
			}
			if code == 0 {
				succeeded++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			stopped++
			if !shouldRestart(pod, spec, s.LastTerminationState.Terminated.ExitCode) {
				stoppedFinal++
			}
		case s.State.Waiting != nil:
			waiting++
		default:
			unknown++
		}
	}
	if failedInitFinal > 0 {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0 || (pendingSidecars > 0 && !initialized), waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if terminal || stopped == stoppedFinal {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		// Some are restarting.
		return corev1.PodRunning
	}
	return corev1.PodPending
}
