package containerd

import (
	"context"
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
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
)

// requireContainerd skips unless containerd can run here.
func requireContainerd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s in PATH (apt-get install %s, or hack/node-deps.sh)", bin, bin)
		}
	}
	if _, err := cni.FindBinDir(); err != nil {
		t.Skip(err.Error())
	}
}

// startForTest starts containerd in dir and stops it when the test ends.
func startForTest(t *testing.T, o Options) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Error(err)
			_ = syscall.Kill(p.Pid(), syscall.SIGKILL)
		}
	})
	return p
}

func runtimeService(t *testing.T, p *Process) internalapi.RuntimeService {
	t.Helper()
	svc, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(p.Endpoint()).
		WithConnectionTimeout(5 * time.Second).WithTracerProvider(nil).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc
}

func conditions(t *testing.T, svc internalapi.RuntimeService) map[string]bool {
	t.Helper()
	st, err := svc.Status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range st.GetStatus().GetConditions() {
		got[c.Type] = c.Status
	}
	return got
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func TestStartReuseNetworkReadyStopRestart(t *testing.T) {
	requireContainerd(t)
	dir := t.TempDir()
	o := Options{DataDir: dir}
	p := startForTest(t, o)

	svc := runtimeService(t, p)
	v, err := svc.Version(context.Background(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "containerd" || v.RuntimeApiVersion != "v1" {
		t.Errorf("CRI version %+v, want containerd speaking v1", v)
	}
	if want := "containerd://" + v.RuntimeVersion; p.Version() != want {
		t.Errorf("Version() = %q, want %q", p.Version(), want)
	}
	if p.Address() != filepath.Join(dir, "containerd.sock") {
		t.Errorf("Address() = %q", p.Address())
	}

	// No conflist yet: the runtime is ready, its network is not.
	c := conditions(t, svc)
	if !c[runtimeapi.RuntimeReady] || c[runtimeapi.NetworkReady] {
		t.Fatalf("before the conflist: conditions %v, want RuntimeReady only", c)
	}
	// containerd picks the conflist up without a restart.
	cfg := cni.Config{PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.214.0.0/24")}, DataDir: filepath.Join(dir, "ipam"), NetworkName: "skiff-containerd-test", BridgeName: "skctd0"}
	if err := cni.WriteConfig(p.CNIConfDir(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cni.Cleanup(cfg) })
	deadline := time.Now().Add(10 * time.Second)
	for !conditions(t, svc)[runtimeapi.NetworkReady] {
		if time.Now().After(deadline) {
			t.Fatalf("NetworkReady still false 10s after writing the conflist")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A second Start on the same data dir (skiff restarted) reuses it.
	again := startForTest(t, o)
	if again.Pid() != p.Pid() {
		t.Errorf("second Start ran pid %d, want the running %d", again.Pid(), p.Pid())
	}
	if again.Version() != p.Version() {
		t.Errorf("reused Version() = %q, want %q", again.Version(), p.Version())
	}

	// A changed config needs a new containerd.
	o.SandboxImage = "registry.k8s.io/pause:3.9"
	changed := startForTest(t, o)
	if changed.Pid() == p.Pid() || alive(p.Pid()) {
		t.Errorf("Start with a changed config kept pid %d (now %d)", p.Pid(), changed.Pid())
	}

	// kill -9: the next Start starts a new one.
	if err := syscall.Kill(changed.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for alive(changed.Pid()) && !isZombie(changed.Pid()) {
		time.Sleep(10 * time.Millisecond)
	}
	restarted := startForTest(t, o)
	if restarted.Pid() == changed.Pid() {
		t.Fatalf("Start after kill -9 returned the dead pid %d", restarted.Pid())
	}
	if _, err := runtimeService(t, restarted).Version(context.Background(), "v1"); err != nil {
		t.Fatal(err)
	}

	// Stop ends it and its socket stops answering.
	if err := restarted.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if alive(restarted.Pid()) && !isZombie(restarted.Pid()) {
		t.Errorf("pid %d still runs after Stop", restarted.Pid())
	}
	if _, err := os.Stat(filepath.Join(dir, "containerd.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left after Stop (%v)", err)
	}
	if _, err := criVersion(context.Background(), o, time.Second); err == nil {
		t.Errorf("CRI still answers after Stop")
	}
	logged, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
	if !strings.Contains(string(logged), "serving...") {
		t.Errorf("containerd.log holds no containerd output:\n%s", logged)
	}
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func TestTwoDataDirsAtOnce(t *testing.T) {
	requireContainerd(t)
	a := startForTest(t, Options{DataDir: t.TempDir()})
	b := startForTest(t, Options{DataDir: t.TempDir()})
	if a.Pid() == b.Pid() {
		t.Fatalf("both data dirs got pid %d", a.Pid())
	}
	for _, p := range []*Process{a, b} {
		if _, err := runtimeService(t, p).Version(context.Background(), "v1"); err != nil {
			t.Errorf("containerd of %s: %v", p.Address(), err)
		}
	}
}

func TestStartNamesMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Options{DataDir: t.TempDir(), Binary: "containerd-that-is-not-installed"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install containerd") {
		t.Errorf("error %v, want one naming the package", err)
	}
}

func TestStartRejectsLongSocketPath(t *testing.T) {
	_, err := Start(context.Background(), Options{DataDir: "/tmp/" + strings.Repeat("d", 100)})
	if err == nil || !strings.Contains(err.Error(), "shorter data dir") {
		t.Errorf("error %v, want a too-long socket path", err)
	}
}
