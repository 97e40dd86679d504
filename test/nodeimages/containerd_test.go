package nodeimages

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
)

// A containerd of the test's own (its config, root, state and socket in a
// temp dir), until pkg/kubelet/containerd can start one for tests.
type testContainerd struct {
	dir     string
	address string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startContainerd starts containerd with the CRI plugin; mirrors maps a
// registry host to the endpoint (http://127.0.0.1:port) to pull it from.
func startContainerd(t *testing.T, mirrors map[string]string) *testContainerd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	for _, tool := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install containerd runc)", tool)
		}
	}
	// Short: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "nodeimages-")
	if err != nil {
		t.Fatal(err)
	}
	c := &testContainerd{dir: dir, address: filepath.Join(dir, "containerd.sock"), done: make(chan struct{})}
	certs := filepath.Join(dir, "certs.d")
	for host, endpoint := range mirrors {
		d := filepath.Join(certs, host)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "https://"+host, endpoint)
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[8]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.address, c.address+".ttrpc",
		filepath.Join(dir, "opt"), PauseImage, filepath.Join(dir, "cni"), certs)
	configFile := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("containerd", "--config", configFile)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	go func() { c.cmd.Wait(); logFile.Close(); close(c.done) }()
	t.Cleanup(func() { c.stop(t) })

	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(c.address); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + c.address).WithConnectionTimeout(5 * time.Second).WithTracerProvider(nil).Build(ctx)
			cancel()
			if err == nil {
				_, err = rs.Version(context.Background(), "v1")
			}
			if err == nil {
				return c
			}
		}
		select {
		case <-c.done:
			t.Fatalf("containerd exited: %s", c.logTail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI did not answer within 30s: %s", c.logTail())
		}
	}
}

func (c *testContainerd) logTail() string {
	data, _ := os.ReadFile(filepath.Join(c.dir, "containerd.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func (c *testContainerd) runtimeService(t *testing.T) internalapi.RuntimeService {
	t.Helper()
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + c.address).WithConnectionTimeout(30 * time.Second).WithTracerProvider(nil).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (c *testContainerd) imageService(t *testing.T) internalapi.ImageManagerService {
	t.Helper()
	is, err := remote.NewRemoteImageServiceBuilder().WithEndpoint("unix://" + c.address).WithConnectionTimeout(30 * time.Second).WithTracerProvider(nil).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// stop removes what the tests left in it (so that shims exit), stops
// containerd and removes its dir, unmounting what is still mounted there.
func (c *testContainerd) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-c.done:
	default:
		if rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + c.address).WithConnectionTimeout(10 * time.Second).WithTracerProvider(nil).Build(ctx); err == nil {
			if sandboxes, err := rs.ListPodSandbox(ctx, nil); err == nil {
				for _, s := range sandboxes {
					_ = rs.StopPodSandbox(ctx, s.Id)
					if err := rs.RemovePodSandbox(ctx, s.Id); err != nil {
						klog.ErrorS(err, "Removing a test sandbox", "id", s.Id)
					}
				}
			}
		}
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	unmountUnder(c.dir)
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("removing containerd's dir: %v", err)
	}
}

func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	// Deepest first.
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}
