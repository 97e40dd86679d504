package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// streamOptions are exec's and attach's query: stdin, stdout, stderr,
// tty ("1" as the apiserver sends them; "true" too).
type streamOptions struct {
	stdin, stdout, stderr, tty bool
}

func flag(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v == "1" || v == "true"
}

// newStreamOptions is upstream's remotecommand NewOptions: at least one
// stream; stderr is merged into a TTY.
func newStreamOptions(r *http.Request) (streamOptions, error) {
	o := streamOptions{stdin: flag(r, corev1.ExecStdinParam), stdout: flag(r, corev1.ExecStdoutParam), stderr: flag(r, corev1.ExecStderrParam), tty: flag(r, corev1.ExecTTYParam)}
	if o.tty && o.stderr {
		o.stderr = false
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// streamTarget is the pod and its container a streaming request names,
// checked against the kubelet's pods and the runtime's running
// containers.
func (s *Server) streamTarget(w http.ResponseWriter, r *http.Request) (*corev1.Pod, string, bool) {
	pod, ok := s.pod(r.PathValue("podNamespace"), r.PathValue("podID"))
	if !ok {
		writeError(w, http.StatusNotFound, "pod does not exist")
		return nil, "", false
	}
	name := r.PathValue("containerName")
	if uid := types.UID(r.PathValue("uid")); uid != "" && uid != pod.UID {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container not found (%q)", name))
		return nil, "", false
	}
	id, err := s.runningContainer(r.Context(), pod.UID, name)
	if err != nil {
		writeRuntimeError(w, err)
		return nil, "", false
	}
	if id == "" {
		// Upstream answers 500 here; the container not running is a 404.
		writeError(w, http.StatusNotFound, fmt.Sprintf("container not found (%q)", name))
		return nil, "", false
	}
	return pod, id, true
}

// getExec is /exec/{namespace}/{pod}[/{uid}]/{container}?command=...:
// the runtime's streaming URL for the exec, proxied.
func (s *Server) getExec(w http.ResponseWriter, r *http.Request) {
	opts, err := newStreamOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	_, id, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	resp, err := s.cfg.Runtime.RuntimeService().Exec(r.Context(), &runtimeapi.ExecRequest{
		ContainerId: id,
		Cmd:         r.URL.Query()[corev1.ExecCommandParam],
		Tty:         opts.tty,
		Stdin:       opts.stdin,
		Stdout:      opts.stdout,
		Stderr:      opts.stderr,
	})
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	s.proxyStream(w, r, resp.GetUrl(), opts)
}

// getAttach is /attach/...: the TTY setting is the container's, as a
// running process cannot change it.
func (s *Server) getAttach(w http.ResponseWriter, r *http.Request) {
	opts, err := newStreamOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pod, id, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	spec := containerSpec(pod, r.PathValue("containerName"))
	if spec == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %s not found in pod %s_%s", r.PathValue("containerName"), pod.Name, pod.Namespace))
		return
	}
	opts.tty = spec.TTY
	resp, err := s.cfg.Runtime.RuntimeService().Attach(r.Context(), &runtimeapi.AttachRequest{
		ContainerId: id,
		Stdin:       opts.stdin,
		Stdout:      opts.stdout,
		Stderr:      opts.stderr,
		Tty:         opts.tty,
	})
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	s.proxyStream(w, r, resp.GetUrl(), opts)
}

// proxyStream hands the upgraded connection to the runtime's streaming
// server: SPDY (and the old websocket protocols, which the runtime
// speaks) as is, v5.channel.k8s.io websockets translated to SPDY as
// upstream's ExtendWebSocketsToKubelet.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, rawURL string, opts streamOptions) {
	loc, err := url.Parse(rawURL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("the runtime's streaming URL %q: %v", rawURL, err))
		return
	}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		translateWebSocket(w, r, loc, opts)
		return
	}
	upgradeProxy{location: loc}.ServeHTTP(w, r)
}

// getPortForward is /portForward/{namespace}/{pod}[/{uid}]: the
// runtime's port-forward URL of the pod's sandbox, proxied; websocket
// clients tunnelling SPDY (portforward.k8s.io over websockets) are
// unwrapped first.
func (s *Server) getPortForward(w http.ResponseWriter, r *http.Request) {
	tunnel := wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
	var ports []int32
	if !tunnel && wsstream.IsWebSocketRequest(r) {
		var err error
		if ports, err = websocketPorts(r); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	pod, ok := s.pod(r.PathValue("podNamespace"), r.PathValue("podID"))
	if !ok {
		writeError(w, http.StatusNotFound, "pod does not exist")
		return
	}
	if uid := types.UID(r.PathValue("uid")); uid != "" && uid != pod.UID {
		writeError(w, http.StatusNotFound, "pod not found")
		return
	}
	ids, err := s.sandboxIDs(r.Context(), pod.UID)
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	if len(ids) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pod not found (%q)", pod.Name+"_"+pod.Namespace))
		return
	}
	resp, err := s.cfg.Runtime.RuntimeService().PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: ids[0], Port: ports})
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	loc, err := url.Parse(resp.GetUrl())
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("the runtime's streaming URL %q: %v", resp.GetUrl(), err))
		return
	}
	if tunnel {
		tunnelWebSocket(w, r, loc)
		return
	}
	upgradeProxy{location: loc}.ServeHTTP(w, r)
}

// websocketPorts is upstream's V4 port-forward options: the "port" query
// of a websocket request.
func websocketPorts(r *http.Request) ([]int32, error) {
	values := r.URL.Query()[corev1.PortHeader]
	if len(values) == 0 {
		return nil, fmt.Errorf("query parameter %q is required", corev1.PortHeader)
	}
	var ports []int32
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			port, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("unable to parse %q as a port: %v", p, err)
			}
			if port < 1 {
				return nil, fmt.Errorf("port %q must be > 0", p)
			}
			ports = append(ports, int32(port))
		}
	}
	return ports, nil
}

// getRun is POST /run/{namespace}/{pod}[/{uid}]/{container}?cmd=a b c:
// the command's combined output, as upstream's RunInContainer.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	_, id, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	cmd := strings.Split(r.URL.Query().Get("cmd"), " ")
	stdout, stderr, err := s.cfg.Runtime.RuntimeService().ExecSync(r.Context(), id, cmd, 0)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := append(stdout, stderr...)
	if out == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// writeRuntimeError maps CRI errors as upstream's streaming.WriteError:
// NotFound 404, ResourceExhausted 429, the rest 500.
func writeRuntimeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch st, _ := status.FromError(rootCause(err)); st.Code() {
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.ResourceExhausted:
		w.Header().Set("Retry-After", "60")
		code = http.StatusTooManyRequests
	}
	if errors.Is(err, errNoRuntime) {
		code = http.StatusServiceUnavailable
	}
	writeError(w, code, err.Error())
}

// rootCause is the innermost wrapped error (the gRPC status).
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
