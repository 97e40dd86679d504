package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/harness"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// localNodeReason says why this machine cannot run skiff server's local
// node, "" if it can.
func localNodeReason() string {
	if os.Geteuid() != 0 {
		return "the local node needs root"
	}
	for _, bin := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed (hack/node-deps.sh installs it)"
		}
	}
	return ""
}

// startLocalNode starts skiff server with its local node and the node
// images in <data-dir>/agent/images. The caller cleans up: deleteAllPods,
// Stop, then containerdtest.KillShims (the shims outlive skiff's containerd by design)
// and cni.Cleanup.
func startLocalNode(t *testing.T, dir string, port int) *harness.Server {
	t.Helper()
	images := filepath.Join(dir, "agent", "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range nodeimages.Archives(t) {
		data, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(images, filepath.Base(a)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Dir: dir, Port: port, LocalNode: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// reserveForeignPodIPs records, in the host-local store of the local
// node under dir, the IPs that pods of other runtimes on this machine
// hold (the eth0 of every pinned network namespace): pods of a killed
// test run keep theirs on the shared bridge, and a second pod with the
// same IP would make both unreachable.
func reserveForeignPodIPs(t *testing.T, dir string) {
	t.Helper()
	store := filepath.Join(dir, "agent", "kubelet", "cni", cni.DefaultNetworkName)
	pinned, _ := filepath.Glob("/run/netns/*")
	var reserved []string
	for _, p := range pinned {
		out, err := exec.Command("ip", "-n", filepath.Base(p), "-4", "-o", "addr", "show", "dev", "eth0").Output()
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(out)) {
			if prefix, err := netip.ParsePrefix(f); err == nil {
				if err := os.MkdirAll(store, 0o755); err != nil {
					t.Fatal(err)
				}
				// host-local's lease file: container ID, CRLF, interface.
				ip := prefix.Addr().String()
				if err := os.WriteFile(filepath.Join(store, ip), []byte("reserved-by-e2e\r\neth0"), 0o644); err != nil {
					t.Fatal(err)
				}
				reserved = append(reserved, ip)
			}
		}
	}
	if len(reserved) > 0 {
		t.Logf("pod IPs held by other pods on this machine, reserved: %s", strings.Join(reserved, " "))
	}
}

// waitNoOtherNode waits for this machine's kubelet port to be free: a
// second local node would fail to serve it, and the API server would
// reach the other node's kubelet instead.
func waitNoOtherNode(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:10250", time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("another kubelet listens on :10250 (another local node on this machine?): only one can run at a time")
		}
		time.Sleep(2 * time.Second)
	}
}

// deleteAllPods deletes every pod of the cluster with a grace period of 1 s
// and waits (up to 30 s) for the node to have stopped them: their
// sandboxes torn down through CNI, so that nothing holds their IPs.
func (ln *localNode) deleteAllPods(t *testing.T) {
	ctx := context.Background()
	one := int64(1)
	pods, err := ln.admin.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("listing pods for the cleanup: %v", err)
		return
	}
	for _, p := range pods.Items {
		_ = ln.admin.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &one})
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		left, err := ln.admin.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil || len(left.Items) == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("pods left after the cleanup's deletion")
}

// localNode is one skiff server with its local node, shared by the
// subtests of TestLocalNode: only one local node can run on a machine at
// a time (one cni0 bridge, one pod range).
type localNode struct {
	dir   string
	srv   *harness.Server
	admin *kubernetes.Clientset
	node  *corev1.Node
	// k is the newest kubectl, in the namespace of the test's pods.
	k *kctl
	// kubectls are the kubectls the streaming checks run: 1.27, 1.33 and
	// 1.37 when found (every one given by -kubectl or $KUBECTL).
	kubectls []kubectlBinary
}

// TestLocalNode: skiff server runs a node on this machine's containerd,
// as k3s does, and stock kubectls use its pods as on upstream's kubelet:
// logs, exec, cp, port-forward and attach; probes; OOM kills, crash-loop
// back-off and graceful deletion; configMap, secret, downwardAPI and
// projected volumes; the node's kubelet API through nodes/proxy; and, last,
// kill -9 of the server, whose containers keep running and are adopted by
// the restarted server.
func TestLocalNode(t *testing.T) {
	if why := localNodeReason(); why != "" {
		t.Skip(why)
	}
	paths := findKubectls()
	if len(paths) == 0 {
		t.Fatal("no kubectl found")
	}
	ln := &localNode{dir: t.TempDir()}
	ln.kubectls = streamingKubectls(t, paths)
	waitNoOtherNode(t)
	reserveForeignPodIPs(t, ln.dir)
	ln.srv = startLocalNode(t, ln.dir, 0)
	t.Cleanup(func() {
		if ln.srv != nil {
			ln.deleteAllPods(t)
			_ = ln.srv.Stop()
		}
		containerdtest.KillShims(ln.dir)
		_ = cni.Cleanup(cni.Config{DataDir: filepath.Join(ln.dir, "agent", "kubelet", "cni")})
	})
	ln.admin = adminClient(t, ln.srv)
	ln.k = newKctl(t, ln.kubectls[len(ln.kubectls)-1], ln.srv)
	ln.waitNodeReady(t)

	ln.startRestartingPods(t)

	t.Run("Pod", ln.testPod)
	t.Run("Kubectl", ln.testKubectl)
	t.Run("NodeProxy", ln.testNodeProxy)
	t.Run("Probes", ln.testProbes)
	t.Run("Volumes", ln.testVolumes)
	t.Run("Lifecycle", ln.testLifecycle)
	t.Run("ExtendedResourcePreemption", ln.testExtendedResourcePreemption)
	t.Run("HostPorts", ln.testHostPorts)
	t.Run("HostPortAnyAddressConflict", ln.testHostPortAnyAddressConflict)
	t.Run("StatefulSetRecreatesRejected", ln.testStatefulSetRecreatesRejected)
	t.Run("PreemptionExecutionPath", ln.testPreemptionExecutionPath)
	t.Run("Resize", ln.testResize)
	t.Run("Adoption", ln.testAdoption)
}

// streamingKubectls picks, of the kubectls found, 1.27, 1.33 and 1.37
// (the oldest, the SDK's newest, and upstream's): they differ in SPDY and
// WebSocket use. Binaries named by -kubectl or $KUBECTL are all used.
func streamingKubectls(t *testing.T, paths []string) []kubectlBinary {
	t.Helper()
	explicit := *kubectlFlag != "" || os.Getenv("KUBECTL") != ""
	var bins []kubectlBinary
	for _, p := range paths {
		b := resolveKubectl(t, p)
		if explicit || strings.HasPrefix(b.version, "v1.27.") || strings.HasPrefix(b.version, "v1.33.") || strings.HasPrefix(b.version, "v1.37.") {
			bins = append(bins, b)
		}
	}
	if len(bins) == 0 {
		bins = append(bins, resolveKubectl(t, paths[len(paths)-1]))
	}
	var versions []string
	for _, b := range bins {
		versions = append(versions, b.version)
	}
	t.Logf("kubectls: %s", strings.Join(versions, ", "))
	if !explicit && !strings.Contains(strings.Join(versions, " "), "v1.37.") {
		t.Logf("no kubectl 1.37 (hack/build-kubectl.sh builds it): not tested")
	}
	return bins
}

func (ln *localNode) waitNodeReady(t *testing.T) {
	t.Helper()
	hostname, _ := os.Hostname()
	eventually(t, 60*time.Second, func() string {
		n, err := ln.admin.CoreV1().Nodes().Get(context.Background(), hostname, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		ln.node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return ""
			}
		}
		return fmt.Sprintf("node %s not Ready: %v", hostname, n.Status.Conditions)
	})
}

// testPod: the Node registers Ready with the host's capacity and a
// podCIDR; a pod serving HTTP with busybox's httpd runs with an IP of it
// that the host reaches.
func (ln *localNode) testPod(t *testing.T) {
	node, k := ln.node, ln.k
	if !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") || node.Status.Capacity.Cpu().IsZero() || node.Spec.PodCIDR == "" {
		t.Errorf("node: runtime %q capacity %v podCIDR %q", node.Status.NodeInfo.ContainerRuntimeVersion, node.Status.Capacity, node.Spec.PodCIDR)
	}
	k.ok(t, "run", "web", "--image="+nodeimages.BusyboxImage, "--restart=Never", "--labels=app=web",
		`--overrides={"spec":{"automountServiceAccountToken":false}}`,
		"--", "sh", "-c", "echo hello from web; exec httpd -f -p 8080 -h /etc")
	pod := ln.waitPod(t, "web", 60*time.Second, podAllReady)
	if !inCIDR(pod.Status.PodIP, node.Spec.PodCIDR) {
		t.Errorf("pod IP %s not in the node's podCIDR %s", pod.Status.PodIP, node.Spec.PodCIDR)
	}
	cs := pod.Status.ContainerStatuses[0]
	if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.ImageID == "" || cs.State.Running == nil {
		t.Errorf("container status %+v", cs)
	}
	eventually(t, 20*time.Second, func() string {
		return httpGetWant("http://"+pod.Status.PodIP+":8080/hostname", "web")
	})
	events := k.ok(t, "get", "events", "--field-selector", "involvedObject.name=web", "-o", "custom-columns=R:.reason", "--no-headers")
	for _, reason := range []string{"Scheduled", "Pulled", "Created", "Started"} {
		if !strings.Contains(events, reason) {
			t.Errorf("no %s event for pod web: %s", reason, events)
		}
	}
}

// testAdoption: kill -9 the server: containerd and the container outlive
// it; the restarted server adopts the container as it is. Deleted, the
// pod's container stops within its grace period.
func (ln *localNode) testAdoption(t *testing.T) {
	k := ln.k
	before, err := ln.admin.CoreV1().Pods(k.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || len(before.Status.ContainerStatuses) == 0 {
		t.Skipf("pod web is not running (see the Pod subtest): %v", err)
	}
	cs := before.Status.ContainerStatuses[0]
	url := "http://" + before.Status.PodIP + ":8080/hostname"
	if err := ln.srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if problem := httpGetWant(url, "web"); problem != "" {
		t.Errorf("pod unreachable while skiff is down: %s", problem)
	}
	port := ln.srv.Port
	ln.srv = nil
	ln.srv = startLocalNode(t, ln.dir, port)
	ln.admin = adminClient(t, ln.srv)
	ln.waitPod(t, "web", 60*time.Second, func(after *corev1.Pod) string {
		if len(after.Status.ContainerStatuses) == 0 {
			return "no container status after the restart"
		}
		a := after.Status.ContainerStatuses[0]
		if a.ContainerID != cs.ContainerID || a.RestartCount != 0 || a.State.Running == nil || !a.Ready {
			return fmt.Sprintf("after the restart: %+v, want container %s running, ready, no restart", a, cs.ContainerID)
		}
		return ""
	})

	k.ok(t, "delete", "pod", "web", "--grace-period=5", "--timeout=30s")
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("pod still serves after its deletion")
	}
}

// ---------------------------------------------------------------------------
// helpers of the local node's subtests

// apply applies a manifest in the test's namespace.
func (ln *localNode) apply(t *testing.T, manifest string) {
	t.Helper()
	ln.k.okStdin(t, manifest, "apply", "-f", "-")
}

// waitPod polls pod name of the test's namespace until check reports
// nothing wrong, and returns it.
func (ln *localNode) waitPod(t *testing.T, name string, timeout time.Duration, check func(*corev1.Pod) string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	deadline := time.Now().Add(timeout)
	for {
		p, err := ln.admin.CoreV1().Pods(ln.k.ns).Get(context.Background(), name, metav1.GetOptions{})
		problem := ""
		if err != nil {
			problem = err.Error()
		} else {
			pod = p
			problem = check(p)
		}
		if problem == "" {
			return pod
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s after %s: %s", name, timeout, problem)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// podAllReady is a waitPod check: Running with every container ready.
func podAllReady(p *corev1.Pod) string {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
		return fmt.Sprintf("phase %s, containers %s", p.Status.Phase, containerStates(p))
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return fmt.Sprintf("not ready: %s", containerStates(p))
		}
	}
	return ""
}

// podRunning is a waitPod check: Running, with every container running
// (ready or not).
func podRunning(p *corev1.Pod) string {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
		return fmt.Sprintf("phase %s, containers %s", p.Status.Phase, containerStates(p))
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return fmt.Sprintf("not running: %s", containerStates(p))
		}
	}
	return ""
}

// containerStates is a short text of a pod's container statuses, for
// messages.
func containerStates(p *corev1.Pod) string {
	var parts []string
	for _, c := range p.Status.ContainerStatuses {
		s := fmt.Sprintf("%s(ready=%t restarts=%d", c.Name, c.Ready, c.RestartCount)
		switch {
		case c.State.Running != nil:
			s += " running"
		case c.State.Waiting != nil:
			s += " waiting " + c.State.Waiting.Reason + ": " + c.State.Waiting.Message
		case c.State.Terminated != nil:
			s += fmt.Sprintf(" terminated %s exit %d", c.State.Terminated.Reason, c.State.Terminated.ExitCode)
		}
		if lt := c.LastTerminationState.Terminated; lt != nil {
			s += fmt.Sprintf(" last: %s exit %d", lt.Reason, lt.ExitCode)
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, " ")
}

// podEvents returns the events of pod name of the test's namespace.
func (ln *localNode) podEvents(t *testing.T, name string) []corev1.Event {
	t.Helper()
	list, err := ln.admin.CoreV1().Events(ln.k.ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// findEvent returns the first event of pod name with reason whose
// message contains text, nil if none.
func findEvent(events []corev1.Event, reason, text string) *corev1.Event {
	for i := range events {
		if events[i].Reason == reason && strings.Contains(events[i].Message, text) {
			return &events[i]
		}
	}
	return nil
}

func eventList(events []corev1.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "\n  %s %s x%d: %s", e.Type, e.Reason, e.Count, e.Message)
	}
	return b.String()
}

// httpGetWant GETs url and reports what is wrong unless it answers 200
// with want (trimmed), "" if it does.
func httpGetWant(url, want string) string {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != want {
		return fmt.Sprintf("GET %s: %d %q, want %q", url, resp.StatusCode, body, want)
	}
	return ""
}
