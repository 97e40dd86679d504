package cri

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

// TestEphemeralContainers: kubectl debug's containers start in a running
// pod (one in its target's PID namespace), are never restarted, are
// reported as ephemeralContainerStatuses, and stop with the pod.
func TestEphemeralContainers(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	pod := busyboxPod("debugged", "exec sleep 3600")
	pod.Spec.TerminationGracePeriodSeconds = new(int64)
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	target := res.Status.Containers[0]

	debug := func(name, script string) corev1.EphemeralContainer {
		c := busybox(name, script)
		return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon(c)}
	}
	shell := debug("debugger", "sleep 3600; true")
	shell.TargetContainerName = "c"
	shell.Stdin, shell.TTY = true, true
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{shell, debug("oneshot", "exit 3")}
	res = syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return len(s.EphemeralContainers) == 2 && s.EphemeralContainers[0].State == container.StateRunning &&
			s.EphemeralContainers[1].State == container.StateExited
	})
	ctx := context.Background()
	want, _, _, err := r.ExecSync(ctx, target.ID, []string{"cat", "/proc/1/cmdline"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, _, _, err := r.ExecSync(ctx, res.Status.EphemeralContainers[0].ID, []string{"cat", "/proc/1/cmdline"}, 5*time.Second)
	if err != nil || string(got) != string(want) {
		t.Errorf("PID 1 of the debug container is %q (%v), want the target's %q: not in its PID namespace", got, err, want)
	}
	if !rec.hasFor("Normal Started Container started", pod.Name) {
		t.Errorf("events %q", rec.all())
	}

	// Exited: never started again.
	time.Sleep(500 * time.Millisecond)
	res = syncUntil(t, r, pod, time.Second, func(*container.PodStatus) bool { return true })
	oneshot := res.Status.EphemeralContainers[1]
	if oneshot.RestartCount != 0 || oneshot.State != container.StateExited || oneshot.Exited.ExitCode != 3 || oneshot.WaitingReason != "" {
		t.Errorf("exited ephemeral container: %+v", oneshot)
	}
	v, err := r.view(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(v.instances("oneshot")); n != 1 {
		t.Errorf("%d instances of the exited ephemeral container, want 1 (never restarted)", n)
	}

	api := status.Generate(pod, res.Status, status.Options{Now: time.Now()})
	if len(api.EphemeralContainerStatuses) != 2 {
		t.Fatalf("ephemeralContainerStatuses %+v", api.EphemeralContainerStatuses)
	}
	es := api.EphemeralContainerStatuses
	if es[0].Name != "debugger" || es[0].State.Running == nil || es[0].Ready || es[0].Started != nil || es[0].ContainerID == "" {
		t.Errorf("running ephemeral container's status %+v", es[0])
	}
	if es[1].State.Terminated == nil || es[1].State.Terminated.ExitCode != 3 {
		t.Errorf("exited ephemeral container's status %+v", es[1])
	}
	if len(api.ContainerStatuses) != 1 {
		t.Errorf("containerStatuses %+v, want the one container", api.ContainerStatuses)
	}

	res = killUntilStopped(t, r, pod, 0, 20*time.Second)
	if c := res.Status.EphemeralContainers[0]; c.State != container.StateExited {
		t.Errorf("ephemeral container after KillPod: %+v", c)
	}
}
