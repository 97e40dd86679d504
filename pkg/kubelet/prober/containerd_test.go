package prober_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/prober"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// recorder keeps the events of the runtime and of the probes.
type recorder struct {
	mu   sync.Mutex
	list []string
}

func (r *recorder) Event(_ runtime.Object, eventType, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, eventType+" "+reason+" "+message)
}

func (r *recorder) Eventf(o runtime.Object, eventType, reason, format string, args ...any) {
	r.Event(o, eventType, reason, fmt.Sprintf(format, args...))
}

func (r *recorder) AnnotatedEventf(o runtime.Object, _ map[string]string, eventType, reason, format string, args ...any) {
	r.Eventf(o, eventType, reason, format, args...)
}

func (r *recorder) has(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.list {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}

// TestProbesOnContainerd: real containers probed through the CRI runtime:
// a startup probe holds the others, a TCP readiness probe to the pod IP
// makes the container ready, an exec liveness probe that starts failing
// has the container killed and restarted with upstream's events, an exec
// probe over its timeout fails with "command timed out".
func TestProbesOnContainerd(t *testing.T) {
	p := containerdtest.Start(t, containerdtest.Options{Name: "prober", PodCIDR: netip.MustParsePrefix("10.216.13.0/24"), Images: true})
	rec := &recorder{}
	var probes *prober.Manager
	r, err := cri.New(cri.Config{
		Endpoint: p.Endpoint(), Recorder: rec, NodeName: "node-1",
		RootDir: filepath.Join(filepath.Dir(p.Address()), "kubelet"), PodLogsDir: filepath.Join(filepath.Dir(p.Address()), "pods"),
		HostIPs:        func() []string { return []string{"127.0.0.1"} },
		BackoffInitial: time.Second, BackoffMax: 4 * time.Second, PollInterval: 200 * time.Millisecond,
		Unhealthy: func(pod *corev1.Pod, name, id string) string { return probes.Unhealthy(pod, name, id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	probes = prober.NewManager(prober.Options{Execer: r, Recorder: rec})
	defer probes.Stop()

	exec := func(cmd ...string) corev1.ProbeHandler {
		return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probed", Namespace: "default", UID: uuid.NewUUID()},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyAlways,
			// sh as PID 1 ignores SIGTERM: a kill lasts the grace period.
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers: []corev1.Container{{
				Name: "c", Image: nodeimages.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				// Healthy after 2s, serving TCP, unhealthy 6s later.
				Command: []string{"sh", "-c", "sleep 2; touch /tmp/healthy; mkdir -p /www; httpd -p 8080 -h /www; sleep 6; rm /tmp/healthy; sleep 3600"},
				Ports:   []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}},
				StartupProbe: &corev1.Probe{ProbeHandler: exec("test", "-e", "/tmp/healthy"),
					PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 30, SuccessThreshold: 1},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("web")}},
					PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1},
				LivenessProbe: &corev1.Probe{ProbeHandler: exec("cat", "/tmp/healthy"),
					PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 2, SuccessThreshold: 1,
					TerminationGracePeriodSeconds: ptr.To[int64](1)},
			}, {
				Name: "slow", Image: nodeimages.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
				ReadinessProbe: &corev1.Probe{ProbeHandler: exec("sleep", "5"),
					PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1},
			}},
		},
	}

	// The pod workers' loop: sync, tell the probes, read their results.
	var (
		res         container.SyncResult
		firstID     string
		startedSeen time.Time
		readySeen   time.Time
	)
	begin := time.Now()
	deadline := begin.Add(60 * time.Second)
	for {
		probes.AddPod(pod)
		res, err = r.SyncPod(context.Background(), pod)
		if err != nil {
			t.Fatalf("SyncPod: %v", err)
		}
		probes.SetRuntimeStatus(res.Status)
		c := res.Status.Find("c", false)
		if c != nil && c.State == container.StateRunning {
			if firstID == "" {
				firstID = c.ID
				if probes.Started(pod, "c") || probes.Ready(pod, "c") {
					t.Fatal("started or ready before its startup probe succeeded")
				}
			}
			if c.ID == firstID && startedSeen.IsZero() && probes.Started(pod, "c") {
				startedSeen = time.Now()
			}
			if c.ID == firstID && readySeen.IsZero() && probes.Ready(pod, "c") {
				readySeen = time.Now()
			}
			if c.RestartCount == 1 && c.ID != firstID {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart after a liveness failure: %+v\nevents %q", res.Status, rec.all())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if startedSeen.IsZero() || readySeen.IsZero() {
		t.Fatalf("the first instance was never started (%v) or ready (%v); events %q", startedSeen, readySeen, rec.all())
	}
	if probes.Ready(pod, "slow") {
		t.Error("a container whose readiness probe times out is ready")
	}
	for _, want := range []string{
		"Warning Unhealthy Startup probe failed: ",
		"Warning Unhealthy Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory",
		"Normal Killing Container c failed liveness probe, will be restarted",
		`Warning Unhealthy Readiness probe failed: command timed out: "sleep 5" timed out after 1s`,
	} {
		if !rec.has(want) {
			t.Errorf("no event %q in %q", want, rec.all())
		}
	}
	// The new instance starts over: not started until its startup probe.
	if c := res.Status.Find("c", false); probes.Started(pod, "c") && time.Since(c.StartedAt) < time.Second {
		t.Error("the restarted instance is started before its startup probe")
	}
	t.Logf("started after %v, ready after %v, restarted after %v", startedSeen.Sub(begin), readySeen.Sub(begin), time.Since(begin))
}
