package prober

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/prober/probe"
)

// Upstream kubelet's event reasons of probes.
const (
	ReasonUnhealthy    = "Unhealthy"
	ReasonProbeWarning = "ProbeWarning"
)

// maxRetries is how often a probe that errored (could not be made) is
// tried again at once, as upstream.
const maxRetries = 3

// runner makes one probe of a container and reports it in events.
type runner struct {
	http     *probe.HTTP
	execer   Execer
	recorder record.EventRecorder
}

// target is what a probe needs of the container instance it probes.
type target struct {
	pod       *corev1.Pod
	container *corev1.Container
	// containerID is <runtime>://<id>.
	containerID string
	podIP       string
}

// run probes t with spec: Success or Failure as the worker counts them;
// an error is a probe that could not be made, whose result is not
// counted.
func (r *runner) run(ctx context.Context, typ ProbeType, spec *corev1.Probe, t target) (Result, error) {
	var (
		res    probe.Result
		output string
		err    error
	)
	for range maxRetries {
		res, output, err = r.once(ctx, spec, t)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	logger := klog.FromContext(ctx).WithValues("probeType", typ, "pod", klog.KObj(t.pod), "podUID", t.pod.UID, "containerName", t.container.Name)
	switch {
	case err != nil:
		logger.V(1).Info("Probe errored", "probeResult", res, "err", err)
		r.event(t, corev1.EventTypeWarning, ReasonUnhealthy, fmt.Sprintf("%s probe errored and resulted in %s state: %s", typ, res, err))
		return Failure, err
	case res == probe.Success:
		logger.V(3).Info("Probe succeeded")
		return Success, nil
	case res == probe.Warning:
		logger.V(3).Info("Probe succeeded with a warning", "output", output)
		r.event(t, corev1.EventTypeWarning, ReasonProbeWarning, fmt.Sprintf("%s probe warning: %s", typ, output))
		return Success, nil
	case res == probe.Failure:
		logger.V(1).Info("Probe failed", "output", output)
		r.event(t, corev1.EventTypeWarning, ReasonUnhealthy, fmt.Sprintf("%s probe failed: %s", typ, output))
		return Failure, nil
	}
	logger.V(1).Info("Probe unknown without error", "probeResult", res)
	return Failure, nil
}

func (r *runner) once(ctx context.Context, spec *corev1.Probe, t target) (probe.Result, string, error) {
	timeout := time.Duration(spec.TimeoutSeconds) * time.Second
	switch {
	case spec.Exec != nil:
		cmd := expandStatic(spec.Exec.Command, t.container.Env)
		return probe.Exec(ctx, r.execer, runtimeID(t.containerID), cmd, timeout)
	case spec.HTTPGet != nil:
		req, err := probe.NewHTTPRequest(spec.HTTPGet, t.container, t.podIP)
		if err != nil {
			return probe.Unknown, "", err
		}
		return r.http.Probe(req.WithContext(ctx), timeout)
	case spec.TCPSocket != nil:
		port, err := probe.ResolvePort(spec.TCPSocket.Port, t.container)
		if err != nil {
			return probe.Unknown, "", err
		}
		host := spec.TCPSocket.Host
		if host == "" {
			host = t.podIP
		}
		return probe.TCP(host, port, timeout)
	case spec.GRPC != nil:
		service := ""
		if spec.GRPC.Service != nil {
			service = *spec.GRPC.Service
		}
		return probe.GRPC(t.podIP, service, int(spec.GRPC.Port), timeout)
	}
	return probe.Unknown, "", errors.New("missing probe handler for " + t.pod.Namespace + "/" + t.pod.Name + ":" + t.container.Name)
}

// event records on the container, as upstream's container events: the
// pod with the container's fieldPath.
func (r *runner) event(t target, eventType, reason, message string) {
	if r.recorder == nil {
		return
	}
	r.recorder.Event(containerRef(t.pod, t.container.Name), eventType, reason, message)
}

func containerRef(pod *corev1.Pod, name string) *corev1.ObjectReference {
	path := fmt.Sprintf("spec.containers{%s}", name)
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			path = fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return &corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion, FieldPath: path,
	}
}

// runtimeID is the runtime's own ID of "<runtime>://<id>".
func runtimeID(containerID string) string {
	if _, id, ok := strings.Cut(containerID, "://"); ok {
		return id
	}
	return containerID
}
