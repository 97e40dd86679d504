package containerdtest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestStartCleansUp leaves a running sandbox on the pod network behind and
// checks that the end of the test removed it with containerd, its dir and
// the network's bridge.
func TestStartCleansUp(t *testing.T) {
	var (
		c      *Containerd
		bridge = fmt.Sprint("skc", os.Getpid()%100000)
	)
	t.Run("containerd", func(t *testing.T) {
		c = Start(t, Options{Name: "cdt", PodCIDR: netip.MustParsePrefix("10.216.15.0/24"), Images: true})
		config := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "left", Namespace: "default", Uid: "containerdtest"},
		}
		if _, err := c.RuntimeService(t).RunPodSandbox(context.Background(), config, ""); err != nil {
			t.Fatalf("RunPodSandbox: %v", err)
		}
		if _, err := net.InterfaceByName(bridge); err != nil {
			t.Fatalf("no bridge %s with a sandbox on the pod network: %v", bridge, err)
		}
	})
	if c == nil {
		t.Skip("no containerd started (see the subtest)")
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("containerd's dir %s after the test: %v", c.Dir, err)
	}
	if err := syscall.Kill(c.Pid(), 0); err == nil {
		t.Errorf("containerd (pid %d) runs after the test", c.Pid())
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Errorf("bridge %s is left after the test", bridge)
	}
}
