package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireNetworkRoot skips unless the test can create network namespaces
// and run the CNI plugins.
func requireNetworkRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, bridge, iptables)")
	}
	for _, tool := range []string{"ip", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install iproute2 iptables)", tool)
		}
	}
	dir, err := FindBinDir()
	if err != nil {
		t.Skip(err.Error())
	}
	return dir
}

// execPlugins runs the conflist's plugins as a runtime would (libcni):
// ADD in order, each getting the previous result.
func execPlugins(t *testing.T, binDir string, conflist []byte, netns, id string, portMappings []map[string]any) map[string]any {
	t.Helper()
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &list); err != nil {
		t.Fatal(err)
	}
	var prev map[string]any
	for _, p := range list.Plugins {
		p["cniVersion"], p["name"] = list.CNIVersion, list.Name
		if caps, _ := p["capabilities"].(map[string]any); caps["portMappings"] == true {
			p["runtimeConfig"] = map[string]any{"portMappings": portMappings}
		}
		if prev != nil {
			p["prevResult"] = prev
		}
		stdin, _ := json.Marshal(p)
		cmd := exec.Command(filepath.Join(binDir, p["type"].(string)))
		cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + id, "CNI_NETNS=" + netns, "CNI_IFNAME=eth0", "CNI_PATH=" + binDir, "PATH=" + os.Getenv("PATH")}
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s ADD: %v: %s %s", p["type"], err, out, stderr.Bytes())
		}
		prev = nil
		if err := json.Unmarshal(out, &prev); err != nil {
			t.Fatalf("%s ADD result: %v: %s", p["type"], err, out)
		}
	}
	return prev
}

func TestConflistWithRealPluginsAndCleanup(t *testing.T) {
	binDir := requireNetworkRoot(t)
	suffix := fmt.Sprint(os.Getpid() % 100000)
	cfg := Config{
		PodCIDRs:    []netip.Prefix{netip.MustParsePrefix("10.213.7.0/24")},
		BridgeName:  "skt" + suffix,
		NetworkName: "skiff-cni-test-" + suffix,
		DataDir:     filepath.Join(t.TempDir(), "ipam"),
	}
	netns := "skiff-cni-test-" + suffix
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "delete", netns).Run()
		if err := Cleanup(cfg); err != nil {
			t.Error(err)
		}
	})
	confDir := t.TempDir()
	if err := WriteConfig(confDir, cfg); err != nil {
		t.Fatal(err)
	}
	conflist, err := os.ReadFile(filepath.Join(confDir, ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	res := execPlugins(t, binDir, conflist, "/var/run/netns/"+netns, "cafe01",
		[]map[string]any{{"hostPort": 31999, "containerPort": 80, "protocol": "tcp"}})

	ips, _ := res["ips"].([]any)
	if len(ips) != 1 {
		t.Fatalf("result has %d IPs, want 1: %v", len(ips), res)
	}
	addr, err := netip.ParsePrefix(ips[0].(map[string]any)["address"].(string))
	if err != nil || !cfg.PodCIDRs[0].Contains(addr.Addr()) {
		t.Fatalf("pod address %v not in %s (%v)", ips[0], cfg.PodCIDRs[0], err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", cfg.BridgeName, "bridge")); err != nil {
		t.Fatalf("bridge %s not created: %v", cfg.BridgeName, err)
	}
	nat := natRulesOf(t, cfg.NetworkName)
	if !strings.Contains(nat, "MASQUERADE") || !strings.Contains(nat, "--dports 31999") {
		t.Fatalf("expected masquerade and host port rules for the network, got:\n%s", nat)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, cfg.NetworkName, addr.Addr().String())); err != nil {
		t.Errorf("host-local did not record its lease in the data dir: %v", err)
	}

	// The pod's teardown never ran (as after a failed test): Cleanup removes
	// what the plugins left.
	exec.Command("ip", "netns", "delete", netns).Run()
	if err := Cleanup(cfg); err != nil {
		t.Fatal(err)
	}
	if nat := natRulesOf(t, cfg.NetworkName); nat != "" {
		t.Errorf("nat rules of the network left after Cleanup:\n%s", nat)
	}
	save, _ := exec.Command("iptables-save", "-t", "nat").Output()
	if strings.Contains(string(save), "CNI-DN-") == false && strings.Contains(string(save), "CNI-HOSTPORT-DNAT") {
		t.Errorf("shared CNI-HOSTPORT chains left although no host port remains:\n%s", save)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", cfg.BridgeName)); err == nil {
		t.Errorf("bridge %s left after Cleanup", cfg.BridgeName)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, cfg.NetworkName)); err == nil {
		t.Errorf("host-local leases left after Cleanup")
	}
}

// natRulesOf returns the nat rules that name network, and the rules of the
// chains those jump to.
func natRulesOf(t *testing.T, network string) string {
	t.Helper()
	save, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatal(err)
	}
	chains, rules := parseNAT(save)
	own := map[string]bool{}
	var b strings.Builder
	for _, r := range rules {
		if strings.Contains(r.line, networkComment(network)) {
			b.WriteString(r.line + "\n")
			if chains[r.target] {
				own[r.target] = true
			}
		}
	}
	for _, r := range rules {
		if own[r.chain] && !strings.Contains(r.line, networkComment(network)) {
			b.WriteString(r.line + "\n")
		}
	}
	return b.String()
}
