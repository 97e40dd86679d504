package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// testLifecycle: a container over its memory limit is OOMKilled; a
// crashing container backs off as upstream's (10 s, doubling); a deleted
// pod runs its preStop hook, then SIGTERM, and is killed at the end of
// its grace period if it does not stop.
func (ln *localNode) testLifecycle(t *testing.T) {
	hostDir := filepath.Join(ln.dir, "prestop")
	ln.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  restartPolicy: OnFailure
  containers:
  - name: oom
    image: %[1]s
    command: [dd, if=/dev/zero, of=/dev/null, bs=64M, count=1]
    resources: {limits: {memory: 20Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: stopper}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 10
  containers:
  - name: stopper
    image: %[1]s
    command: [sh, -c, 'trap "echo TERM >> /host/log; exit 0" TERM; echo started >> /host/log; while true; do sleep 1; done']
    lifecycle:
      preStop:
        exec: {command: [sh, -c, 'echo prestop >> /host/log; sleep 2']}
    volumeMounts: [{name: host, mountPath: /host}]
  volumes:
  - name: host
    hostPath: {path: %[2]s, type: DirectoryOrCreate}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 3
  containers:
  - name: stubborn
    image: %[1]s
    command: [sh, -c, 'trap "" TERM; while true; do sleep 1; done']
`, nodeimages.BusyboxImage, hostDir))
	t.Cleanup(func() { ln.k.run("delete", "pod", "oom", "crash", "stopper", "stubborn", "--wait=false") })

	t.Run("OOMKilled", ln.testOOMKilled)
	t.Run("CrashLoopBackOff", ln.testCrashLoopBackOff)
	t.Run("PreStop", func(t *testing.T) { ln.testPreStop(t, hostDir) })
	t.Run("GracePeriod", ln.testGracePeriod)
}

func (ln *localNode) testOOMKilled(t *testing.T) {
	ln.waitPod(t, "oom", 60*time.Second, func(p *corev1.Pod) string {
		if len(p.Status.ContainerStatuses) == 0 {
			return "no container status"
		}
		last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
		if last == nil || last.Reason != "OOMKilled" || last.ExitCode != 137 {
			return "want lastState terminated OOMKilled, exit code 137: " + containerStates(p)
		}
		return ""
	})
}

// testCrashLoopBackOff: pod crash (started first by TestLocalNode) exits
// 3 a second after each start; the kubelet restarts it at once, then
// after 10 s, 20 s, 40 s, ... with the CrashLoopBackOff waiting reason and
// BackOff events.
func (ln *localNode) testCrashLoopBackOff(t *testing.T) {
	var sawWaiting string
	p := ln.waitPod(t, "crash", 90*time.Second, func(p *corev1.Pod) string {
		if len(p.Status.ContainerStatuses) == 0 {
			return "no container status"
		}
		c := p.Status.ContainerStatuses[0]
		if w := c.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			sawWaiting = w.Message
		}
		if c.RestartCount < 2 || sawWaiting == "" {
			return "want 2 restarts and the CrashLoopBackOff reason: " + containerStates(p)
		}
		return ""
	})
	c := p.Status.ContainerStatuses[0]
	if last := c.LastTerminationState.Terminated; last == nil || last.ExitCode != 3 || last.Reason != "Error" {
		t.Errorf("lastState: %+v, want terminated with exit code 3, reason Error", c.LastTerminationState)
	}
	wantMsg := fmt.Sprintf("restarting failed container=crash pod=crash_%s(%s)", ln.k.ns, p.UID)
	if !strings.HasPrefix(sawWaiting, "back-off ") || !strings.HasSuffix(sawWaiting, wantMsg) {
		t.Errorf("CrashLoopBackOff message %q, want \"back-off <duration> %s\"", sawWaiting, wantMsg)
	}
	// As upstream's: the first restart is immediate, the nth waits
	// 10 s × 2ⁿ⁻² after the container's end; each run takes a second.
	age := time.Since(p.CreationTimestamp.Time)
	n := int(c.RestartCount)
	earliest := func(n int) time.Duration { return time.Duration(n+10*(1<<(n-1)-1)) * time.Second }
	if age < earliest(n)-2*time.Second || age > earliest(n+1)+15*time.Second {
		t.Errorf("%d restarts %s after the pod's creation, want the restart %d at %s, the next at %s", n, age.Round(time.Second), n, earliest(n), earliest(n+1))
	}
	want := fmt.Sprintf("Back-off restarting failed container crash in pod crash_%s(%s)", ln.k.ns, p.UID)
	if events := ln.podEvents(t, "crash"); findEvent(events, "BackOff", want) == nil {
		t.Errorf("no BackOff event %q:%s", want, eventList(events))
	}
}

// testPreStop: kubectl delete runs the preStop hook (2 s) before SIGTERM,
// which the container handles: deleted well within its grace period.
func (ln *localNode) testPreStop(t *testing.T, hostDir string) {
	ln.waitPod(t, "stopper", 60*time.Second, podAllReady)
	start := time.Now()
	ln.k.ok(t, "delete", "pod", "stopper", "--timeout=60s")
	took := time.Since(start)
	data, _ := os.ReadFile(filepath.Join(hostDir, "log"))
	if got := strings.Fields(string(data)); strings.Join(got, " ") != "started prestop TERM" {
		t.Errorf("the container wrote %q, want started, prestop (the hook), TERM (the signal after the hook)", data)
	}
	if took < 2*time.Second || took > 9*time.Second {
		t.Errorf("the deletion took %s, want the preStop's 2 s plus a little, within the grace period (10 s)", took.Round(100*time.Millisecond))
	}
}

// testGracePeriod: a container that ignores SIGTERM is killed at the end
// of its grace period (3 s).
func (ln *localNode) testGracePeriod(t *testing.T) {
	ln.waitPod(t, "stubborn", 60*time.Second, podAllReady)
	start := time.Now()
	ln.k.ok(t, "delete", "pod", "stubborn", "--timeout=60s")
	if took := time.Since(start); took < 3*time.Second || took > 9*time.Second {
		t.Errorf("the deletion took %s, want the grace period (3 s) plus a little", took.Round(100*time.Millisecond))
	}
	if e := findEvent(ln.podEvents(t, "stubborn"), "Killing", "Stopping container stubborn"); e == nil {
		t.Errorf("no Killing event \"Stopping container stubborn\"")
	}
}
