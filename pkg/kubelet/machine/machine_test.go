package machine

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestReadThisHost(t *testing.T) {
	info, err := Read(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumCores < 1 || info.MemoryCapacity < 1<<20 || info.RootFSCapacity < 1<<20 {
		t.Fatalf("implausible host: %+v", info)
	}
	if info.BootID == "" || info.KernelVersion == "" {
		t.Fatalf("boot ID or kernel missing: %+v", info)
	}
	c := info.Capacity(DefaultMaxPods)
	if c.Pods().Value() != 110 || c.Cpu().Value() != int64(info.NumCores) {
		t.Fatalf("capacity %v", c)
	}
	a := Allocatable(c)
	if got, want := c.Memory().Value()-a.Memory().Value(), int64(100<<20); got != want {
		t.Fatalf("allocatable memory is %d below capacity, want %d", got, want)
	}
	if a.StorageEphemeral().Value() >= c.StorageEphemeral().Value() {
		t.Fatalf("allocatable ephemeral-storage %v not below capacity %v", a.StorageEphemeral(), c.StorageEphemeral())
	}
}

func TestDefaultRouteInterface(t *testing.T) {
	file := filepath.Join(t.TempDir(), "route")
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"cni0\t0058A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	if err := os.WriteFile(file, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := defaultRouteInterface(file); got != "eth0" {
		t.Fatalf("default route interface %q, want eth0", got)
	}
}

func TestAddresses(t *testing.T) {
	addrs, err := Addresses("host1", nil)
	if err != nil {
		t.Skipf("no address on this host: %v", err)
	}
	if addrs[0].Type != corev1.NodeInternalIP || addrs[len(addrs)-1] != (corev1.NodeAddress{Type: corev1.NodeHostName, Address: "host1"}) {
		t.Fatalf("addresses %v", addrs)
	}
}

func TestOSImage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "os-release")
	os.WriteFile(file, []byte("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"), 0o644)
	if got := osImage(file); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Fatalf("osImage %q", got)
	}
}
