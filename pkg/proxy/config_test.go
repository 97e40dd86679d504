package proxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// In nftables mode the configuration's nftables section applies, as
// upstream's conversion does, and is the one validated.
func TestNFTablesConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
iptables:
  masqueradeAll: false
  syncPeriod: 10s
nftables:
  masqueradeAll: true
  masqueradeBit: 9
  syncPeriod: 7s
  minSyncPeriod: 2s
`)
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Validate(cfg); len(errs) > 0 {
		t.Fatal(errs)
	}
	o := OptionsFromConfig(cfg, "n1")
	if o.Mode != ModeNFTables || !o.MasqueradeAll || o.MasqueradeBit != 9 || o.SyncPeriod != 7*time.Second ||
		o.MinSyncPeriod != 2*time.Second || o.LocalhostNodePorts {
		t.Errorf("options %+v", o)
	}

	write("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nnftables:\n  masqueradeBit: 40\n")
	if cfg, err = LoadConfig(file); err != nil {
		t.Fatal(err)
	}
	if errs := Validate(cfg); len(errs) != 1 || !strings.Contains(errs[0].Error(), "nftables.masqueradeBit") {
		t.Errorf("errors %v, want nftables.masqueradeBit out of range", errs)
	}
	// The defaulted iptables mode's options are unchanged.
	if o := DefaultOptions("n1"); o.Mode != ModeIPTables || o.SyncPeriod != 30*time.Second || o.MasqueradeBit != 14 || !o.LocalhostNodePorts {
		t.Errorf("default options %+v", o)
	}
}

// In ipvs mode the ipvs section's sync periods and settings apply; the
// masquerade settings stay the iptables section's (upstream's conversion).
func TestIPVSConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
iptables:
  masqueradeAll: true
  syncPeriod: 10s
ipvs:
  scheduler: wrr
  excludeCIDRs: ["10.0.0.0/8"]
  strictARP: true
  syncPeriod: 7s
  minSyncPeriod: 2s
  tcpTimeout: 900s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Validate(cfg); len(errs) > 0 {
		t.Fatal(errs)
	}
	o := OptionsFromConfig(cfg, "n1")
	want := IPVSOptions{Scheduler: "wrr", ExcludeCIDRs: []string{"10.0.0.0/8"}, StrictARP: true, TCPTimeout: 900 * time.Second}
	if o.Mode != ModeIPVS || !o.MasqueradeAll || o.SyncPeriod != 7*time.Second || o.MinSyncPeriod != 2*time.Second ||
		o.LocalhostNodePorts || o.IPVS.Scheduler != want.Scheduler || len(o.IPVS.ExcludeCIDRs) != 1 ||
		o.IPVS.ExcludeCIDRs[0] != want.ExcludeCIDRs[0] || !o.IPVS.StrictARP || o.IPVS.TCPTimeout != want.TCPTimeout {
		t.Errorf("options %+v, want ipvs %+v", o, want)
	}
	// A defaulted ipvs configuration syncs at upstream's default period.
	if err := os.WriteFile(file, []byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = LoadConfig(file); err != nil {
		t.Fatal(err)
	}
	if o := OptionsFromConfig(cfg, "n1"); o.SyncPeriod != 30*time.Second {
		t.Errorf("defaulted ipvs sync period %s, want 30s", o.SyncPeriod)
	}
}
