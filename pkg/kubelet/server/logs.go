package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-client/pkg/logs"
	"k8s.io/klog/v2"
)

// PodLogsDir is where the runtime writes the containers' logs, as
// upstream: <dir>/<namespace>_<name>_<uid>/<container>/<restartCount>.log.
const PodLogsDir = "/var/log/pods"

// getContainerLogs is /containerLogs/{namespace}/{pod}/{container} with
// upstream's PodLogOptions query (follow, previous, tailLines (or tail),
// limitBytes, sinceSeconds, sinceTime, timestamps), errors and status
// codes.
func (s *Server) getContainerLogs(w http.ResponseWriter, r *http.Request) {
	namespace, podName, containerName := r.PathValue("podNamespace"), r.PathValue("podID"), r.PathValue("containerName")
	query := r.URL.Query()
	if tail := query.Get("tail"); tail != "" {
		query.Set("tailLines", tail)
		if tail == "all" {
			query.Del("tailLines")
		}
	}
	opts, err := parseLogOptions(query)
	if err != nil {
		writeError(w, http.StatusBadRequest, `{"message": "Unable to decode query."}`)
		return
	}
	if !validLogOptions(opts) {
		writeError(w, http.StatusUnprocessableEntity, `{"message": "Invalid request."}`)
		return
	}
	if opts.Stream != nil && *opts.Stream != corev1.LogStreamAll {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unable to return the given log stream: %q. Please enable PodLogsQuerySplitStreams feature gate in kubelet", *opts.Stream))
		return
	}
	pod, ok := s.pod(namespace, podName)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pod %q does not exist", podName))
		return
	}
	if containerSpec(pod, containerName) == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %q not found in pod %q", containerName, podName))
		return
	}
	if s.cfg.Runtime == nil {
		writeError(w, http.StatusBadRequest, errNoRuntime.Error())
		return
	}
	path, containerID, err := s.logPath(r.Context(), pod, containerName, opts.Previous)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	// Headers now, as upstream's zero-byte write: a follower sees the
	// stream open before the first line.
	if _, err := fw.Write(nil); err != nil {
		return
	}
	if err := logs.ReadLogs(r.Context(), path, containerID, criLogOptions(opts, time.Now()), s.cfg.Runtime.RuntimeService(), fw, fw); err != nil && r.Context().Err() == nil {
		klog.V(2).InfoS("Reading container logs failed", "pod", klog.KObj(pod), "container", containerName, "err", err)
		_, _ = fw.Write([]byte(err.Error()))
	}
}

// parseLogOptions decodes the v1 PodLogOptions query parameters.
func parseLogOptions(q url.Values) (*corev1.PodLogOptions, error) {
	o := &corev1.PodLogOptions{}
	var err error
	boolean := func(key string, dst *bool) {
		if v, ok := q[key]; ok && err == nil && len(v) > 0 {
			// An empty value is true, as the apiserver's query decoding.
			if v[0] == "" {
				*dst = true
				return
			}
			*dst, err = strconv.ParseBool(v[0])
		}
	}
	integer := func(key string) *int64 {
		v, ok := q[key]
		if !ok || err != nil || len(v) == 0 {
			return nil
		}
		var n int64
		n, err = strconv.ParseInt(v[0], 10, 64)
		return &n
	}
	o.Container = q.Get("container")
	boolean("follow", &o.Follow)
	boolean("previous", &o.Previous)
	boolean("timestamps", &o.Timestamps)
	boolean("insecureSkipTLSVerifyBackend", &o.InsecureSkipTLSVerifyBackend)
	o.SinceSeconds = integer("sinceSeconds")
	o.TailLines = integer("tailLines")
	o.LimitBytes = integer("limitBytes")
	if v := q.Get("sinceTime"); v != "" && err == nil {
		var t time.Time
		t, err = time.Parse(time.RFC3339, v)
		mt := metav1.NewTime(t)
		o.SinceTime = &mt
	}
	if v, ok := q["stream"]; ok && len(v) > 0 {
		st := v[0]
		o.Stream = &st
	}
	return o, err
}

// validLogOptions is upstream's ValidatePodLogOptions.
func validLogOptions(o *corev1.PodLogOptions) bool {
	switch {
	case o.TailLines != nil && *o.TailLines < 0:
		return false
	case o.LimitBytes != nil && *o.LimitBytes < 1:
		return false
	case o.SinceSeconds != nil && o.SinceTime != nil:
		return false
	case o.SinceSeconds != nil && *o.SinceSeconds < 1:
		return false
	}
	return true
}

// criLogOptions is upstream's conversion: since is the later of
// sinceSeconds and sinceTime.
func criLogOptions(o *corev1.PodLogOptions, now time.Time) *logs.LogOptions {
	lo := &logs.LogOptions{TailLines: o.TailLines, LimitBytes: o.LimitBytes, Follow: o.Follow, Timestamp: o.Timestamps}
	if o.SinceSeconds != nil {
		lo.Since = now.Add(-time.Duration(*o.SinceSeconds) * time.Second)
	}
	if o.SinceTime != nil && o.SinceTime.After(lo.Since) {
		lo.Since = o.SinceTime.Time
	}
	return lo
}

// logPath picks the container instance from the pod's status as
// upstream's validateContainerLogStatus, then its log file from the
// runtime (the pod's log directory when the runtime no longer has it).
func (s *Server) logPath(ctx context.Context, pod *corev1.Pod, name string, previous bool) (path, containerID string, err error) {
	status, restartCount, found := containerStatus(pod, name)
	if !found {
		return "", "", fmt.Errorf("container %q in pod %q is not available", name, pod.Name)
	}
	last := status.LastTerminationState
	attempt := restartCount
	var cid string
	switch st := status.State; {
	case previous:
		if last.Terminated == nil || last.Terminated.ContainerID == "" {
			return "", "", fmt.Errorf("previous terminated container %q in pod %q not found", name, pod.Name)
		}
		cid, attempt = last.Terminated.ContainerID, restartCount-1
	case st.Running != nil:
		cid = status.ContainerID
	case st.Terminated != nil:
		if st.Terminated.ContainerID != "" {
			cid = st.Terminated.ContainerID
		} else if last.Terminated != nil && last.Terminated.ContainerID != "" {
			cid, attempt = last.Terminated.ContainerID, restartCount-1
		} else {
			return "", "", fmt.Errorf("container %q in pod %q is terminated", name, pod.Name)
		}
	case last.Terminated != nil:
		if last.Terminated.ContainerID == "" {
			return "", "", fmt.Errorf("container %q in pod %q is terminated", name, pod.Name)
		}
		cid, attempt = last.Terminated.ContainerID, restartCount-1
	case st.Waiting != nil:
		switch reason := st.Waiting.Reason; reason {
		case "ErrImagePull":
			return "", "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", name, pod.Name)
		case "ImagePullBackOff":
			return "", "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", name, pod.Name)
		default:
			return "", "", fmt.Errorf("container %q in pod %q is waiting to start: %v", name, pod.Name, reason)
		}
	default:
		return "", "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod.Name)
	}
	// containerd://<id>
	id := cid
	if _, after, ok := strings.Cut(cid, "://"); ok {
		id = after
	}
	if s.cfg.Runtime != nil {
		resp, err := s.cfg.Runtime.RuntimeService().ContainerStatus(ctx, id, false)
		if err == nil && resp.GetStatus().GetLogPath() != "" {
			return resp.GetStatus().GetLogPath(), id, nil
		}
		klog.V(4).InfoS("Failed to get container status", "containerID", cid, "err", err)
	}
	if attempt < 0 {
		attempt = 0
	}
	fallback := filepath.Join(PodLogsDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), name, fmt.Sprintf("%d.log", attempt))
	if _, err := os.Stat(fallback); err == nil {
		return fallback, id, nil
	}
	return "", "", fmt.Errorf("unable to retrieve container logs for %v", cid)
}

// containerStatus is the named container's status among the pod's
// containers, init and ephemeral containers.
func containerStatus(pod *corev1.Pod, name string) (corev1.ContainerStatus, int, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, c := range list {
			if c.Name == name {
				return c, int(c.RestartCount), true
			}
		}
	}
	return corev1.ContainerStatus{}, 0, false
}

// flushWriter sends every write at once (logs -f).
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}
