package simulated

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

// sim drives one pod through a Runtime and status.Generate on a fake
// clock, as the pod workers do, keeping the written status as the API
// would.
type sim struct {
	t     *testing.T
	clock *testingclock.FakeClock
	rt    *Runtime
	pod   *corev1.Pod
}

func newSim(t *testing.T, pod *corev1.Pod, delay time.Duration) *sim {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cidr := []netip.Prefix{netip.MustParsePrefix("10.244.3.0/24")}
	rt := &Runtime{Clock: clk, StartDelay: delay, HostIPs: []string{"100.64.0.1"}, PodCIDRs: func() []netip.Prefix { return cidr }}
	return &sim{t: t, clock: clk, rt: rt, pod: pod}
}

// sync returns when to sync again.
func (s *sim) sync() time.Duration {
	res, err := s.rt.SyncPod(context.Background(), s.pod)
	if err != nil {
		s.t.Fatal(err)
	}
	s.pod.Status = status.Generate(s.pod, res.Status, status.Options{Now: s.clock.Now(), HostIPs: s.rt.HostIPs, Ready: Ready})
	return res.Requeue
}

func (s *sim) container(name string) corev1.ContainerStatus {
	for _, c := range append(append([]corev1.ContainerStatus{}, s.pod.Status.InitContainerStatuses...), s.pod.Status.ContainerStatuses...) {
		if c.Name == name {
			return c
		}
	}
	s.t.Fatalf("no status of container %s", name)
	return corev1.ContainerStatus{}
}

func (s *sim) condition(typ corev1.PodConditionType) string {
	for _, c := range s.pod.Status.Conditions {
		if c.Type == typ {
			return strings.TrimSpace(string(c.Status) + " " + c.Reason + " " + c.Message)
		}
	}
	return "missing"
}

func testPod(policy corev1.RestartPolicy, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1", Generation: 2, Annotations: annotations},
		Spec: corev1.PodSpec{
			RestartPolicy: policy,
			InitContainers: []corev1.Container{
				{Name: "setup", Image: "busybox"},
				{Name: "sidecar", Image: "envoy:1.30", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
			},
			Containers: []corev1.Container{
				{Name: "a", Image: "nginx:1.27", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resourceQuantity("100m")}}},
				{Name: "b", Image: "registry.example.com:5000/app"},
			},
		},
	}
}

func TestPendingThenRunningReady(t *testing.T) {
	s := newSim(t, testPod(corev1.RestartPolicyAlways, nil), 3*time.Second)
	if next := s.sync(); next != 3*time.Second {
		t.Errorf("requeue %s, want the start delay", next)
	}
	if s.pod.Status.Phase != corev1.PodPending || s.container("a").State.Waiting.Reason != "PodInitializing" ||
		s.condition(corev1.PodReadyToStartContainers) != "False PodSandboxNotReady no pod sandbox exists" ||
		s.condition(corev1.PodInitialized) != "False ContainersNotInitialized containers with incomplete status: [setup sidecar]" {
		t.Errorf("before the delay: %s %+v", s.pod.Status.Phase, s.pod.Status.Conditions)
	}
	s.clock.Step(3 * time.Second)
	if next := s.sync(); next != 0 {
		t.Errorf("requeue %s, want none", next)
	}
	st := s.pod.Status
	if st.Phase != corev1.PodRunning || st.PodIP != "10.244.3.2" || st.HostIP != "100.64.0.1" || st.QOSClass != corev1.PodQOSBurstable ||
		st.StartTime == nil || st.ObservedGeneration != 2 {
		t.Errorf("running: %+v", st)
	}
	for _, c := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		if got := s.condition(c); got != "True" {
			t.Errorf("condition %s: %s", c, got)
		}
	}
	setup := s.container("setup")
	if term := setup.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" || !setup.Ready || *setup.Started {
		t.Errorf("init container: %+v", setup)
	}
	if sc := s.container("sidecar"); sc.State.Running == nil || !sc.Ready || !*sc.Started {
		t.Errorf("sidecar: %+v", sc)
	}
	a := s.container("a")
	if a.State.Running == nil || !a.Ready || !strings.HasPrefix(a.ContainerID, "skiff-simulated://") || len(a.ContainerID) != len("skiff-simulated://")+64 ||
		!strings.HasPrefix(a.ImageID, "nginx@sha256:") || a.AllocatedResources.Cpu().MilliValue() != 100 {
		t.Errorf("container a: %+v", a)
	}
	if b := s.container("b"); !strings.HasPrefix(b.ImageID, "registry.example.com:5000/app@sha256:") {
		t.Errorf("image ID %s", b.ImageID)
	}
}

func TestNotReady(t *testing.T) {
	s := newSim(t, testPod(corev1.RestartPolicyAlways, map[string]string{AnnotationReady: "false"}), 0)
	s.sync()
	if s.pod.Status.Phase != corev1.PodRunning ||
		s.condition(corev1.ContainersReady) != "False ContainersNotReady containers with unready status: [sidecar a b]" ||
		s.condition(corev1.PodReady) != "False ContainersNotReady containers with unready status: [sidecar a b]" {
		t.Errorf("%s %+v", s.pod.Status.Phase, s.pod.Status.Conditions)
	}
}

func TestExitNever(t *testing.T) {
	for code, want := range map[string]corev1.PodPhase{"0": corev1.PodSucceeded, "3": corev1.PodFailed} {
		s := newSim(t, testPod(corev1.RestartPolicyNever, map[string]string{AnnotationExitAfter: "5s", AnnotationExitCode: code}), 0)
		if next := s.sync(); next != 5*time.Second {
			t.Errorf("requeue %s, want the exit", next)
		}
		s.clock.Step(5 * time.Second)
		s.sync()
		if s.pod.Status.Phase != want {
			t.Errorf("exit code %s: phase %s, want %s", code, s.pod.Status.Phase, want)
		}
		term := s.container("a").State.Terminated
		if term == nil || (code == "0") != (term.Reason == "Completed") || (code == "3") != (term.Reason == "Error" && term.ExitCode == 3) {
			t.Errorf("exit code %s: %+v", code, term)
		}
		if sc := s.container("sidecar"); sc.State.Terminated == nil {
			t.Errorf("sidecar still %+v after the containers finished", sc.State)
		}
		wantReason := "PodCompleted"
		if want == corev1.PodFailed {
			wantReason = "PodFailed"
		}
		if got := s.condition(corev1.PodReady); got != "False "+wantReason {
			t.Errorf("exit code %s: Ready %s", code, got)
		}
		if got := s.condition(corev1.PodReadyToStartContainers); got != "False PodSandboxNotReady pod sandbox is not ready" {
			t.Errorf("exit code %s: PodReadyToStartContainers %s", code, got)
		}
		if s.pod.Status.PodIP != "10.244.3.2" {
			t.Errorf("a finished pod keeps reporting its IP: %q", s.pod.Status.PodIP)
		}
	}
}

// TestCrashLoopBackOff: with restartPolicy Always, each exit restarts the
// container: the first at once, then after 10s, 20s, 40s ... up to 5min,
// in CrashLoopBackOff meanwhile, as upstream's kubelet.
func TestCrashLoopBackOff(t *testing.T) {
	s := newSim(t, testPod(corev1.RestartPolicyAlways, map[string]string{AnnotationExitAfter: "1s", AnnotationExitCode: "1"}), 0)
	s.sync()
	wantBackoff := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for restart, backoff := range wantBackoff {
		s.clock.Step(time.Second)
		s.sync() // exits
		next := s.sync()
		a := s.container("a")
		if backoff == 0 {
			if a.State.Running == nil || a.RestartCount != 1 {
				t.Fatalf("first exit: restarted at once, got %+v", a)
			}
			continue
		}
		if a.State.Waiting == nil || a.State.Waiting.Reason != "CrashLoopBackOff" || next != backoff ||
			!strings.HasPrefix(a.State.Waiting.Message, "back-off "+backoff.String()+" restarting failed container=a pod=p_ns(uid-1)") {
			t.Fatalf("exit %d: requeue %s, state %+v; want back-off %s", restart+1, next, a.State, backoff)
		}
		if a.LastTerminationState.Terminated == nil || a.LastTerminationState.Terminated.ExitCode != 1 || a.RestartCount != int32(restart) {
			t.Fatalf("exit %d: %+v", restart+1, a)
		}
		if s.pod.Status.Phase != corev1.PodRunning || s.condition(corev1.ContainersReady) != "False ContainersNotReady containers with unready status: [a b]" {
			t.Fatalf("exit %d: %s %s", restart+1, s.pod.Status.Phase, s.condition(corev1.ContainersReady))
		}
		s.clock.Step(backoff)
		s.sync()
		if a := s.container("a"); a.State.Running == nil || a.RestartCount != int32(restart+1) {
			t.Fatalf("after the back-off of exit %d: %+v", restart+1, a)
		}
	}
}

func TestOnFailureExitZeroSucceeds(t *testing.T) {
	s := newSim(t, testPod(corev1.RestartPolicyOnFailure, map[string]string{AnnotationExitAfter: "1s"}), 0)
	s.sync()
	s.clock.Step(time.Second)
	s.sync()
	if s.pod.Status.Phase != corev1.PodSucceeded || s.container("a").RestartCount != 0 {
		t.Errorf("phase %s, %+v", s.pod.Status.Phase, s.container("a"))
	}
}

func TestKillPodAndAdoption(t *testing.T) {
	s := newSim(t, testPod(corev1.RestartPolicyAlways, nil), 0)
	s.sync()
	id := s.container("a").ContainerID
	// Another agent takes the pod over from its status: same containers.
	other := &Runtime{Clock: s.clock, HostIPs: s.rt.HostIPs, PodCIDRs: s.rt.PodCIDRs}
	res, _ := other.SyncPod(context.Background(), s.pod)
	if c := res.Status.Find("a", false); c == nil || c.ID != id || len(res.Status.IPs) != 1 || res.Status.IPs[0] != s.pod.Status.PodIP {
		t.Errorf("adopted %+v, want container %s at %s", res.Status, id, s.pod.Status.PodIP)
	}
	res, _ = s.rt.KillPod(context.Background(), s.pod, 30*time.Second)
	if res.Status.Running() {
		t.Fatalf("still running after KillPod: %+v", res.Status)
	}
	st := status.Generate(s.pod, res.Status, status.Options{Now: s.clock.Now(), Terminal: true})
	if st.Phase != corev1.PodSucceeded {
		t.Errorf("killed pod phase %s", st.Phase)
	}
	// Its IP is free again.
	_ = s.rt.RemovePod(context.Background(), s.pod.UID)
	if list, _ := s.rt.PodStatuses(context.Background()); len(list) != 0 {
		t.Errorf("runtime still has %v", list)
	}
}

func TestHostNetwork(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil)
	pod.Spec.HostNetwork = true
	s := newSim(t, pod, 0)
	s.sync()
	if s.pod.Status.PodIP != "100.64.0.1" || len(s.pod.Status.PodIPs) != 1 {
		t.Errorf("hostNetwork pod IPs %v", s.pod.Status.PodIPs)
	}
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }
