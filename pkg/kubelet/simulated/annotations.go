package simulated

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The annotations that steer a simulated pod.
const (
	// AnnotationReady "false" keeps the pod Running but not Ready.
	AnnotationReady = "skiff.dev/sim-ready"
	// AnnotationExitAfter makes every container exit this long after it
	// started (a Go duration).
	AnnotationExitAfter = "skiff.dev/sim-exit-after"
	// AnnotationExitCode is the containers' exit code (0-255, default 0).
	AnnotationExitCode = "skiff.dev/sim-exit-code"
	// AnnotationUsage is the usage reported for metrics, name=quantity
	// pairs.
	AnnotationUsage = "skiff.dev/sim-usage"
	// ReasonFailedSimulation is the Warning event of a bad annotation.
	ReasonFailedSimulation = "FailedSimulation"
)

// behaviour is what a pod's annotations ask of the simulation.
type behaviour struct {
	ready bool
	// exitAfter 0: the containers never exit.
	exitAfter time.Duration
	exitCode  int32
	usage     corev1.ResourceList
}

// parseBehaviour reads the annotations; a bad value is reported in
// problems and its default used.
func parseBehaviour(annotations map[string]string) (b behaviour, problems []string) {
	b.ready = true
	bad := func(key, value string, err error, fallback string) {
		problems = append(problems, fmt.Sprintf("annotation %s: %q: %v; using %s", key, value, err, fallback))
	}
	if v, ok := annotations[AnnotationReady]; ok {
		ready, err := strconv.ParseBool(v)
		if err != nil {
			bad(AnnotationReady, v, err, "true")
		} else {
			b.ready = ready
		}
	}
	if v, ok := annotations[AnnotationExitAfter]; ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(AnnotationExitAfter, v, err, "never exit")
		case d <= 0:
			bad(AnnotationExitAfter, v, fmt.Errorf("must be positive"), "never exit")
		default:
			b.exitAfter = d
		}
	}
	if v, ok := annotations[AnnotationExitCode]; ok {
		code, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err != nil:
			bad(AnnotationExitCode, v, err, "0")
		case code < 0 || code > 255:
			bad(AnnotationExitCode, v, fmt.Errorf("must be 0 to 255"), "0")
		default:
			b.exitCode = int32(code)
		}
	}
	if v, ok := annotations[AnnotationUsage]; ok {
		usage, err := ParseCapacity(v)
		if err != nil {
			bad(AnnotationUsage, v, err, "no usage")
		} else {
			b.usage = usage
		}
	}
	return b, problems
}

// Ready is a simulated container's readiness: as skiff.dev/sim-ready says.
func Ready(pod *corev1.Pod, _ string) bool {
	ready, err := strconv.ParseBool(pod.Annotations[AnnotationReady])
	return err != nil || ready
}
