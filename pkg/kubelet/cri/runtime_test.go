package cri

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

func TestVersionAndErrors(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, nil)
	if v := r.Version(); !strings.HasPrefix(v, "containerd://") || v == "containerd://" {
		t.Errorf("Version() = %q, want containerd://<version>", v)
	}
	if errs := r.Errors(context.Background()); len(errs) != 0 {
		t.Errorf("Errors() = %v, want none with a pod network configured", errs)
	}
}

// TestPodRuns: a busybox pod gets a sandbox with an IP of the pod network
// and its container runs, with upstream's events, and logs where
// upstream's kubelet puts them.
func TestPodRuns(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	pod := busyboxPod("runs", "echo hi; sleep 3600")
	removeAfter(t, r, pod.UID)

	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return len(s.Containers) == 1 && s.Containers[0].State == container.StateRunning
	})
	s := res.Status
	c := s.Containers[0]
	if !s.SandboxReady || len(s.IPs) != 1 {
		t.Fatalf("sandbox: %s", describe(s))
	}
	if ip, err := netip.ParseAddr(s.IPs[0]); err != nil || !e.cidr.Contains(ip) {
		t.Errorf("pod IP %q not in the pod CIDR %s", s.IPs[0], e.cidr)
	}
	if !strings.HasPrefix(c.ID, "containerd://") || len(c.ID) < len("containerd://")+64 {
		t.Errorf("container ID %q, want containerd://<64 hex>", c.ID)
	}
	if c.Image != nodeimages.BusyboxImage {
		t.Errorf("image %q, want %q", c.Image, nodeimages.BusyboxImage)
	}
	if !strings.Contains(c.ImageID, "sha256:") {
		t.Errorf("image ID %q, want a digest", c.ImageID)
	}
	if c.RestartCount != 0 || c.StartedAt.IsZero() {
		t.Errorf("restarts %d startedAt %v", c.RestartCount, c.StartedAt)
	}
	if res.Requeue <= 0 || res.Requeue > time.Second {
		t.Errorf("Requeue %v for a running pod, want the poll interval", res.Requeue)
	}
	for _, want := range []string{
		fmt.Sprintf("Normal Pulled Container image %q already present on machine", nodeimages.BusyboxImage),
		"Normal Created Container created",
		"Normal Started Container started",
	} {
		if !rec.has(want) {
			t.Errorf("no event %q in %q", want, rec.all())
		}
	}
	logFile := filepath.Join(e.dir, "pods", fmt.Sprintf("default_runs_%s", pod.UID), "c", "0.log")
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(logFile)
		if strings.Contains(string(data), " stdout F hi\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: %q, want the container's hi", logFile, data)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Synced again, nothing changes.
	again := syncUntil(t, r, pod, time.Second, func(*container.PodStatus) bool { return true })
	if got := again.Status.Containers[0]; got.ID != c.ID || got.State != container.StateRunning {
		t.Errorf("second sync changed the container: %s", describe(again.Status))
	}

	stdout, _, code, err := r.ExecSync(context.Background(), c.ID, []string{"sh", "-c", "echo out; exit 7"}, 5*time.Second)
	if err != nil || code != 7 || string(stdout) != "out\n" {
		t.Errorf("ExecSync = %q, %d, %v; want out, 7, nil", stdout, code, err)
	}
}

// TestRestartBackoff: an exiting container restarts at once, then after
// its back-off, which SyncPod returns as a Requeue, not by waiting.
func TestRestartBackoff(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	pod := busyboxPod("crash", "echo oops; exit 3")
	pod.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	removeAfter(t, r, pod.UID)

	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].WaitingReason == container.ReasonCrashLoopBackOff
	})
	c := res.Status.Containers[0]
	if c.RestartCount != 1 {
		t.Errorf("restartCount %d when first backing off, want 1 (the first restart is at once)", c.RestartCount)
	}
	if c.State != container.StateExited || c.Exited == nil || c.Exited.ExitCode != 3 || c.Exited.Reason != "Error" {
		t.Fatalf("backing off container: %s", describe(res.Status))
	}
	if c.Exited.Message != "oops\n" {
		t.Errorf("termination message %q, want the log's last line (FallbackToLogsOnError)", c.Exited.Message)
	}
	if c.Last == nil || c.Last.ExitCode != 3 || c.Last.ID == c.Exited.ID {
		t.Errorf("last termination %+v, want the first instance's", c.Last)
	}
	wantMsg := fmt.Sprintf("back-off 1s restarting failed container=c pod=crash_default(%s)", pod.UID)
	if c.WaitingMessage != wantMsg {
		t.Errorf("waiting message %q, want %q", c.WaitingMessage, wantMsg)
	}
	if res.Requeue <= 0 || res.Requeue > time.Second {
		t.Errorf("Requeue %v in a 1s back-off", res.Requeue)
	}
	if !rec.has(fmt.Sprintf("Warning BackOff Back-off restarting failed container c in pod crash_default(%s)", pod.UID)) {
		t.Errorf("no BackOff event in %q", rec.all())
	}
	// The back-off doubles.
	res = syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		c := s.Containers[0]
		return c.RestartCount == 2 && c.WaitingReason == container.ReasonCrashLoopBackOff
	})
	if c := res.Status.Containers[0]; !strings.HasPrefix(c.WaitingMessage, "back-off 2s ") {
		t.Errorf("second back-off %q, want 2s", c.WaitingMessage)
	}
	if res.Requeue <= time.Second || res.Requeue > 2*time.Second {
		t.Errorf("Requeue %v in a 2s back-off", res.Requeue)
	}
}

// TestNeverRestart: with restartPolicy Never an exited container stays
// exited and the pod's sandbox stops; OnFailure restarts only a failure.
func TestNeverRestart(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, nil)
	pod := busyboxPod("never", "exit 1")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateExited && !s.SandboxReady
	})
	c := res.Status.Containers[0]
	if c.RestartCount != 0 || c.WaitingReason != "" || c.Exited.ExitCode != 1 {
		t.Errorf("exited container of a Never pod: %s", describe(res.Status))
	}
	if res.Status.Running() {
		t.Errorf("finished pod running: %s", describe(res.Status))
	}
	time.Sleep(300 * time.Millisecond)
	res = syncUntil(t, r, pod, time.Second, func(*container.PodStatus) bool { return true })
	if c := res.Status.Containers[0]; c.RestartCount != 0 || c.State != container.StateExited || res.Status.SandboxReady {
		t.Errorf("synced again, the finished pod changed: %s", describe(res.Status))
	}
	if res.Requeue != 0 {
		t.Errorf("finished pod synced again asks for a requeue in %v", res.Requeue)
	}

	ok := busyboxPod("onfailure", "exit 0")
	ok.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	removeAfter(t, r, ok.UID)
	res = syncUntil(t, r, ok, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateExited && !s.SandboxReady
	})
	if c := res.Status.Containers[0]; c.RestartCount != 0 || c.Exited.Reason != "Completed" {
		t.Errorf("succeeded container of an OnFailure pod: %s", describe(res.Status))
	}
}

// TestInitContainersInOrder: init containers run one at a time in order,
// a sidecar keeps running, the containers start after all of them.
func TestInitContainersInOrder(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	// On SIGTERM the container takes a second to exit, the sidecar none.
	pod := busyboxPod("init", "trap 'sleep 1; exit 0' TERM; sleep 3600 & wait")
	sidecar := busybox("sidecar", "trap 'exit 0' TERM; sleep 3600 & wait")
	sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	pod.Spec.InitContainers = []corev1.Container{
		busybox("first", "sleep 1"),
		sidecar,
		busybox("second", "true"),
	}
	removeAfter(t, r, pod.UID)

	sawFirstAlone := false
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		init := s.InitContainers
		if init[0].State == container.StateRunning {
			if init[1].ID != "" || init[2].ID != "" || s.Containers[0].ID != "" {
				t.Fatalf("started while the first init container runs: %s", describe(s))
			}
			sawFirstAlone = true
		}
		if init[2].ID == "" && s.Containers[0].ID != "" {
			t.Fatalf("container started before the init containers completed: %s", describe(s))
		}
		return s.Containers[0].State == container.StateRunning
	})
	if !sawFirstAlone {
		t.Errorf("never saw the first init container running alone")
	}
	s := res.Status
	first, side, second, main := s.InitContainers[0], s.InitContainers[1], s.InitContainers[2], s.Containers[0]
	if first.State != container.StateExited || first.Exited.ExitCode != 0 || second.State != container.StateExited || second.Exited.ExitCode != 0 {
		t.Fatalf("init containers: %s", describe(s))
	}
	if side.State != container.StateRunning {
		t.Errorf("sidecar not running: %s", describe(s))
	}
	if !first.Exited.FinishedAt.Before(side.StartedAt) && !first.Exited.FinishedAt.Equal(side.StartedAt) {
		t.Errorf("sidecar started %v before the first init container finished %v", side.StartedAt, first.Exited.FinishedAt)
	}
	if second.StartedAt.Before(side.StartedAt) || main.StartedAt.Before(second.Exited.FinishedAt) {
		t.Errorf("out of order: sidecar %v, second %v-%v, main %v", side.StartedAt, second.StartedAt, second.Exited.FinishedAt, main.StartedAt)
	}
	if !rec.has("Normal Started Container started") {
		t.Errorf("events: %q", rec.all())
	}

	// Killing it: the sidecar stops after the main container.
	res = killUntilStopped(t, r, pod, 10*time.Second, 20*time.Second)
	side, main = res.Status.InitContainers[1], res.Status.Containers[0]
	if side.Exited == nil || main.Exited == nil || side.Exited.FinishedAt.Before(main.Exited.FinishedAt) {
		t.Errorf("sidecar stopped before the main container: %s", describe(res.Status))
	}
}

// TestFailedInitContainerRetries: a failing init container is retried
// with back-off and the containers never start; with Never the pod ends.
func TestFailedInitContainerRetries(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, nil)
	pod := busyboxPod("initfail", "sleep 3600")
	pod.Spec.InitContainers = []corev1.Container{busybox("fails", "exit 2")}
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.InitContainers[0].RestartCount >= 1 && s.InitContainers[0].WaitingReason == container.ReasonCrashLoopBackOff
	})
	if res.Status.Containers[0].ID != "" {
		t.Errorf("container started after a failed init container: %s", describe(res.Status))
	}

	never := busyboxPod("initfail-never", "sleep 3600")
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	never.Spec.InitContainers = []corev1.Container{busybox("fails", "exit 2")}
	removeAfter(t, r, never.UID)
	res = syncUntil(t, r, never, 30*time.Second, func(s *container.PodStatus) bool {
		return s.InitContainers[0].State == container.StateExited && !s.SandboxReady
	})
	if c := res.Status.InitContainers[0]; c.RestartCount != 0 || c.Exited.ExitCode != 2 || res.Status.Containers[0].ID != "" {
		t.Errorf("failed init container of a Never pod: %s", describe(res.Status))
	}
}

// TestKillPodWithPreStop: KillPod runs the preStop hook, then stops the
// container (which ignores SIGTERM) within the grace period, without
// blocking the caller.
func TestKillPodWithPreStop(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	pod := busyboxPod("prestop", "trap '' TERM; sleep 3600 & wait")
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop-ran > /proc/1/fd/1; sleep 1"}},
	}}
	removeAfter(t, r, pod.UID)
	syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})

	const grace = 4 * time.Second
	start := time.Now()
	first, err := r.KillPod(context.Background(), pod, grace)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("KillPod blocked for %v", took)
	}
	if !first.Status.Running() || first.Requeue == 0 {
		t.Errorf("KillPod under way: running=%t requeue=%v", first.Status.Running(), first.Requeue)
	}
	res := killUntilStopped(t, r, pod, grace, 20*time.Second)
	took := time.Since(start)
	if took < grace-time.Second || took > grace+3*time.Second {
		t.Errorf("stopped after %v, want about the grace period %v (SIGTERM is ignored)", took, grace)
	}
	c := res.Status.Containers[0]
	if c.Exited == nil || c.Exited.ExitCode != 137 {
		t.Errorf("killed container: %s", describe(res.Status))
	}
	logFile := filepath.Join(e.dir, "pods", fmt.Sprintf("default_prestop_%s", pod.UID), "c", "0.log")
	if data, _ := os.ReadFile(logFile); !strings.Contains(string(data), "prestop-ran") {
		t.Errorf("preStop hook left nothing in the log: %q", data)
	}
	if !rec.has("Normal Killing Stopping container c") {
		t.Errorf("no Killing event in %q", rec.all())
	}
}

// TestOOMKilled: a container over its memory limit is OOMKilled.
func TestOOMKilled(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, nil)
	pod := busyboxPod("oom", "tail /dev/zero")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateExited
	})
	if c := res.Status.Containers[0]; c.Exited.Reason != "OOMKilled" || c.Exited.ExitCode != 137 {
		t.Errorf("container over its limit: %s", describe(res.Status))
	}
}

// TestAdoption: a new Runtime over the same containerd (an agent
// restarted) finds the pod's containers as they are.
func TestAdoption(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, nil)
	pod := busyboxPod("adopt", `if [ -e /tmp/ran ]; then sleep 3600; fi; touch /tmp/ran; exit 1`)
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning && s.Containers[0].RestartCount == 1
	})
	before := res.Status.Containers[0]

	again, rec := newRuntime(t, e, nil)
	res = syncUntil(t, again, pod, 10*time.Second, func(*container.PodStatus) bool { return true })
	after := res.Status.Containers[0]
	if after.ID != before.ID || after.RestartCount != 1 || after.State != container.StateRunning {
		t.Errorf("adopted %s, want %s running with 1 restart", describe(res.Status), before.ID)
	}
	if after.Last == nil || after.Last.ExitCode != 1 {
		t.Errorf("adopted container lost its last termination: %+v", after.Last)
	}
	if rec.has("Normal Created") || rec.has("Normal Started") {
		t.Errorf("adopting runtime started containers: %q", rec.all())
	}
	statuses, err := again.PodStatuses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range statuses {
		if s.UID == pod.UID {
			found = true
			if len(s.Containers) != 1 || s.Containers[0].ID != before.ID || s.Containers[0].RestartCount != 1 || !s.SandboxReady {
				t.Errorf("PodStatuses: %s", describe(s))
			}
		}
	}
	if !found {
		t.Errorf("PodStatuses has no pod %s", pod.UID)
	}
}

// TestSandboxChanged: a pod whose sandbox stopped gets a new one (the
// next attempt) and its containers start again in it.
func TestSandboxChanged(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	pod := busyboxPod("sandbox", "trap 'exit 0' TERM; sleep 3600 & wait")
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	before := res.Status.Containers[0]
	ctx := context.Background()
	v, err := r.view(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	old := v.sandbox().Id
	if err := r.RuntimeService().StopPodSandbox(ctx, old); err != nil {
		t.Fatal(err)
	}
	res = syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.SandboxReady && s.Containers[0].State == container.StateRunning
	})
	after := res.Status.Containers[0]
	if after.ID == before.ID || after.RestartCount != 1 {
		t.Errorf("after a new sandbox: %s, want a new instance with 1 restart", describe(res.Status))
	}
	if v, err = r.view(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if sb := v.sandbox(); sb.Id == old || sb.GetMetadata().GetAttempt() != 1 {
		t.Errorf("new sandbox %s attempt %d", sb.Id, sb.GetMetadata().GetAttempt())
	}
	if !rec.has("Normal SandboxChanged Pod sandbox changed, it will be killed and re-created.") {
		t.Errorf("events %q", rec.all())
	}
}

// TestUnhealthyContainerKilled: a container its probes found unhealthy
// is killed with the prober's message within the prober's grace period
// (not the pod's 30s: its sh ignores SIGTERM as PID 1), and restarts.
func TestUnhealthyContainerKilled(t *testing.T) {
	e := env(t)
	var mu sync.Mutex
	var unhealthyID string
	r, rec := newRuntime(t, e, func(c *Config) {
		c.ContainerToKill = func(_ *corev1.Pod, name, id string) (string, time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			if id == unhealthyID {
				return "Container " + name + " failed liveness probe, will be restarted", time.Second, true
			}
			return "", 0, false
		}
	})
	pod := busyboxPod("liveness", "sleep 3600")
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	mu.Lock()
	unhealthyID = res.Status.Containers[0].ID
	mu.Unlock()
	start := time.Now()
	// The 2s minimum grace and a restart; the pod's 30s would be far over.
	res = syncUntil(t, r, pod, 12*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].RestartCount == 1 && s.Containers[0].State == container.StateRunning
	})
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("restarted after %v: the kill did not wait the minimum grace period", took)
	}
	if !rec.has("Normal Killing Container c failed liveness probe, will be restarted") {
		t.Errorf("events %q", rec.all())
	}
	if last := res.Status.Containers[0].Last; last == nil || last.ID != unhealthyID || last.ExitCode != 137 {
		t.Errorf("last termination %+v, want the unhealthy instance SIGKILLed", last)
	}
}

// TestUnhealthySidecarKilled: a sidecar's kill message is upstream's
// "Init container s failed liveness probe" (no ", will be restarted")
// and it restarts while the container keeps running.
func TestUnhealthySidecarKilled(t *testing.T) {
	e := env(t)
	var mu sync.Mutex
	var unhealthyID string
	r, rec := newRuntime(t, e, func(c *Config) {
		c.Unhealthy = func(_ *corev1.Pod, name, id string) string {
			mu.Lock()
			defer mu.Unlock()
			if id == unhealthyID {
				return "Init container " + name + " failed liveness probe"
			}
			return ""
		}
	})
	pod := busyboxPod("sidecar-liveness", "trap 'exit 0' TERM; sleep 3600 & wait")
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	sidecar := busybox("s", "trap 'exit 0' TERM; sleep 3600 & wait")
	sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	pod.Spec.InitContainers = []corev1.Container{sidecar}
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.InitContainers[0].State == container.StateRunning && s.Containers[0].State == container.StateRunning
	})
	mainID := res.Status.Containers[0].ID
	mu.Lock()
	unhealthyID = res.Status.InitContainers[0].ID
	mu.Unlock()
	res = syncUntil(t, r, pod, 20*time.Second, func(s *container.PodStatus) bool {
		return s.InitContainers[0].RestartCount == 1 && s.InitContainers[0].State == container.StateRunning
	})
	if c := res.Status.Containers[0]; c.ID != mainID || c.State != container.StateRunning {
		t.Errorf("the container did not keep running: %s", describe(res.Status))
	}
	var kills []string
	for _, ev := range rec.all() {
		if strings.HasPrefix(ev, "Normal Killing ") {
			kills = append(kills, ev)
		}
	}
	if want := "Normal Killing Init container s failed liveness probe"; len(kills) != 1 || kills[0] != want {
		t.Errorf("Killing events %q, want [%q]", kills, want)
	}
}

// TestKillUnknownPod: a pod the runtime never had has nothing to report.
func TestKillUnknownPod(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, nil)
	pod := busyboxPod("unknown", "true")
	res, err := r.KillPod(context.Background(), pod, time.Second)
	if err != nil || res.Status == nil || len(res.Status.Containers) != 0 || res.Status.Running() || res.Requeue != 0 {
		t.Errorf("KillPod of an unknown pod = %s, %v, requeue %v", describe(res.Status), err, res.Requeue)
	}
	if err := r.RemovePod(context.Background(), pod.UID); err != nil {
		t.Errorf("RemovePod of an unknown pod: %v", err)
	}
}
