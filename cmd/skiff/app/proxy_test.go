package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/pkg/proxy"
)

func parseProxy(t *testing.T, args ...string) *proxyOptions {
	t.Helper()
	cmd := newProxyCommand()
	o := newProxyOptions()
	cmd.ResetFlags()
	o.addFlags(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestProxyFlags(t *testing.T) {
	o := parseProxy(t, "--kubeconfig", "/k", "--cluster-cidr", "10.244.0.0/16", "--masquerade-all", "--hostname-override", "Node-A",
		"--iptables-min-sync-period", "2s", "--healthz-bind-address", "127.0.0.1:20256", "--metrics-bind-address", "")
	cfg, node, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	opts := proxy.OptionsFromConfig(cfg, node)
	if node != "node-a" || opts.NodeName != "node-a" || !opts.MasqueradeAll || opts.ClusterCIDR != "10.244.0.0/16" || opts.MinSyncPeriod != 2*time.Second ||
		opts.SyncPeriod != 30*time.Second || opts.HealthzBindAddress != "127.0.0.1:20256" || opts.MetricsBindAddress != "" || opts.Mode != proxy.ModeIPTables ||
		!opts.LocalhostNodePorts || opts.MasqueradeBit != 14 || cfg.ClientConnection.Kubeconfig != "/k" {
		t.Errorf("options %+v from %+v", opts, cfg)
	}

	// Upstream's defaults.
	cfg, _, err = parseProxy(t, "--hostname-override", "n").resolve()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HealthzBindAddress != "0.0.0.0:10256" || cfg.MetricsBindAddress != "127.0.0.1:10249" || cfg.IPTables.MinSyncPeriod.Duration != time.Second {
		t.Errorf("defaults %+v", cfg)
	}

	for _, args := range [][]string{
		{"--mode", "userspace"},
		{"--cluster-cidr", "10.0.0.0/33"},
		{"--iptables-masquerade-bit", "32"},
		{"--iptables-sync-period", "0s"},
		{"--healthz-bind-address", "nowhere"},
	} {
		if _, _, err := parseProxy(t, append(args, "--hostname-override", "n")...).resolve(); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestProxyConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "proxy.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.42.0.0/16
hostnameOverride: from-file
clientConnection:
  kubeconfig: /etc/kube-proxy.kubeconfig
iptables:
  masqueradeAll: true
  syncPeriod: 10s
metricsBindAddress: 0.0.0.0:10249
`)
	// --config wins over the other flags, but --hostname-override.
	cfg, node, err := parseProxy(t, "--config", file, "--cluster-cidr", "10.1.0.0/16").resolve()
	if err != nil {
		t.Fatal(err)
	}
	if node != "from-file" || cfg.ClusterCIDR != "10.42.0.0/16" || !cfg.IPTables.MasqueradeAll || cfg.IPTables.SyncPeriod.Duration != 10*time.Second ||
		cfg.IPTables.MinSyncPeriod.Duration != time.Second || cfg.HealthzBindAddress != "0.0.0.0:10256" || cfg.MetricsBindAddress != "0.0.0.0:10249" ||
		cfg.ClientConnection.Kubeconfig != "/etc/kube-proxy.kubeconfig" {
		t.Errorf("config %+v", cfg)
	}
	if _, node, _ = parseProxy(t, "--config", file, "--hostname-override", "flag").resolve(); node != "flag" {
		t.Errorf("node %q, want --hostname-override's", node)
	}

	write("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nbogusField: 1\n")
	if _, _, err := parseProxy(t, "--config", file).resolve(); err == nil || !strings.Contains(err.Error(), "bogusField") {
		t.Errorf("unknown field: %v", err)
	}
	write("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n")
	cfg, _, err = parseProxy(t, "--config", file).resolve()
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.CheckMode(cfg.Mode); err == nil || !strings.Contains(err.Error(), "ipvs") {
		t.Errorf("ipvs mode: %v", err)
	}
}
