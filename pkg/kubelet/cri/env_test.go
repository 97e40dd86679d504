package cri

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerd"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// One containerd (with a bridge network) serves the package's tests: it
// takes seconds to start and to import the images.
var (
	envOnce sync.Once
	envSkip string
	envErr  error
	shared  *testEnv
)

type testEnv struct {
	dir     string
	process *containerd.Process
	network cni.Config
	cidr    netip.Prefix
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

// env is the shared containerd, started by the first test that needs it.
func env(t *testing.T) *testEnv {
	t.Helper()
	envOnce.Do(func() { shared, envSkip, envErr = startEnv(t) })
	if envSkip != "" {
		t.Skip(envSkip)
	}
	if envErr != nil {
		t.Fatal(envErr)
	}
	return shared
}

func startEnv(t *testing.T) (*testEnv, string, error) {
	if os.Geteuid() != 0 {
		return nil, "needs root to run containerd", nil
	}
	for _, bin := range []string{"containerd", "runc", "containerd-shim-runc-v2", "ctr", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Sprintf("needs %s in PATH (hack/node-deps.sh)", bin), nil
		}
	}
	if _, err := cni.FindBinDir(); err != nil {
		return nil, err.Error(), nil
	}
	// Short: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "cri-")
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := containerd.Start(ctx, containerd.Options{DataDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("starting containerd: %w", err)
	}
	suffix := fmt.Sprint(os.Getpid() % 100000)
	e := &testEnv{dir: dir, process: p, cidr: netip.MustParsePrefix("10.216.7.0/24")}
	e.network = cni.Config{PodCIDRs: []netip.Prefix{e.cidr}, DataDir: filepath.Join(dir, "ipam"),
		NetworkName: "skiff-cri-" + suffix, BridgeName: "skr" + suffix}
	if err := cni.WriteConfig(p.CNIConfDir(), e.network); err != nil {
		e.stop()
		return nil, "", err
	}
	nodeimages.Ensure(t, p.Address())
	return e, "", nil
}

// stop removes every pod, stops containerd and the network.
func (e *testEnv) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := New(Config{Endpoint: e.process.Endpoint(), RootDir: filepath.Join(e.dir, "kubelet")}); err == nil {
		if pods, err := r.PodStatuses(ctx); err == nil {
			for _, p := range pods {
				if err := r.RemovePod(ctx, p.UID); err != nil {
					fmt.Fprintf(os.Stderr, "removing pod %s: %v\n", p.UID, err)
				}
			}
		}
		r.Close()
	}
	if err := e.process.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "stopping containerd: %v\n", err)
	}
	if err := cni.Cleanup(e.network); err != nil {
		fmt.Fprintf(os.Stderr, "cleaning up the pod network: %v\n", err)
	}
	containerdtest.UnmountUnder(e.dir)
	os.RemoveAll(e.dir)
}

// events records what the runtime reports, for the tests to read.
type events struct {
	mu   sync.Mutex
	list []string
	// names are the events' objects' names.
	names []string
}

func (e *events) Event(o runtime.Object, eventType, reason, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, eventType+" "+reason+" "+message)
	name := ""
	if ref, ok := o.(*corev1.ObjectReference); ok {
		name = ref.Name
	}
	e.names = append(e.names, name)
}

// hasFor tells whether an event of the named object starts with prefix.
func (e *events) hasFor(prefix, name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, ev := range e.list {
		if e.names[i] == name && strings.HasPrefix(ev, prefix) {
			return true
		}
	}
	return false
}

func (e *events) Eventf(o runtime.Object, eventType, reason, format string, args ...any) {
	e.Event(o, eventType, reason, fmt.Sprintf(format, args...))
}

func (e *events) AnnotatedEventf(o runtime.Object, _ map[string]string, eventType, reason, format string, args ...any) {
	e.Eventf(o, eventType, reason, format, args...)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

// has tells whether an event starts with prefix ("Normal Started ...").
func (e *events) has(prefix string) bool {
	for _, ev := range e.all() {
		if strings.HasPrefix(ev, prefix) {
			return true
		}
	}
	return false
}

// newRuntime is a Runtime on the shared containerd with short back-offs;
// its pods are removed when the test ends.
func newRuntime(t *testing.T, e *testEnv, tweak func(*Config)) (*Runtime, *events) {
	t.Helper()
	rec := &events{}
	cfg := Config{
		Endpoint: e.process.Endpoint(), Recorder: rec, NodeName: "node-1",
		RootDir: filepath.Join(e.dir, "kubelet"), PodLogsDir: filepath.Join(e.dir, "pods"),
		HostIPs:        func() []string { return []string{"127.0.0.1"} },
		BackoffInitial: time.Second, BackoffMax: 4 * time.Second,
		PollInterval: 200 * time.Millisecond,
		// Collected by the tests that ask for it only.
		GCPeriod: -1,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, rec
}

func removeAfter(t *testing.T, r *Runtime, uid types.UID) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Retried as the kubelet's housekeeping would: containerd 1.6 may
		// answer a kill with "ttrpc: closed" when the shim exits meanwhile.
		var err error
		for try := 0; try < 3; try++ {
			if err = r.RemovePod(ctx, uid); err == nil {
				return
			}
			t.Logf("RemovePod (try %d): %v", try+1, err)
			time.Sleep(time.Second)
		}
		t.Errorf("RemovePod: %v", err)
	})
}

// busyboxPod is a pod of one busybox container running script.
func busyboxPod(name, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uuid.NewUUID()},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{busybox("c", script)},
		},
	}
}

func busybox(name, script string) corev1.Container {
	return corev1.Container{
		Name: name, Image: nodeimages.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:                  []string{"sh", "-c", script},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
}

// syncUntil syncs the pod as the pod workers do (again after Requeue)
// until done says so.
func syncUntil(t *testing.T, r *Runtime, pod *corev1.Pod, timeout time.Duration, done func(*container.PodStatus) bool) container.SyncResult {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		res, err := r.SyncPod(ctx, pod)
		if err != nil {
			t.Fatalf("SyncPod: %v", err)
		}
		if done(res.Status) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s not there after %s: %s", pod.Name, timeout, describe(res.Status))
		}
		wait := res.Requeue
		if wait == 0 || wait > 200*time.Millisecond {
			wait = 200 * time.Millisecond
		}
		time.Sleep(wait)
	}
}

// killUntilStopped calls KillPod as the pod workers do until nothing runs.
func killUntilStopped(t *testing.T, r *Runtime, pod *corev1.Pod, grace, timeout time.Duration) container.SyncResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res, err := r.KillPod(context.Background(), pod, grace)
		if err != nil {
			t.Fatalf("KillPod: %v", err)
		}
		if !res.Status.Running() && !res.Status.SandboxReady {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s still running %s after KillPod: %s", pod.Name, timeout, describe(res.Status))
		}
		if res.Requeue == 0 {
			t.Fatalf("KillPod left the pod running without a requeue: %s", describe(res.Status))
		}
		time.Sleep(min(res.Requeue, 100*time.Millisecond))
	}
}

func describe(s *container.PodStatus) string {
	if s == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sandbox ready=%t ips=%v;", s.SandboxReady, s.IPs)
	for _, list := range []struct {
		kind string
		cs   []container.ContainerStatus
	}{{"init", s.InitContainers}, {"", s.Containers}} {
		for _, c := range list.cs {
			fmt.Fprintf(&b, " %s%s[%s restarts=%d wait=%s %q", list.kind, c.Name, c.State, c.RestartCount, c.WaitingReason, c.WaitingMessage)
			if c.Exited != nil {
				fmt.Fprintf(&b, " exit=%d %s %q", c.Exited.ExitCode, c.Exited.Reason, c.Exited.Message)
			}
			b.WriteString("]")
		}
	}
	return b.String()
}
