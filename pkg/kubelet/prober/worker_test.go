package prober

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

func TestLivenessInitialDelayAndFailureThreshold(t *testing.T) {
	f := newFixture(t)
	p := execProbe("live", "check")
	p.InitialDelaySeconds, p.PeriodSeconds, p.FailureThreshold = 10, 5, 3
	p.TerminationGracePeriodSeconds = ptr.To[int64](7)
	pod := testPod(corev1.Container{Name: "c", LivenessProbe: p})
	w := f.addUnstarted(pod)[Liveness]
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	idA := "containerd://a-c"
	f.exec.set("live", 1)

	w.probe()
	if r, ok := f.result(Liveness, idA); !ok || r != Success {
		t.Fatalf("a new instance's liveness is Success before it is probed, got %v %v", r, ok)
	}
	f.clock.Step(9 * time.Second)
	w.probe()
	if n := f.exec.count("live"); n != 0 {
		t.Fatalf("probed %d times within initialDelaySeconds", n)
	}
	f.clock.Step(time.Second)
	for i := 1; i <= 2; i++ {
		w.probe()
		if r, _ := f.result(Liveness, idA); r != Success || f.exec.count("live") != i {
			t.Fatalf("after %d failures (threshold 3): %v, %d probes", i, r, f.exec.count("live"))
		}
		if _, kill := f.m.ContainerToKill(pod, "c", idA); kill {
			t.Fatalf("killed after %d failures of 3", i)
		}
	}
	f.takeUpdates()
	w.probe()
	if r, _ := f.result(Liveness, idA); r != Failure {
		t.Fatalf("after 3 failures: %v", r)
	}
	k, ok := f.m.ContainerToKill(pod, "c", idA)
	if !ok || k.Message != "Container c failed liveness probe, will be restarted" || !k.Restart || k.GracePeriod != 7*time.Second || k.Probe != Liveness {
		t.Fatalf("ContainerToKill: %+v %v", k, ok)
	}
	if got := f.m.Unhealthy(pod, "c", idA); got != "Container c failed liveness probe" {
		t.Fatalf("Unhealthy %q", got)
	}
	if got := f.m.Unhealthy(pod, "c", "containerd://other"); got != "" {
		t.Fatalf("Unhealthy of another instance %q", got)
	}
	u := f.takeUpdates()
	if len(u) != 1 || u[0].Probe != Liveness || u[0].Result != Failure || u[0].Kill == nil || u[0].Kill.Message != k.Message || u[0].ContainerID != idA {
		t.Fatalf("updates %+v", u)
	}
	events := f.events()
	if len(events) != 3 {
		t.Fatalf("events %q, want one per failed probe", events)
	}
	for _, e := range events {
		if e != "Warning Unhealthy Liveness probe failed: live says check" {
			t.Errorf("event %q", e)
		}
	}
	// On hold until a new instance.
	w.probe()
	if n := f.exec.count("live"); n != 3 {
		t.Fatalf("probed a container to be killed: %d probes", n)
	}

	f.exec.set("live", 0)
	f.clock.Step(time.Minute)
	f.m.SetRuntimeStatus(running(pod, "b", f.clock.Now()))
	w.probe()
	if _, ok := f.result(Liveness, idA); ok {
		t.Error("the old instance's result is kept")
	}
	if _, kill := f.m.ContainerToKill(pod, "c", "containerd://b-c"); kill {
		t.Error("the new instance is to be killed")
	}
	if n := f.exec.count("live"); n != 3 {
		t.Errorf("the new instance was probed within its initial delay")
	}
	f.clock.Step(10 * time.Second)
	w.probe()
	if n := f.exec.count("live"); n != 4 {
		t.Errorf("the new instance is not probed: %d", n)
	}
	if got := f.exec.ids[len(f.exec.ids)-1]; got != "b-c" {
		t.Errorf("exec in %q, want the runtime's ID b-c", got)
	}
}

func TestReadinessSuccessThreshold(t *testing.T) {
	f := newFixture(t)
	p := execProbe("ready")
	p.SuccessThreshold, p.FailureThreshold = 2, 2
	pod := testPod(corev1.Container{Name: "c", ReadinessProbe: p})
	w := f.addUnstarted(pod)[Readiness]
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	id := "containerd://a-c"

	if f.m.Ready(pod, "c") {
		t.Fatal("ready before its readiness probe ran")
	}
	w.probe()
	if r, _ := f.result(Readiness, id); r != Failure || f.m.Ready(pod, "c") {
		t.Fatalf("one success of 2: %v, ready %v", r, f.m.Ready(pod, "c"))
	}
	f.takeUpdates()
	w.probe()
	if !f.m.Ready(pod, "c") {
		t.Fatal("not ready after 2 successes")
	}
	if u := f.takeUpdates(); len(u) != 1 || u[0].Probe != Readiness || u[0].Result != Success || u[0].Kill != nil {
		t.Fatalf("updates %+v", u)
	}
	f.exec.set("ready", 1)
	w.probe()
	if !f.m.Ready(pod, "c") {
		t.Fatal("one failure of 2 made it unready")
	}
	w.probe()
	if f.m.Ready(pod, "c") {
		t.Fatal("ready after 2 failures")
	}
	if u := f.takeUpdates(); len(u) != 1 || u[0].Result != Failure || u[0].Kill != nil {
		t.Fatalf("a readiness failure kills: %+v", u)
	}
	// Readiness failures do not stop probing.
	f.exec.set("ready", 0)
	w.probe()
	w.probe()
	if !f.m.Ready(pod, "c") {
		t.Fatal("not ready again")
	}
}

func TestStartupGatesLivenessAndReadiness(t *testing.T) {
	f := newFixture(t)
	startup := execProbe("startup")
	startup.FailureThreshold = 30
	pod := testPod(corev1.Container{Name: "c", StartupProbe: startup, LivenessProbe: execProbe("live"), ReadinessProbe: execProbe("ready")})
	ws := f.addUnstarted(pod)
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	id := "containerd://a-c"
	f.exec.set("startup", 1)

	for range 3 {
		ws[Startup].probe()
		ws[Liveness].probe()
		ws[Readiness].probe()
	}
	if f.exec.count("startup") != 3 || f.exec.count("live") != 0 || f.exec.count("ready") != 0 {
		t.Fatalf("before startup: startup %d, live %d, ready %d probes", f.exec.count("startup"), f.exec.count("live"), f.exec.count("ready"))
	}
	if f.m.Started(pod, "c") || f.m.Ready(pod, "c") {
		t.Fatal("started or ready before the startup probe succeeded")
	}
	if r, ok := f.result(Startup, id); !ok || r != Unknown {
		t.Fatalf("startup result before success: %v %v", r, ok)
	}
	if _, kill := f.m.ContainerToKill(pod, "c", id); kill {
		t.Fatal("killed while starting up")
	}

	f.exec.set("startup", 0)
	f.takeUpdates()
	ws[Startup].probe()
	if !f.m.Started(pod, "c") {
		t.Fatal("not started after the startup probe succeeded")
	}
	if u := f.takeUpdates(); len(u) != 1 || u[0].Probe != Startup || u[0].Result != Success {
		t.Fatalf("updates %+v", u)
	}
	ws[Startup].probe()
	if n := f.exec.count("startup"); n != 4 {
		t.Fatalf("startup probed after it succeeded: %d", n)
	}
	ws[Liveness].probe()
	ws[Readiness].probe()
	if f.exec.count("live") != 1 || f.exec.count("ready") != 1 {
		t.Fatalf("after startup: live %d, ready %d probes", f.exec.count("live"), f.exec.count("ready"))
	}
	if !f.m.Ready(pod, "c") {
		t.Fatal("not ready")
	}
}

func TestStartupFailureKillsWithoutRestartUnderNever(t *testing.T) {
	f := newFixture(t)
	startup := execProbe("startup")
	startup.FailureThreshold = 2
	pod := testPod(corev1.Container{Name: "c", StartupProbe: startup})
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	w := f.addUnstarted(pod)[Startup]
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	f.exec.set("startup", 1)
	w.probe()
	w.probe()
	k, ok := f.m.ContainerToKill(pod, "c", "containerd://a-c")
	if !ok || k.Probe != Startup || k.Message != "Container c failed startup probe" || k.Restart || k.GracePeriod != 30*time.Second {
		t.Fatalf("ContainerToKill %+v %v", k, ok)
	}
	if e := f.events(); len(e) != 2 || e[0] != "Warning Unhealthy Startup probe failed: startup says " {
		t.Fatalf("events %q", e)
	}
	w.probe()
	if n := f.exec.count("startup"); n != 2 {
		t.Fatalf("probed after the startup probe failed: %d", n)
	}

	// The container exited and will not run again: the probe ends.
	rs := running(pod, "a", f.clock.Now())
	rs.Containers[0].State = container.StateExited
	rs.Containers[0].Exited = &container.Termination{ExitCode: 137}
	f.m.SetRuntimeStatus(rs)
	if w.probe() {
		t.Fatal("probing goes on for a container that will not restart")
	}
}

func TestNotRunningContainer(t *testing.T) {
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "c", ReadinessProbe: execProbe("ready"), LivenessProbe: execProbe("live")})
	pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	ws := f.addUnstarted(pod)
	w := ws[Readiness]
	rs := running(pod, "a", f.clock.Now())
	rs.Containers[0].State = container.StateCreated
	f.m.SetRuntimeStatus(rs)
	if !w.probe() || f.exec.count("ready") != 0 {
		t.Fatal("a created container is probed, or its probe ends")
	}
	ws[Liveness].probe()
	if _, kill := f.m.ContainerToKill(pod, "c", "containerd://a-c"); kill {
		t.Fatal("a created container is to be killed before it ran")
	}
	rs.Containers[0].State, rs.Containers[0].Exited = container.StateExited, &container.Termination{ExitCode: 1}
	f.m.SetRuntimeStatus(rs)
	if !w.probe() {
		t.Fatal("OnFailure restarts exit 1: the probe must go on")
	}
	rs.Containers[0].Exited.ExitCode = 0
	f.m.SetRuntimeStatus(rs)
	if w.probe() {
		t.Fatal("OnFailure does not restart exit 0: the probe must end")
	}
	if f.m.Ready(pod, "c") || f.m.Started(pod, "c") {
		t.Fatal("an exited container is ready or started")
	}
}

func TestDeletionEndsLivenessNotReadiness(t *testing.T) {
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "c", LivenessProbe: execProbe("live"), ReadinessProbe: execProbe("ready")})
	ws := f.addUnstarted(pod)
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	f.exec.set("live", 1)
	ws[Liveness].probe()
	deleted := pod.DeepCopy()
	deleted.DeletionTimestamp = ptr.To(metav1.NewTime(f.clock.Now()))
	deleted.DeletionGracePeriodSeconds = ptr.To[int64](5)
	f.m.AddPod(deleted)
	if ws[Liveness].probe() {
		t.Fatal("liveness goes on for a pod being deleted")
	}
	if r, _ := f.result(Liveness, "containerd://a-c"); r != Success {
		t.Fatalf("liveness of a deleted pod: %v", r)
	}
	if !ws[Readiness].probe() || f.exec.count("ready") != 1 {
		t.Fatalf("readiness stops for a pod being deleted (%d probes)", f.exec.count("ready"))
	}
	if n := f.exec.count("live"); n != 1 {
		t.Fatalf("liveness probed a pod being deleted: %d", n)
	}
	if k := killFor(deleted, "c", "x", Liveness); k.GracePeriod != 5*time.Second {
		t.Fatalf("kill grace period of a deleted pod %v, want its deletion grace period", k.GracePeriod)
	}
}

func TestKubeletRestartKeepsStartedAndReady(t *testing.T) {
	f := newFixture(t)
	f.m.start = f.clock.Now()
	ready := execProbe("ready")
	pod := testPod(corev1.Container{Name: "c", StartupProbe: execProbe("startup"), ReadinessProbe: ready})
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Started: ptr.To(true), Ready: true}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	ws := f.addUnstarted(pod)
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now().Add(-time.Hour)))
	if !f.m.Started(pod, "c") || !f.m.Ready(pod, "c") {
		t.Fatalf("after a kubelet restart: started %v, ready %v; want both as before", f.m.Started(pod, "c"), f.m.Ready(pod, "c"))
	}
	ws[Startup].probe()
	if n := f.exec.count("startup"); n != 0 || !f.m.Started(pod, "c") {
		t.Fatalf("a started container's startup probe ran again (%d) or it is not started", n)
	}
	f.exec.set("ready", 1)
	ready.FailureThreshold = 1
	ws[Readiness].spec.FailureThreshold = 1
	ws[Readiness].probe()
	if f.m.Ready(pod, "c") {
		t.Fatal("ready after its readiness probe failed")
	}

	// A pod that was not ready stays unready until probed.
	pod2 := pod.DeepCopy()
	pod2.UID = "uid-2"
	pod2.Status.Conditions[0].Status = corev1.ConditionFalse
	f.addUnstarted(pod2)
	f.m.SetRuntimeStatus(running(pod2, "b", f.clock.Now().Add(-time.Hour)))
	if f.m.Ready(pod2, "c") {
		t.Fatal("an unready pod's container is ready after a restart")
	}

	// A container started after the kubelet is new: not started until probed.
	pod3 := pod.DeepCopy()
	pod3.UID = "uid-3"
	f.addUnstarted(pod3)
	f.m.SetRuntimeStatus(running(pod3, "c", f.clock.Now()))
	if f.m.Started(pod3, "c") || f.m.Ready(pod3, "c") {
		t.Fatal("a new container is started or ready before its startup probe")
	}
}

func TestExecTimeoutIsAFailure(t *testing.T) {
	f := newFixture(t)
	p := execProbe("slow", "10")
	p.FailureThreshold = 1
	pod := testPod(corev1.Container{Name: "c", LivenessProbe: p})
	w := f.addUnstarted(pod)[Liveness]
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	f.exec.hang["slow"] = true
	begin := time.Now()
	w.probe()
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("a 1s exec probe took %v", d)
	}
	if _, kill := f.m.ContainerToKill(pod, "c", "containerd://a-c"); !kill {
		t.Fatal("a timed out liveness probe is not a failure")
	}
	e := f.events()
	if len(e) != 1 || e[0] != `Warning Unhealthy Liveness probe failed: command timed out: "slow 10" timed out after 1s` {
		t.Fatalf("events %q", e)
	}
}

func TestExecExpandsStaticEnv(t *testing.T) {
	f := newFixture(t)
	pod := testPod(corev1.Container{Name: "c", ReadinessProbe: execProbe("cat", "$(DIR)/ready", "$(UNSET)", "$$(DIR)"),
		Env: []corev1.EnvVar{{Name: "DIR", Value: "/tmp"}}})
	w := f.addUnstarted(pod)[Readiness]
	f.m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	w.probe()
	if got := <-f.exec.called; got != "cat /tmp/ready $(UNSET) $(DIR)" {
		t.Fatalf("command %q", got)
	}
}

func TestProbeErrorIsNotCounted(t *testing.T) {
	f := newFixture(t)
	m := NewManager(Options{Recorder: f.recorder, Clock: f.clock}) // no Execer
	m.start = f.clock.Now().Add(-time.Hour)
	defer m.Stop()
	p := execProbe("live")
	p.FailureThreshold = 1
	pod := testPod(corev1.Container{Name: "c", LivenessProbe: p})
	f.m = m
	w := f.addUnstarted(pod)[Liveness]
	m.SetRuntimeStatus(running(pod, "a", f.clock.Now()))
	w.probe()
	if _, kill := m.ContainerToKill(pod, "c", "containerd://a-c"); kill {
		t.Fatal("an errored probe counted as a failure")
	}
	e := f.events()
	if len(e) != 1 || !strings.HasPrefix(e[0], "Warning Unhealthy Liveness probe errored and resulted in unknown state: ") {
		t.Fatalf("events %q", e)
	}
}

func TestDefaults(t *testing.T) {
	q := withDefaults(&corev1.Probe{SuccessThreshold: 3}, Liveness)
	if q.PeriodSeconds != 10 || q.TimeoutSeconds != 1 || q.SuccessThreshold != 1 || q.FailureThreshold != 3 {
		t.Errorf("liveness defaults %+v", q)
	}
	if q := withDefaults(&corev1.Probe{SuccessThreshold: 3}, Readiness); q.SuccessThreshold != 3 {
		t.Errorf("readiness successThreshold %d", q.SuccessThreshold)
	}
}

func TestExpand(t *testing.T) {
	values := map[string]string{"A": "x", "EMPTY": ""}
	for in, want := range map[string]string{
		"$(A)":       "x",
		"a$(A)b":     "axb",
		"$$(A)":      "$(A)",
		"$(B)":       "$(B)",
		"$(EMPTY)!":  "!",
		"$(A":        "$(A",
		"$(A $$":     "$(A $",
		"cost $5":    "cost $5",
		"end$":       "end$",
		"$(A)$(A)$$": "xx$",
	} {
		if got := expand(in, values); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
