package prober

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	criclient "k8s.io/cri-client/pkg"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// scriptExec answers exec probes by command: the exit code set for the
// command's first word (0 by default); it counts calls.
type scriptExec struct {
	mu    sync.Mutex
	codes map[string]int
	calls map[string]int
	hang  map[string]bool
	ids   []string
	// called gets the command of each call.
	called chan string
}

func newScriptExec() *scriptExec {
	return &scriptExec{codes: map[string]int{}, calls: map[string]int{}, hang: map[string]bool{}, called: make(chan string, 100)}
}

func (e *scriptExec) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, int, error) {
	e.mu.Lock()
	name := cmd[0]
	e.calls[name]++
	e.ids = append(e.ids, id)
	code, hang := e.codes[name], e.hang[name]
	e.mu.Unlock()
	e.called <- strings.Join(cmd, " ")
	if hang {
		// As a runtime does: the command is killed at its timeout.
		select {
		case <-ctx.Done():
			return nil, nil, 0, ctx.Err()
		case <-time.After(timeout):
			return nil, nil, 0, fmt.Errorf("%w: %q timed out after %s", criclient.ErrCommandTimedOut, strings.Join(cmd, " "), timeout)
		}
	}
	return []byte(name + " says " + strings.Join(cmd[1:], " ")), nil, code, nil
}

func (e *scriptExec) set(name string, code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.codes[name] = code
}

func (e *scriptExec) count(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[name]
}

type fixture struct {
	t        *testing.T
	m        *Manager
	clock    *clocktesting.FakeClock
	exec     *scriptExec
	recorder *record.FakeRecorder
	mu       sync.Mutex
	updates  []Update
}

// newFixture is a Manager on a fake clock that began an hour ago (no
// start-up jitter, no kubelet restart in sight).
func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)),
		exec: newScriptExec(), recorder: record.NewFakeRecorder(100)}
	f.m = NewManager(Options{Execer: f.exec, Recorder: f.recorder, Clock: f.clock, OnUpdate: func(u Update) {
		f.mu.Lock()
		f.updates = append(f.updates, u)
		f.mu.Unlock()
	}})
	f.m.start = f.clock.Now().Add(-time.Hour)
	f.m.jitter = func(time.Duration) time.Duration { return 0 }
	t.Cleanup(f.m.Stop)
	return f
}

func (f *fixture) takeUpdates() []Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.updates
	f.updates = nil
	return u
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func execProbe(cmd ...string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}}
}

func testPod(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1ObjectMeta("web", "uid-1"),
		Spec: corev1.PodSpec{Containers: containers, RestartPolicy: corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30)},
	}
}

// running is the runtime status of the pod's containers running as
// instance id, started at startedAt.
func running(pod *corev1.Pod, id string, startedAt time.Time) *container.PodStatus {
	rs := &container.PodStatus{UID: pod.UID, SandboxReady: true, IPs: []string{"127.0.0.1"}}
	for _, c := range pod.Spec.Containers {
		rs.Containers = append(rs.Containers, container.ContainerStatus{Name: c.Name, ID: "containerd://" + id + "-" + c.Name,
			State: container.StateRunning, StartedAt: startedAt})
	}
	return rs
}

// addUnstarted registers the pod's probe workers without their
// goroutines, for tests that probe step by step.
func (f *fixture) addUnstarted(pod *corev1.Pod) map[ProbeType]*worker {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	f.m.pods[pod.UID] = &podEntry{pod: pod}
	out := map[ProbeType]*worker{}
	c := &pod.Spec.Containers[0]
	for typ, spec := range map[ProbeType]*corev1.Probe{Liveness: c.LivenessProbe, Readiness: c.ReadinessProbe, Startup: c.StartupProbe} {
		if spec == nil {
			continue
		}
		key := probeKey{pod.UID, c.Name, typ}
		w := newWorker(f.m, key, pod, c, false, spec)
		f.m.workers[key] = w
		out[typ] = w
	}
	return out
}

func (f *fixture) result(typ ProbeType, id string) (Result, bool) {
	return f.m.results[typ].get(id)
}

func uid(s string) types.UID { return types.UID(s) }

func metav1ObjectMeta(name, id string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid(id)}
}
