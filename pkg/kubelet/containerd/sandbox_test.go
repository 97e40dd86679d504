package containerd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// shimsOf are the pids of the runc shims serving the containerd at address.
func shimsOf(address string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		for i := range args[:len(args)-1] {
			if args[i] == "-address" && args[i+1] == address {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// TestPodSandboxSurvivesContainerdRestart runs a pod sandbox on the pod
// network of the conflist, kills containerd with -9 and checks that the
// next Start's containerd still has the sandbox, running and with its IP.
func TestPodSandboxSurvivesContainerdRestart(t *testing.T) {
	requireContainerd(t)
	dir := t.TempDir()
	o := Options{DataDir: dir}
	p := startForTest(t, o)
	t.Cleanup(func() {
		// Whatever the test left: a shim outlives containerd.
		for _, pid := range shimsOf(p.Address()) {
			t.Errorf("shim %d of %s left running", pid, p.Address())
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	suffix := fmt.Sprint(os.Getpid() % 100000)
	cfg := cni.Config{
		PodCIDRs:    []netip.Prefix{netip.MustParsePrefix("10.215.3.0/24")},
		DataDir:     filepath.Join(dir, "ipam"),
		NetworkName: "skiff-ctd-" + suffix,
		BridgeName:  "skc" + suffix,
	}
	if err := cni.WriteConfig(p.CNIConfDir(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cni.Cleanup(cfg); err != nil {
			t.Error(err)
		}
	})
	nodeimages.Ensure(t, p.Address())

	ctx := context.Background()
	svc := runtimeService(t, p)
	deadline := time.Now().Add(10 * time.Second)
	for !conditions(t, svc)[runtimeapi.NetworkReady] {
		if time.Now().After(deadline) {
			t.Fatal("NetworkReady still false 10s after writing the conflist")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sandboxConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "sandbox", Namespace: "default", Uid: "uid-" + suffix},
		Hostname:     "sandbox",
		LogDirectory: filepath.Join(dir, "logs"),
		PortMappings: []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 31998}},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	id, err := svc.RunPodSandbox(ctx, sandboxConfig, "")
	if err != nil {
		logged, _ := os.ReadFile(p.LogPath())
		t.Fatalf("RunPodSandbox: %v\ncontainerd.log:\n%s", err, logged)
	}
	removed := false
	t.Cleanup(func() {
		if removed {
			return
		}
		svc := runtimeService(t, p) // p may have been replaced
		_ = svc.StopPodSandbox(ctx, id)
		_ = svc.RemovePodSandbox(ctx, id)
	})
	ip := sandboxIP(t, svc, id)
	if !cfg.PodCIDRs[0].Contains(ip) {
		t.Fatalf("sandbox IP %s not in the pod CIDR %s", ip, cfg.PodCIDRs[0])
	}

	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if len(shimsOf(p.Address())) == 0 {
		t.Errorf("no shim left running after containerd was killed")
	}
	for alive(p.Pid()) && !isZombie(p.Pid()) {
		time.Sleep(10 * time.Millisecond)
	}
	p2 := startForTest(t, o)
	if p2.Pid() == p.Pid() {
		t.Fatal("Start after kill -9 returned the dead containerd")
	}
	p = p2
	svc = runtimeService(t, p)
	if got := sandboxIP(t, svc, id); got != ip {
		t.Errorf("after the restart the sandbox has IP %s, want %s", got, ip)
	}

	if err := svc.StopPodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := svc.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	removed = true
	for deadline := time.Now().Add(5 * time.Second); len(shimsOf(p.Address())) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shims %v still run 5s after the sandbox was removed", shimsOf(p.Address()))
		}
	}
}

func sandboxIP(t *testing.T, svc interface {
	PodSandboxStatus(context.Context, string, bool) (*runtimeapi.PodSandboxStatusResponse, error)
}, id string) netip.Addr {
	t.Helper()
	st, err := svc.PodSandboxStatus(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("sandbox %s is %s, want ready", id, st.Status.State)
	}
	ip, err := netip.ParseAddr(st.Status.GetNetwork().GetIp())
	if err != nil {
		t.Fatalf("sandbox IP: %v", err)
	}
	return ip
}
