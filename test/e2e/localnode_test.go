package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
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

// startLocalNode starts skiff server with its local node, the node images
// in <data-dir>/agent/images, and waits for the node to be Ready. On
// cleanup it deletes the pods, stops the server and kills what is left of
// its containers (their shims outlive skiff's containerd by design).
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

// killShims kills the containerd shims of the containerd under dir (what
// a stopped local node leaves running) and unmounts their rootfs.
func killShims(t *testing.T, dir string) {
	defer unmountUnder(dir)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(cmdline), dir) {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestLocalNode: skiff server runs a node on this machine's containerd,
// as k3s does: the Node registers Ready with the host's capacity and a
// podCIDR, a busybox pod runs with an IP of it that the host reaches, and
// after kill -9 of the server its containers keep running and are adopted
// by the restarted server (same container ID, no restart).
func TestLocalNode(t *testing.T) {
	if why := localNodeReason(); why != "" {
		t.Skip(why)
	}
	paths := findKubectls()
	if len(paths) == 0 {
		t.Fatal("no kubectl found")
	}
	dir := t.TempDir()
	srv := startLocalNode(t, dir, 0)
	t.Cleanup(func() {
		if srv != nil {
			_ = srv.Stop()
		}
		killShims(t, dir)
		_ = cni.Cleanup(cni.Config{DataDir: filepath.Join(dir, "agent", "kubelet", "cni")})
	})
	admin := adminClient(t, srv)
	ctx := context.Background()
	k := newKctl(t, resolveKubectl(t, paths[len(paths)-1]), srv)

	hostname, _ := os.Hostname()
	var node *corev1.Node
	eventually(t, 60*time.Second, func() string {
		n, err := admin.CoreV1().Nodes().Get(ctx, hostname, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return ""
			}
		}
		return fmt.Sprintf("node %s not Ready: %v", hostname, n.Status.Conditions)
	})
	if !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") || node.Status.Capacity.Cpu().IsZero() || node.Spec.PodCIDR == "" {
		t.Errorf("node: runtime %q capacity %v podCIDR %q", node.Status.NodeInfo.ContainerRuntimeVersion, node.Status.Capacity, node.Spec.PodCIDR)
	}

	// A pod serving HTTP with busybox's httpd: Running, an IP of the
	// node's podCIDR, reachable from the host.
	k.ok(t, "run", "web", "--image="+nodeimages.BusyboxImage, "--restart=Never",
		`--overrides={"spec":{"automountServiceAccountToken":false}}`,
		"--", "sh", "-c", "echo hello from web; exec httpd -f -p 8080 -h /etc")
	var pod corev1.Pod
	eventually(t, 60*time.Second, func() string {
		k.getJSON(t, &pod, "pod", "web")
		if pod.Status.Phase != corev1.PodRunning || len(pod.Status.ContainerStatuses) == 0 || !pod.Status.ContainerStatuses[0].Ready {
			return fmt.Sprintf("pod web: %s %+v", pod.Status.Phase, pod.Status.ContainerStatuses)
		}
		return ""
	})
	if !inCIDR(pod.Status.PodIP, node.Spec.PodCIDR) {
		t.Errorf("pod IP %s not in the node's podCIDR %s", pod.Status.PodIP, node.Spec.PodCIDR)
	}
	cs := pod.Status.ContainerStatuses[0]
	if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.ImageID == "" || cs.State.Running == nil {
		t.Errorf("container status %+v", cs)
	}
	url := "http://" + pod.Status.PodIP + ":8080/hostname"
	eventually(t, 20*time.Second, func() string {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if strings.TrimSpace(string(body)) != "web" {
			return fmt.Sprintf("GET %s: %d %q", url, resp.StatusCode, body)
		}
		return ""
	})
	events := k.ok(t, "get", "events", "--field-selector", "involvedObject.name=web", "-o", "custom-columns=R:.reason", "--no-headers")
	for _, reason := range []string{"Scheduled", "Pulled", "Created", "Started"} {
		if !strings.Contains(events, reason) {
			t.Errorf("no %s event for pod web: %s", reason, events)
		}
	}

	// kill -9 the server: containerd and the container outlive it; the
	// restarted server adopts the container as it is.
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url); err != nil {
		t.Errorf("pod unreachable while skiff is down: %v", err)
	} else {
		resp.Body.Close()
	}
	port := srv.Port
	srv = nil
	srv = startLocalNode(t, dir, port)
	eventually(t, 60*time.Second, func() string {
		var after corev1.Pod
		k.getJSON(t, &after, "pod", "web")
		if len(after.Status.ContainerStatuses) == 0 {
			return "no container status after the restart"
		}
		a := after.Status.ContainerStatuses[0]
		if a.ContainerID != cs.ContainerID || a.RestartCount != 0 || a.State.Running == nil || !a.Ready {
			return fmt.Sprintf("after the restart: %+v, want container %s running, ready, no restart", a, cs.ContainerID)
		}
		return ""
	})

	// Deleted, the pod's container stops within its grace period.
	k.ok(t, "delete", "pod", "web", "--grace-period=5", "--timeout=30s")
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("pod still serves after its deletion")
	}
}

// unmountUnder unmounts everything mounted below dir, the deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}
