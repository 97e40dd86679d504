package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// startRestartingPods starts pod "crash", which prints a line and exits 3
// a second later, forever (for the crash-loop back-off checks), and pod
// "restarter", which prints a line of its own and exits once, then runs
// (for `logs --previous`). Their checks need them to have restarted: they
// start first and age while other subtests run.
func (ln *localNode) startRestartingPods(t *testing.T) {
	ln.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: crash
    image: %[1]s
    command: [sh, -c, 'echo crashing; sleep 1; exit 3']
---
apiVersion: v1
kind: Pod
metadata: {name: restarter}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: restarter
    image: %[1]s
    command: [sh, -c, 'echo "boot $(cat /proc/sys/kernel/random/uuid)"; if [ -e /data/once ]; then exec sleep 3600; fi; touch /data/once; exit 1']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - {name: data, emptyDir: {}}
`, nodeimages.BusyboxImage))
}

// testKubectl: logs, exec, cp, port-forward and attach with each kubectl
// of ln.kubectls (SPDY for the old ones, WebSocket for the new ones).
func (ln *localNode) testKubectl(t *testing.T) {
	ln.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: logger}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: logger
    image: %[1]s
    command: [sh, -c, 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 1; done']
---
apiVersion: v1
kind: Pod
metadata: {name: attach}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: attach
    image: %[1]s
    stdin: true
    command: [sh, -c, 'while read line; do echo "got $line"; done']
---
apiVersion: v1
kind: Pod
metadata: {name: attach-tty}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: shell
    image: %[1]s
    stdin: true
    tty: true
    command: [sh]
`, nodeimages.BusyboxImage))
	for _, name := range []string{"logger", "attach", "attach-tty"} {
		ln.waitPod(t, name, 60*time.Second, podRunning)
	}
	if _, err := ln.admin.CoreV1().Pods(ln.k.ns).Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("pod web (of the Pod subtest) is missing: %v", err)
	}
	for _, bin := range ln.kubectls {
		k := ln.kubectlFor(t, bin)
		t.Run(bin.version, func(t *testing.T) {
			t.Run("Logs", func(t *testing.T) { ln.testLogs(t, k) })
			t.Run("Exec", func(t *testing.T) { testExec(t, k) })
			t.Run("ExecTTY", func(t *testing.T) { testExecTTY(t, k) })
			t.Run("Cp", func(t *testing.T) { testCp(t, k) })
			t.Run("PortForward", func(t *testing.T) { testPortForward(t, k) })
			t.Run("Attach", func(t *testing.T) { testAttach(t, k) })
			t.Run("AttachTTY", func(t *testing.T) { testAttachTTY(t, k) })
			t.Run("Debug", func(t *testing.T) { ln.testDebug(t, k) })
		})
	}
	t.Run("EphemeralContainers", ln.testEphemeralContainers)
}

// kubectlFor is ln.k with another kubectl binary (and its own HOME, so its
// own discovery cache).
func (ln *localNode) kubectlFor(t *testing.T, bin kubectlBinary) *kctl {
	k := *ln.k
	k.bin, k.home = bin, t.TempDir()
	return &k
}

var logLine = regexp.MustCompile(`^line (\d+)$`)

// testLogs: kubectl logs with --tail, --timestamps, -f and --previous.
func (ln *localNode) testLogs(t *testing.T, k *kctl) {
	assertContains(t, k.ok(t, "logs", "web"), "hello from web")

	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "logs", "logger", "--tail=2")
		lines := strings.Split(out, "\n")
		if len(lines) != 2 || !logLine.MatchString(lines[0]) || !logLine.MatchString(lines[1]) {
			return fmt.Sprintf("logs --tail=2: %q, want two lines", out)
		}
		return ""
	})
	last := k.ok(t, "logs", "logger", "--tail=1", "--timestamps")
	ts, line, _ := strings.Cut(last, " ")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !logLine.MatchString(line) {
		t.Errorf("logs --timestamps --tail=1: %q, want an RFC 3339 time and a line", last)
	}
	if d := time.Since(parseTime(ts)); d < 0 || d > 30*time.Second {
		t.Errorf("logs --timestamps: time %s is %s from now", ts, d)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(line, "line "))

	// -f prints the lines written after it started.
	follow := k.start(t, "logs", "-f", "logger", "--tail=1")
	follow.waitLine(t, fmt.Sprintf("a line after line %d", n+1), func(f []string) bool {
		if len(f) != 2 || f[0] != "line" {
			return false
		}
		m, err := strconv.Atoi(f[1])
		return err == nil && m > n+1
	})

	// --previous: the log of the container before the last restart.
	ln.waitPod(t, "restarter", 60*time.Second, func(p *corev1.Pod) string {
		if c := p.Status.ContainerStatuses; len(c) == 0 || c[0].RestartCount != 1 || c[0].State.Running == nil {
			return "want running after one restart: " + containerStates(p)
		}
		return ""
	})
	previous := k.ok(t, "logs", "restarter", "--previous")
	current := k.ok(t, "logs", "restarter")
	if !strings.HasPrefix(previous, "boot ") || !strings.HasPrefix(current, "boot ") || previous == current {
		t.Errorf("logs --previous %q, logs %q: want two different boot lines", previous, current)
	}
	out := k.fail(t, "logs", "logger", "--previous")
	assertContains(t, out, `previous terminated container "logger" in pod "logger" not found`)
}

func parseTime(s string) time.Time {
	ts, _ := time.Parse(time.RFC3339Nano, s)
	return ts
}

// testExec: kubectl exec with arguments, with stdin, and its exit code.
func testExec(t *testing.T, k *kctl) {
	out := k.ok(t, "exec", "web", "--", "ls", "/")
	for _, name := range []string{"bin", "etc", "proc"} {
		if !regexp.MustCompile(`(?m)^` + name + `$`).MatchString(out) {
			t.Errorf("exec web -- ls /: no %s in %q", name, out)
		}
	}
	if got := k.okStdin(t, "hello from stdin\n", "exec", "-i", "web", "--", "tr", "a-z", "A-Z"); got != "HELLO FROM STDIN" {
		t.Errorf("exec -i tr: %q", got)
	}
	out = k.fail(t, "exec", "web", "--", "sh", "-c", "echo to-stderr >&2; exit 7")
	assertContains(t, out, "to-stderr")
	assertContains(t, out, "command terminated with exit code 7")
}

// testExecTTY: kubectl exec -it under a pty gets a pty in the container.
func testExecTTY(t *testing.T, k *kctl) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) is not installed: no pty to run kubectl exec -it under")
	}
	p := startInteractive(t, k.ptyCommand("exec", "-it", "web", "--", "sh", "-c", "tty; echo pty-$((40+2))"))
	p.waitFor(t, "pty-42", 30*time.Second)
	p.waitExit(t, 30*time.Second)
	if out := p.output(); !strings.Contains(out, "/dev/pts/") {
		t.Errorf("exec -it: tty printed no /dev/pts/N:\n%s", out)
	}
}

// testCp: kubectl cp to and from a pod (tar in the container).
func testCp(t *testing.T, k *kctl) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.txt")
	content := fmt.Sprintf("copied by %s at %s\n", k.bin.version, time.Now().Format(time.RFC3339Nano))
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	remote := "/tmp/cp-" + strings.ReplaceAll(k.bin.version, ".", "-")
	k.ok(t, "cp", src, "web:"+remote)
	if got := k.ok(t, "exec", "web", "--", "cat", remote); got != strings.TrimSpace(content) {
		t.Errorf("the copied file in the pod has %q, want %q", got, content)
	}
	dst := filepath.Join(dir, "back.txt")
	k.ok(t, "cp", "web:"+remote, dst)
	if got, err := os.ReadFile(dst); err != nil || string(got) != content {
		t.Errorf("the file copied back has %q (%v), want %q", got, err, content)
	}
}

// testPortForward: an HTTP GET through kubectl port-forward reaches
// busybox httpd in pod web, twice (two connections on one forward).
func testPortForward(t *testing.T, k *kctl) {
	pf := k.start(t, "port-forward", "pod/web", ":8080")
	var local string
	pf.waitLine(t, "Forwarding from 127.0.0.1:PORT", func(f []string) bool {
		if len(f) >= 3 && f[0] == "Forwarding" && strings.HasPrefix(f[2], "127.0.0.1:") {
			local = f[2]
			return true
		}
		return false
	})
	for i := 0; i < 2; i++ {
		if problem := httpGetWant("http://"+local+"/hostname", "web"); problem != "" {
			t.Errorf("through port-forward: %s", problem)
		}
	}
}

// testAttach: kubectl attach -i sends stdin to a container reading it and
// prints what it writes.
func testAttach(t *testing.T, k *kctl) {
	word := "hello-" + strings.ReplaceAll(k.bin.version, ".", "-")
	cmd := exec.Command(k.bin.path, "attach", "-i", "attach")
	cmd.Env = kubectlEnv(k.home, k.kubeconfig)
	p := startInteractive(t, cmd)
	// kubectl attach prints its hint once the streams are up; lines sent
	// before it may race the attach.
	p.waitFor(t, "If you don't see a command prompt", 30*time.Second)
	p.write(t, word+"\n")
	p.waitFor(t, "got "+word, 30*time.Second)
}

// testAttachTTY: kubectl attach -it, under a pty, to a shell with a tty.
func testAttachTTY(t *testing.T, k *kctl) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) is not installed: no pty to run kubectl attach -it under")
	}
	p := startInteractive(t, k.ptyCommand("attach", "-it", "attach-tty"))
	p.waitFor(t, "If you don't see a command prompt", 30*time.Second)
	p.write(t, "echo attached-$((40+2)) $(tty)\r")
	p.waitFor(t, "attached-42 /dev/pts/", 30*time.Second)
}

// testDebug: kubectl debug adds an ephemeral container to pod web that
// shares the PID namespace of its container (--target) and runs.
func (ln *localNode) testDebug(t *testing.T, k *kctl) {
	if !strings.Contains(k.ok(t, "get", "--raw", "/api/v1"), `"pods/ephemeralcontainers"`) {
		t.Fatal("/api/v1 lists no pods/ephemeralcontainers: kubectl debug would say ephemeral containers are disabled")
	}
	name := "debug-" + strings.ReplaceAll(k.bin.version, ".", "-")
	k.ok(t, "debug", "web", "--image="+nodeimages.BusyboxImage, "--container="+name, "--target=web",
		"--", "sh", "-c", "ps; echo debugged")
	ln.waitPod(t, "web", 30*time.Second, func(p *corev1.Pod) string {
		for _, c := range p.Status.EphemeralContainerStatuses {
			if c.Name == name && c.State.Terminated != nil && c.State.Terminated.ExitCode == 0 {
				return ""
			}
		}
		return fmt.Sprintf("no ephemeral container %s terminated with exit code 0: %+v", name, p.Status.EphemeralContainerStatuses)
	})
	out := k.ok(t, "logs", "web", "-c", name)
	if !strings.Contains(out, "httpd -f -p 8080") || !strings.HasSuffix(out, "debugged") {
		t.Errorf("logs of the ephemeral container: %q, want ps showing web's httpd, then debugged", out)
	}
}

// testEphemeralContainers walks the conformance specs "[sig-node]
// Ephemeral Containers will start an ephemeral container in an existing
// pod" and "... should update the ephemeral containers in an existing
// pod": a strategic merge patch of pods/ephemeralcontainers (as the e2e
// framework's AddEphemeralContainerSync) starts a container that execs and
// logs; a PUT (UpdateEphemeralContainers) adds a second one.
func (ln *localNode) testEphemeralContainers(t *testing.T) {
	ctx := context.Background()
	ln.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: ec-target}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - {name: test-container-1, image: %s, command: [/bin/sleep], args: ["10000"]}
`, nodeimages.BusyboxImage))
	ln.waitPod(t, "ec-target", 60*time.Second, podRunning)
	pods := ln.admin.CoreV1().Pods(ln.k.ns)
	ec := func(name, word string) string {
		return fmt.Sprintf(`{"name":%q,"image":%q,"command":["/bin/sh","-c","while true; do echo %s; sleep 2; done"],"stdin":true,"tty":true}`,
			name, nodeimages.BusyboxImage, word)
	}
	patch := `{"spec":{"ephemeralContainers":[` + ec("debugger", "polo") + `]}}`
	if _, err := pods.Patch(ctx, "ec-target", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "ephemeralcontainers"); err != nil {
		t.Fatal(err)
	}
	running := func(name string) func(*corev1.Pod) string {
		return func(p *corev1.Pod) string {
			for _, s := range p.Status.EphemeralContainerStatuses {
				if s.Name == name && s.State.Running != nil {
					return ""
				}
			}
			return fmt.Sprintf("ephemeral container %s not running: %+v", name, p.Status.EphemeralContainerStatuses)
		}
	}
	ln.waitPod(t, "ec-target", time.Minute, running("debugger"))
	if out := ln.k.ok(t, "exec", "ec-target", "-c", "debugger", "--", "/bin/echo", "marco"); out != "marco" {
		t.Errorf("exec in the ephemeral container: %q, want marco", out)
	}
	if out := ln.k.ok(t, "logs", "ec-target", "-c", "debugger"); !strings.Contains(out, "polo") {
		t.Errorf("logs of the ephemeral container: %q, want polo", out)
	}

	got, err := ln.admin.CoreV1().RESTClient().Get().Namespace(ln.k.ns).Resource("pods").Name("ec-target").SubResource("ephemeralcontainers").Do(ctx).Get()
	if err != nil {
		t.Fatal(err)
	}
	pod := got.(*corev1.Pod)
	if len(pod.Spec.EphemeralContainers) != 1 {
		t.Fatalf("ephemeral containers: %+v, want only debugger", pod.Spec.EphemeralContainers)
	}
	var second corev1.EphemeralContainer
	if err := json.Unmarshal([]byte(ec("debugger2", "pong")), &second); err != nil {
		t.Fatal(err)
	}
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, second)
	if pod, err = pods.UpdateEphemeralContainers(ctx, "ec-target", pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.EphemeralContainers) != 2 {
		t.Fatalf("ephemeral containers after the update: %+v, want debugger and debugger2", pod.Spec.EphemeralContainers)
	}
	ln.waitPod(t, "ec-target", time.Minute, running("debugger2"))
}

// ptyCommand runs kubectl args under a pty: script(1) from util-linux, in
// a process group of its own (so that stopping it stops kubectl).
func (k *kctl) ptyCommand(args ...string) *exec.Cmd {
	line := shellQuote(append([]string{k.bin.path}, args...))
	cmd := exec.Command("script", "-qfec", line, "/dev/null")
	cmd.Env = kubectlEnv(k.home, k.kubeconfig, "SHELL=/bin/sh", "TERM=xterm")
	return cmd
}

// interactive is a process with a stdin pipe whose output (stdout and
// stderr together) is collected; it is killed, with its process group,
// when the test ends.
type interactive struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{}
	err   error
}

func startInteractive(t *testing.T, cmd *exec.Cmd) *interactive {
	t.Helper()
	p := &interactive{cmd: cmd, done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = p, p
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", shellQuote(cmd.Args), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("$ %s\n%s", shellQuote(cmd.Args), p.output())
		}
	})
	return p
}

func (p *interactive) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *interactive) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *interactive) write(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("writing to %s: %v\n%s", shellQuote(p.cmd.Args), err, p.output())
	}
}

// waitFor waits until the output contains text.
func (p *interactive) waitFor(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(p.output(), text) {
		select {
		case <-p.done:
			if strings.Contains(p.output(), text) {
				return
			}
			t.Fatalf("%s exited (%v) without printing %q:\n%s", shellQuote(p.cmd.Args), p.err, text, p.output())
		case <-deadline:
			t.Fatalf("%s printed no %q within %s:\n%s", shellQuote(p.cmd.Args), text, timeout, p.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitExit waits for the process to exit 0.
func (p *interactive) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s: %v:\n%s", shellQuote(p.cmd.Args), p.err, p.output())
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s:\n%s", shellQuote(p.cmd.Args), timeout, p.output())
	}
}
