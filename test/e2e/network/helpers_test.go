package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// proc is a process this test started, its output in a log file.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // valid once exited is closed
}

func startProc(logPath, name string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "==== %s: %s %s\n", time.Now().Format(time.RFC3339), name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// No agent outlives an aborted run (nsenter execs the agent: the same
	// process).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(logf, "==== %s: exited: %v\n", time.Now().Format(time.RFC3339), p.err)
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM and kills the process after timeout.
func (p *proc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("still running %s after SIGTERM, killed", timeout)
	}
}

func (p *proc) tail(n int) string {
	data, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Names the fake upstream resolver answers.
const (
	upstreamName = "outside.example.org"
	upstreamIP   = "192.0.2.77"
)

// startUpstreamDNS runs the resolver skiff server's DNS forwards names
// outside the cluster to: upstreamName A upstreamIP, NXDOMAIN for others.
func startUpstreamDNS() (addr string, stop func(), err error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && strings.EqualFold(r.Question[0].Name, upstreamName+".") {
			if r.Question[0].Qtype == mdns.TypeA {
				m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 30},
					A: net.ParseIP(upstreamIP)}}
			}
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	return pc.LocalAddr().String(), func() { _ = srv.Shutdown() }, nil
}

// eventually polls check every 500ms until it reports nothing wrong, and
// fails the test with its last report after timeout.
func eventually(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problem := check()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, problem)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// namespace creates a namespace with labels and waits for its default
// service account (pods are refused without).
func (c *cluster) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() string {
		if _, err := c.admin.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return "the namespace's default service account: " + err.Error()
		}
		return ""
	})
}

// whoScript makes busybox httpd answer GET /cgi-bin/who with "<hostname>
// <client IP>" on ports 8080 and 8081 (httpd's REMOTE_ADDR is IPv6-mapped
// and bracketed on its dual-stack socket: the plain IPv4 address here).
const whoScript = `mkdir -p /www/cgi-bin && cat > /www/cgi-bin/who <<'EOF'
#!/bin/sh
a=${REMOTE_ADDR#[}; a=${a%]}; a=${a#::ffff:}
printf 'Content-Type: text/plain\r\n\r\n%s %s\n' "$(hostname)" "$a"
EOF
chmod +x /www/cgi-bin/who && httpd -p 8081 -h /www && exec httpd -f -p 8080 -h /www`

// echoPod is a pod on node answering "<hostname> <client IP>" over HTTP
// on ports 8080 and 8081, ready once 8080 accepts connections.
func echoPod(name, node string, labels map[string]string) *corev1.Pod {
	p := basePod(name, node, labels)
	p.Spec.Containers[0].Command = []string{"sh", "-c", whoScript}
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "alt", ContainerPort: 8081}}
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1,
	}
	return p
}

// clientPod is a pod on node with busybox's nc and nslookup to run.
func clientPod(name, node string, labels map[string]string) *corev1.Pod {
	p := basePod(name, node, labels)
	p.Spec.Containers[0].Command = []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"}
	return p
}

func basePod(name, node string, labels map[string]string) *corev1.Pod {
	var zero int64
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			AutomountServiceAccountToken:  new(bool),
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "main", Image: nodeimages.BusyboxImage, ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
}

// createPods creates the pods in ns and waits until every one runs with
// its containers ready, returning them by name.
func (c *cluster) createPods(t *testing.T, ns string, pods ...*corev1.Pod) map[string]*corev1.Pod {
	t.Helper()
	c.startPods(t, ns, pods...)
	got := map[string]*corev1.Pod{}
	for _, p := range pods {
		got[p.Name] = c.waitPodReady(t, ns, p.Name, 90*time.Second)
	}
	return got
}

// startPods creates the pods in ns.
func (c *cluster) startPods(t *testing.T, ns string, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if _, err := c.admin.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s/%s: %v", ns, p.Name, err)
		}
	}
}

func (c *cluster) waitPodReady(t *testing.T, ns, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, timeout, func() string {
		p, err := c.admin.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		pod = p
		if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("pod %s/%s: phase %s, IP %q, %s", ns, name, p.Status.Phase, p.Status.PodIP, containerStates(p))
		}
		for _, cs := range p.Status.ContainerStatuses {
			if !cs.Ready {
				return fmt.Sprintf("pod %s/%s not ready: %s", ns, name, containerStates(p))
			}
		}
		return ""
	})
	return pod
}

func containerStates(p *corev1.Pod) string {
	var parts []string
	for _, c := range p.Status.ContainerStatuses {
		s := fmt.Sprintf("%s(ready=%t restarts=%d", c.Name, c.Ready, c.RestartCount)
		switch {
		case c.State.Waiting != nil:
			s += " waiting " + c.State.Waiting.Reason + ": " + c.State.Waiting.Message
		case c.State.Terminated != nil:
			s += fmt.Sprintf(" terminated %s exit %d", c.State.Terminated.Reason, c.State.Terminated.ExitCode)
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, " ")
}

// createService creates svc in ns and waits until its EndpointSlices list
// ready endpoints (wantReady of them; 0: none).
func (c *cluster) createService(t *testing.T, ns string, svc *corev1.Service, wantReady int) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	created, err := c.admin.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating service %s/%s: %v", ns, svc.Name, err)
	}
	if wantReady == 0 {
		return created
	}
	eventually(t, 30*time.Second, func() string {
		slices, err := c.admin.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
		if err != nil {
			return err.Error()
		}
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					ready++
				}
			}
		}
		if ready != wantReady {
			return fmt.Sprintf("service %s/%s has %d ready endpoints, want %d", ns, svc.Name, ready, wantReady)
		}
		return ""
	})
	return created
}

// execResult is what a command run in a pod printed, and its exit code
// (-1: it did not run to its end).
type execResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r execResult) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout:\n%s--- stderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// exec runs command in the pod's container (through the API server and
// the pod's kubelet, as kubectl exec), giving up after 20s.
func (c *cluster) exec(ns, pod string, command ...string) (execResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := c.admin.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	executor, err := remotecommand.NewSPDYExecutor(c.config, "POST", req.URL())
	if err != nil {
		return execResult{code: -1}, err
	}
	var stdout, stderr bytes.Buffer
	started := time.Now()
	err = executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	r := execResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(started)}
	var exit utilexec.ExitError
	switch {
	case err == nil:
		return r, nil
	case errors.As(err, &exit):
		r.code = exit.ExitStatus()
		return r, nil
	default:
		r.code = -1
		return r, fmt.Errorf("exec in %s/%s: %w", ns, pod, err)
	}
}

// sh runs a shell script in the pod; a failure to run it at all is
// reported as the result's problem.
func (c *cluster) sh(ns, pod, script string) (execResult, string) {
	r, err := c.exec(ns, pod, "sh", "-c", script)
	if err != nil {
		return r, err.Error()
	}
	return r, ""
}

// getWho is a shell function: GET /cgi-bin/who from $1:$2 with a timeout
// of $3 seconds (default 2), printing the answer's last line (or nc's
// error).
const getWho = `getwho() { printf 'GET /cgi-bin/who HTTP/1.0\r\n\r\n' | nc -w "${3:-2}" "$1" "$2" 2>&1 | tail -n 1; }; `

// parallel runs fns at once and waits for all.
func parallel(fns ...func()) {
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn()
		}()
	}
	wg.Wait()
}
