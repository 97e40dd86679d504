package cri

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// lifecycleUserAgent is upstream's User-Agent for httpGet hooks.
const lifecycleUserAgent = "kube-lifecycle/1.37"

var hookHTTPClient = &http.Client{
	Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // hooks skip verification as upstream's
		DisableKeepAlives: true,
		Proxy:             http.ProxyURL(nil),
	},
	// Redirects are followed to the same host only, as upstream's probes.
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("stopped after 10 redirects")
		}
		if req.URL.Hostname() != via[0].URL.Hostname() {
			return http.ErrUseLastResponse
		}
		return nil
	},
}

// runHook runs a lifecycle handler for the container; the message says
// what failed, as upstream's handler runner words it.
func (r *Runtime) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, containerID string, h *corev1.LifecycleHandler, podIPs []string) (string, error) {
	switch {
	case h.Exec != nil:
		stdout, stderr, code, err := r.ExecSync(ctx, containerID, h.Exec.Command, 0)
		output := string(stdout) + string(stderr)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, stderr)
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, c.Name, podString(pod), err, output), err
		}
		return "", nil
	case h.HTTPGet != nil:
		if err := runHTTPHook(ctx, c, h.HTTPGet, podIPs); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v",
				h.HTTPGet.Path, c.Name, podString(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
			err := fmt.Errorf("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v",
				h.Sleep.Seconds, c.Name, podString(pod), err), err
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
			return "", nil
		}
	default:
		err := fmt.Errorf("invalid handler: %v", h)
		return fmt.Sprintf("Cannot run handler: %v", err), err
	}
}

func runHTTPHook(ctx context.Context, c *corev1.Container, get *corev1.HTTPGetAction, podIPs []string) error {
	host := get.Host
	if host == "" {
		if len(podIPs) == 0 {
			return fmt.Errorf("failed to find networking container: the pod has no IP")
		}
		host = podIPs[0]
	}
	port, err := resolvePort(get.Port, c)
	if err != nil {
		return err
	}
	scheme := strings.ToLower(string(get.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := get.Path
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", lifecycleUserAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range get.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := hookHTTPClient.Do(req)
	if err != nil && scheme == "https" && strings.Contains(err.Error(), "server gave HTTP response") {
		// An HTTPS hook answered in plain HTTP: upstream retries with HTTP.
		req = req.Clone(ctx)
		req.URL.Scheme = "http"
		resp, err = hookHTTPClient.Do(req)
	}
	if resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
	}
	return err
}

// resolvePort is a port number or the number of the container's named port.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port number: %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %v in %v", p, c)
}

// podString names a pod as upstream's format.Pod: name_namespace(uid).
func podString(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
