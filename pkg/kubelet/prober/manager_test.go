package prober

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// waitCall waits for the next exec probe, failing after a second.
func (f *fixture) waitCall(want string) {
	f.t.Helper()
	select {
	case got := <-f.exec.called:
		if got != want {
			f.t.Fatalf("probed %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		f.t.Fatalf("no probe %q", want)
	}
}

// noCall checks that no exec probe runs for a while.
func (f *fixture) noCall() {
	f.t.Helper()
	select {
	case got := <-f.exec.called:
		f.t.Fatalf("unexpected probe %q", got)
	case <-time.After(100 * time.Millisecond):
	}
}

// waitWaiters waits until the worker goroutines wait on the fake clock.
func (f *fixture) waitWaiters(n int) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(f.t.Context(), time.Millisecond, 5*time.Second, true, func(ctx2 context.Context) (bool, error) {
		return f.clock.Waiters() >= n, nil
	})
	if err != nil {
		f.t.Fatalf("workers do not wait on the clock (%d waiters)", f.clock.Waiters())
	}
}

func TestPeriodAndStartJitter(t *testing.T) {
	f := newFixture(t)
	f.m.start = f.clock.Now()
	f.m.jitter = func(period time.Duration) time.Duration {
		if period != 10*time.Second {
			t.Errorf("jitter within %v, want the period", period)
		}
		return 3 * time.Second
	}
	pod := testPod(corev1.Container{Name: "c", LivenessProbe: execProbe("live")})
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	f.m.AddPod(pod)
	f.waitWaiters(1)
	f.clock.Step(2 * time.Second)
	f.noCall()
	f.clock.Step(time.Second)
	f.waitCall("live")
	f.waitWaiters(1)
	f.clock.Step(9 * time.Second)
	f.noCall()
	f.clock.Step(time.Second)
	f.waitCall("live")
	f.waitWaiters(1)
	f.clock.Step(10 * time.Second)
	f.waitCall("live")
}

func TestNoJitterLongAfterStart(t *testing.T) {
	f := newFixture(t)
	f.m.jitter = func(time.Duration) time.Duration { t.Error("jitter long after the kubelet started"); return 0 }
	pod := testPod(corev1.Container{Name: "c", LivenessProbe: execProbe("live")})
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	f.m.AddPod(pod)
	f.waitCall("live")
}

func TestJitterWithinPeriod(t *testing.T) {
	m := NewManager(Options{})
	for range 100 {
		if d := m.jitter(time.Second); d < 0 || d >= time.Second {
			t.Fatalf("jitter %v not within [0, 1s)", d)
		}
	}
}

func TestReadyTriggersAProbe(t *testing.T) {
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "c", ReadinessProbe: execProbe("ready")})
	f.exec.set("ready", 1)
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	f.m.AddPod(pod)
	f.waitCall("ready")
	f.waitWaiters(1)
	if f.m.Ready(pod, "c") {
		t.Fatal("ready after a failure")
	}
	// No clock step: the readiness check asked for it.
	f.waitCall("ready")
}

func TestAddPodIdempotentAndRemovePod(t *testing.T) {
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "c", ReadinessProbe: execProbe("ready"), LivenessProbe: execProbe("live")})
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "init", ReadinessProbe: execProbe("never")}, // not a sidecar: not probed
		{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), ReadinessProbe: execProbe("side")},
	}
	rs := running(pod, "a", f.clock.Now())
	rs.InitContainers = []container.ContainerStatus{{Name: "side", ID: "containerd://side", State: container.StateRunning, StartedAt: f.clock.Now()}}
	f.m.SetRuntimeStatus(rs)
	f.m.AddPod(pod)
	f.m.AddPod(pod.DeepCopy())
	if n := len(f.m.workers); n != 3 {
		t.Fatalf("%d workers, want 3 (readiness and liveness of c, readiness of the sidecar)", n)
	}
	seen := map[string]int{}
	for range 3 {
		select {
		case c := <-f.exec.called:
			seen[c]++
		case <-time.After(5 * time.Second):
			t.Fatalf("probes seen %v", seen)
		}
	}
	if seen["ready"] != 1 || seen["live"] != 1 || seen["side"] != 1 {
		t.Fatalf("probes %v", seen)
	}
	err := wait.PollUntilContextTimeout(t.Context(), time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return f.m.Ready(pod, "side") && f.m.Ready(pod, "c"), nil
	})
	if err != nil {
		t.Fatal("not ready after their readiness probes succeeded")
	}
	workers := make([]*worker, 0, 3)
	for _, w := range f.m.workers {
		workers = append(workers, w)
	}
	f.m.RemovePod(pod.UID)
	for _, w := range workers {
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("worker %v still runs after RemovePod", w.key)
		}
	}
	if _, ok := f.result(Readiness, "containerd://a-c"); ok {
		t.Fatal("results kept after RemovePod")
	}
	if len(f.m.workers) != 0 || len(f.m.pods) != 0 {
		t.Fatal("pod kept after RemovePod")
	}
}

func TestStopLivenessAndStartup(t *testing.T) {
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "c", ReadinessProbe: execProbe("ready"), LivenessProbe: execProbe("live")})
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	f.m.AddPod(pod)
	for range 2 { // both ran once
		select {
		case <-f.exec.called:
		case <-time.After(5 * time.Second):
			t.Fatal("probes do not run")
		}
	}
	live, _ := f.m.workers[probeKey{pod.UID, "c", Liveness}]
	f.m.StopLivenessAndStartup(pod.UID)
	<-live.done
	f.waitWaiters(1)
	f.clock.Step(10 * time.Second)
	f.waitCall("ready")
	f.noCall()
	f.m.AddPod(pod)
	if w := f.m.workers[probeKey{pod.UID, "c", Liveness}]; w != live {
		t.Fatal("AddPod started a stopped probe again")
	}
}

func TestUpdatePodStatus(t *testing.T) {
	f := newFixture(t)
	pod := testPod(
		corev1.Container{Name: "plain"},
		corev1.Container{Name: "probed", ReadinessProbe: execProbe("ready")},
		corev1.Container{Name: "starting", StartupProbe: execProbe("startup")},
	)
	pod.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	f.exec.set("startup", 1)
	f.m.AddPod(pod)
	start := metav1.NewTime(f.clock.Now())
	runningState := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}
	s := &corev1.PodStatus{
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", ContainerID: "containerd://i",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "plain", ContainerID: "containerd://p", State: runningState},
			{Name: "probed", ContainerID: "containerd://r", State: runningState},
			{Name: "starting", ContainerID: "containerd://s", State: runningState},
		},
	}
	f.m.UpdatePodStatus(pod, s)
	want := map[string][2]bool{"plain": {true, true}, "probed": {true, false}, "starting": {false, false}}
	for _, cs := range s.ContainerStatuses {
		if w := want[cs.Name]; cs.Started == nil || *cs.Started != w[0] || cs.Ready != w[1] {
			t.Errorf("%s: started %v ready %v, want %v", cs.Name, ptr.Deref(cs.Started, false), cs.Ready, w)
		}
	}
	if !s.InitContainerStatuses[0].Ready {
		t.Error("an init container that exited 0 is not ready")
	}
}

func TestHTTPProbesThroughManager(t *testing.T) {
	mux := http.NewServeMux()
	var ua, host string
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { ua, host = r.UserAgent(), r.Host })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portStr)
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/healthz", port), http.StatusFound)
	})

	f := newFixture(t)
	pod := testPod(
		corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("web"),
				HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "svc.example"}}}}},
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/away", Port: intstr.FromInt32(int32(port))}}},
		})
	ws := f.addUnstarted(pod)
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now())) // pod IP 127.0.0.1
	ws[Readiness].probe()
	if !f.m.Ready(pod, "c") || ua != "kube-probe/1.37" || host != "svc.example" {
		t.Fatalf("ready %v, User-Agent %q, Host %q", f.m.Ready(pod, "c"), ua, host)
	}
	ws[Liveness].probe()
	if _, kill := f.m.ContainerToKill(pod, "c", "containerd://a-c"); kill {
		t.Fatal("a redirect to another host failed the probe")
	}
	e := f.events()
	if len(e) != 1 || !strings.HasPrefix(e[0], "Warning ProbeWarning Liveness probe warning: Probe terminated redirects, Response body: ") {
		t.Fatalf("events %q", e)
	}
}

func TestTCPAndGRPCProbesThroughManager(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens: both fail
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "c",
		ReadinessProbe: &corev1.Probe{FailureThreshold: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}},
		LivenessProbe:  &corev1.Probe{FailureThreshold: 1, ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port)}}},
	})
	ws := f.addUnstarted(pod)
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	ws[Readiness].probe()
	ws[Liveness].probe()
	e := f.events()
	if len(e) != 2 || !strings.Contains(e[0], "Readiness probe failed: dial tcp 127.0.0.1:"+strconv.Itoa(port)+": connect: connection refused") ||
		!strings.Contains(e[1], "Liveness probe failed: timeout: failed to connect service") {
		t.Fatalf("events %q", e)
	}
	if _, kill := f.m.ContainerToKill(pod, "c", "containerd://a-c"); !kill {
		t.Fatal("a failed grpc liveness probe does not kill")
	}
}

func TestMetrics(t *testing.T) {
	probeTotal.Reset()
	probeDuration.Reset()
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "metered", ReadinessProbe: execProbe("ready")})
	pod.Name = "metrics-pod"
	w := f.addUnstarted(pod)[Readiness]
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	w.probe()
	w.probe()
	f.exec.set("ready", 1)
	w.probe()
	ok, err := testutil.GetCounterMetricValue(probeTotal.WithLabelValues("Readiness", "successful", "metered", "metrics-pod", "default", "uid-1"))
	if err != nil || ok != 2 {
		t.Fatalf("successful %v %v", ok, err)
	}
	failed, _ := testutil.GetCounterMetricValue(probeTotal.WithLabelValues("Readiness", "failed", "metered", "metrics-pod", "default", "uid-1"))
	if failed != 1 {
		t.Fatalf("failed %v", failed)
	}
	n, err := testutil.GetHistogramMetricCount(probeDuration.WithLabelValues("Readiness", "metered", "metrics-pod", "default"))
	if err != nil || n != 2 {
		t.Fatalf("duration observations %v %v (successes only, as upstream)", n, err)
	}
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range families {
		found[mf.GetName()] = true
	}
	if !found["prober_probe_total"] || !found["prober_probe_duration_seconds"] {
		t.Fatal("metrics not in legacyregistry")
	}
}
