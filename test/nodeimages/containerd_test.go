package nodeimages

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/containerd"
)

// testContainerd is a containerd of the test's own (data dir in a temp
// dir), as the node runs it.
type testContainerd struct {
	dir     string
	address string
	process *containerd.Process
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
	o := containerd.Options{DataDir: dir, RegistryMirrors: map[string][]string{}}
	for host, endpoint := range mirrors {
		o.RegistryMirrors[host] = []string{endpoint}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := containerd.Start(ctx, o)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("starting containerd: %v", err)
	}
	c := &testContainerd{dir: dir, address: p.Address(), process: p}
	t.Cleanup(func() { c.stop(t) })
	return c
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
	if err := c.process.Stop(ctx); err != nil {
		t.Errorf("stopping containerd: %v", err)
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
