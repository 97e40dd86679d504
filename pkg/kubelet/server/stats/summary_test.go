package stats

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestNodeSummary reads this machine's /proc and cgroups.
func TestNodeSummary(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("needs /proc")
	}
	p, err := New(Config{NodeName: "node-1", RootDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := p.Summary(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	n := first.Node
	if n.NodeName != "node-1" || n.StartTime.IsZero() || n.StartTime.After(time.Now()) {
		t.Errorf("node %q start %v", n.NodeName, n.StartTime)
	}
	if n.CPU == nil || n.CPU.UsageCoreNanoSeconds == nil || *n.CPU.UsageCoreNanoSeconds == 0 {
		t.Fatalf("node CPU %+v", n.CPU)
	}
	if n.CPU.UsageNanoCores != nil {
		t.Errorf("a rate from a single sample: %d", *n.CPU.UsageNanoCores)
	}
	mi, err := readMeminfo("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	m := n.Memory
	if m == nil || m.WorkingSetBytes == nil || *m.WorkingSetBytes == 0 || *m.WorkingSetBytes > mi["MemTotal"] ||
		m.AvailableBytes == nil || *m.AvailableBytes+*m.WorkingSetBytes != mi["MemTotal"] || m.UsageBytes == nil || *m.UsageBytes < *m.WorkingSetBytes {
		t.Errorf("node memory %+v against MemTotal %d", m, mi["MemTotal"])
	}
	if n.Fs == nil || n.Fs.CapacityBytes == nil || *n.Fs.CapacityBytes == 0 || *n.Fs.AvailableBytes > *n.Fs.CapacityBytes {
		t.Errorf("node fs %+v", n.Fs)
	}
	if n.Runtime == nil || n.Runtime.ImageFs == nil || n.Runtime.ImageFs.CapacityBytes == nil {
		t.Errorf("image fs %+v", n.Runtime)
	}
	if n.Rlimit == nil || n.Rlimit.MaxPID == nil || *n.Rlimit.MaxPID < 1000 || *n.Rlimit.NumOfRunningProcesses < 1 {
		t.Errorf("rlimit %+v", n.Rlimit)
	}
	if n.Network == nil || n.Network.Name == "" || n.Network.RxBytes == nil {
		t.Errorf("network %+v", n.Network)
	}
	if len(first.Pods) != 0 {
		t.Errorf("pods without a runtime: %+v", first.Pods)
	}

	// Burn CPU for a while: the second summary's rate covers it.
	stop := time.Now().Add(1200 * time.Millisecond)
	for time.Now().Before(stop) {
	}
	second, err := p.Summary(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	c := second.Node.CPU
	if c.UsageNanoCores == nil || *c.UsageNanoCores < 3e8 || *c.UsageCoreNanoSeconds <= *n.CPU.UsageCoreNanoSeconds {
		t.Errorf("node CPU after 1.2 s of a busy loop: %+v", c)
	}
	if second.Node.Fs != nil || second.Node.Network != nil {
		t.Errorf("only_cpu_and_memory summary has fs/network")
	}
}

func TestRates(t *testing.T) {
	r := newRates(10 * time.Second)
	t0 := time.Unix(1000, 0)
	if v := r.observe("k", t0, 1e9); v != nil {
		t.Fatalf("first sample gave %d", *v)
	}
	if v := r.observe("k", t0.Add(500*time.Millisecond), 2e9); v != nil {
		t.Fatalf("a rate over 0.5 s: %d", *v)
	}
	if v := r.observe("k", t0.Add(2*time.Second), 3e9); v == nil || *v != 1e9 {
		t.Fatalf("rate over 2 s = %v, want 1e9", v)
	}
	// Samples kept at least 5 s apart: the rate is over the window to t0.
	if v := r.observe("k", t0.Add(4*time.Second), 5e9); v == nil || *v != 1e9 {
		t.Fatalf("rate = %v", v)
	}
	if v := r.observe("k", t0.Add(6*time.Second), 5e8); v != nil {
		t.Fatalf("a counter that went back gave %d", *v)
	}
	if v := r.observe("k", t0.Add(8*time.Second), 25e8); v == nil || *v != 1e9 {
		t.Fatalf("rate after a reset = %v", v)
	}
	r.forget(t0.Add(time.Minute))
	if len(r.samples) != 0 {
		t.Errorf("forget kept %v", r.samples)
	}
}
