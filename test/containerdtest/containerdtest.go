// Package containerdtest runs a containerd of a test's own, as the node
// runs it: its data dir in a temp dir, optionally with a bridge pod network
// and the node images, all removed when the test ends.
package containerdtest

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerd"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// Options says what the test's containerd has.
type Options struct {
	// Name is a short word, unique among the tests that may run at once,
	// naming the temp dir, the CNI network and its bridge.
	Name string
	// PodCIDR, when valid, gives pods a bridge network (bridge, host-local,
	// portmap) with their IPs in it.
	PodCIDR netip.Prefix
	// Images imports nodeimages' pause and busybox.
	Images bool
	// RegistryMirrors maps a registry host to the endpoint
	// (http://127.0.0.1:port) to pull its images from.
	RegistryMirrors map[string]string
}

// Containerd is a running containerd of the test's.
type Containerd struct {
	*containerd.Process
	// Dir is its data dir: root, state, socket, CNI config.
	Dir string
}

// Start runs containerd with the CRI plugin until the test ends, or skips
// the test naming what is missing. At the end it removes the sandboxes the
// test left (their shims would outlive containerd), stops containerd,
// removes the pod network's bridge and rules, and its dir.
func Start(t testing.TB, o Options) *Containerd {
	t.Helper()
	if o.Name == "" {
		t.Fatal("containerdtest: Options.Name is empty")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	tools := []string{"containerd", "runc", "containerd-shim-runc-v2", "ctr"}
	if o.PodCIDR.IsValid() {
		// The bridge plugin masquerades through iptables; cni.Cleanup
		// removes its rules with iptables-save/-restore.
		tools = append(tools, "iptables-save")
	}
	for _, bin := range tools {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s in PATH (hack/node-deps.sh)", bin)
		}
	}
	if o.PodCIDR.IsValid() {
		if _, err := cni.FindBinDir(); err != nil {
			t.Skip(err.Error())
		}
	}
	// Short: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", o.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	opts := containerd.Options{DataDir: dir}
	if len(o.RegistryMirrors) > 0 {
		opts.RegistryMirrors = map[string][]string{}
		for host, endpoint := range o.RegistryMirrors {
			opts.RegistryMirrors[host] = []string{endpoint}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := containerd.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("starting containerd: %v", err)
	}
	c := &Containerd{Process: p, Dir: dir}
	var network *cni.Config
	if o.PodCIDR.IsValid() {
		// Names of this test binary's own, bridge names within 15 bytes.
		suffix := fmt.Sprint(os.Getpid() % 100000)
		network = &cni.Config{PodCIDRs: []netip.Prefix{o.PodCIDR}, DataDir: filepath.Join(dir, "ipam"),
			NetworkName: "skiff-" + o.Name + "-" + suffix, BridgeName: "sk" + o.Name[:1] + suffix}
	}
	t.Cleanup(func() { c.stop(t, network) })
	if network != nil {
		if err := cni.WriteConfig(p.CNIConfDir(), *network); err != nil {
			t.Fatal(err)
		}
	}
	if o.Images {
		nodeimages.Ensure(t, p.Address())
	}
	return c
}

// RuntimeService is a CRI runtime client of c.
func (c *Containerd) RuntimeService(t testing.TB) internalapi.RuntimeService {
	t.Helper()
	rs, err := c.runtimeService(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// ImageService is a CRI image client of c.
func (c *Containerd) ImageService(t testing.TB) internalapi.ImageManagerService {
	t.Helper()
	is, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(c.Endpoint()).WithConnectionTimeout(30 * time.Second).WithTracerProvider(nil).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func (c *Containerd) runtimeService(ctx context.Context, timeout time.Duration) (internalapi.RuntimeService, error) {
	return remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(c.Endpoint()).WithConnectionTimeout(timeout).WithTracerProvider(nil).Build(ctx)
}

func (c *Containerd) stop(t testing.TB, network *cni.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if rs, err := c.runtimeService(ctx, 10*time.Second); err == nil {
		if sandboxes, err := rs.ListPodSandbox(ctx, nil); err == nil {
			for _, s := range sandboxes {
				// Removing a sandbox removes its containers.
				_ = rs.StopPodSandbox(ctx, s.Id)
				if err := rs.RemovePodSandbox(ctx, s.Id); err != nil {
					t.Errorf("removing sandbox %s: %v", s.Id, err)
				}
			}
		}
	}
	if err := c.Process.Stop(ctx); err != nil {
		t.Errorf("stopping containerd: %v", err)
	}
	if network != nil {
		if err := cni.Cleanup(*network); err != nil {
			t.Errorf("cleaning up the pod network: %v", err)
		}
	}
	UnmountUnder(c.Dir)
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Errorf("removing containerd's dir: %v", err)
	}
}

// UnmountUnder detaches what is still mounted below dir (a containerd's
// sandbox shm and rootfs mounts), the deepest first.
func UnmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// KillShims kills the shims of the containerd under dir (they outlive a
// stopped containerd by design) and the containers' processes under them
// (a killed shim leaves them running, reparented to init), waits until
// they are gone (so that their cgroups can go too), removes the pods'
// network namespaces pinned in /run/netns (whose veths would keep their
// IPs on the bridge) and unmounts what is mounted below dir. The shims'
// own namespace, the host's where containerd ran, stays. It returns the
// shims' ids: the sandboxes.
func KillShims(dir string) (sandboxes []string) {
	defer UnmountUnder(dir)
	children := map[int][]int{}
	var shims []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			// pid (comm) state ppid ...: comm may hold spaces, not ")".
			if i := bytes.LastIndexByte(stat, ')'); i > 0 {
				if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
					ppid, _ := strconv.Atoi(f[1])
					children[ppid] = append(children[ppid], pid)
				}
			}
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(cmdline), dir) {
			shims = append(shims, pid)
			for i := 1; i+1 < len(args); i++ {
				if args[i] == "-id" {
					sandboxes = append(sandboxes, args[i+1])
				}
			}
		}
	}
	hostNetns := map[string]bool{}
	for _, pid := range shims {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
			hostNetns[ns] = true
		}
	}
	podNetns := map[string]bool{}
	var kill []int
	for queue := shims; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		kill = append(kill, pid)
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && !hostNetns[ns] {
			podNetns[ns] = true
		}
		queue = append(queue, children[pid]...)
	}
	for _, pid := range kill {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		alive := false
		for _, pid := range kill {
			if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !bytes.Contains(stat, []byte(") Z ")) {
				alive = true
				break
			}
		}
		if !alive {
			break
		}
	}
	pinned, _ := filepath.Glob("/run/netns/*")
	for _, p := range pinned {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || !podNetns[fmt.Sprintf("net:[%d]", st.Ino)] {
			continue
		}
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		_ = os.Remove(p)
	}
	return sandboxes
}
