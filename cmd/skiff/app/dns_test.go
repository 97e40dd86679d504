package app

import (
	"strings"
	"testing"
)

func TestDNSOptions(t *testing.T) {
	cmd := newDNSCommand()
	if err := cmd.Flags().Parse([]string{"--port", "5353", "--ready-port", "8080", "--metrics-port", "0", "--upstream-servers", "192.0.2.1,192.0.2.2:5353"}); err != nil {
		t.Fatal(err)
	}
	o := &dnsOptions{}
	o.bindAddress, _ = cmd.Flags().GetString("bind-address")
	o.port, _ = cmd.Flags().GetInt("port")
	o.ttl, _ = cmd.Flags().GetInt("ttl")
	o.healthPort, _ = cmd.Flags().GetInt("health-port")
	o.readyPort, _ = cmd.Flags().GetInt("ready-port")
	o.metricsPort, _ = cmd.Flags().GetInt("metrics-port")
	o.upstreams, _ = cmd.Flags().GetStringSlice("upstream-servers")
	opts, err := o.options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Port != 5353 || opts.HealthAddress != "0.0.0.0:8080" || opts.ReadyAddress != "0.0.0.0:8080" || opts.MetricsAddress != "" || opts.TTL != 30 || len(opts.Upstreams) != 2 {
		t.Errorf("options %+v", opts)
	}

	bad := &dnsOptions{bindAddress: "nowhere", port: 0, ttl: 0, healthPort: 70000, upstreams: []string{"dns.example.org"}}
	_, err = bad.options()
	for _, want := range []string{"--bind-address", "--port", "--ttl", "--health-port", "--upstream-servers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one about %s", err, want)
		}
	}
}

func TestNodeDNSFlags(t *testing.T) {
	n := &nodeOptions{maxPods: 110, kubeletPort: 10250, clusterDNS: []string{"10.96.0.10", "fd00::a"}, clusterDomain: "cluster.example", resolvConf: "/tmp/resolv.conf"}
	o, err := n.agentOptions(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(o.ClusterDNS) != 2 || o.ClusterDNS[1].String() != "fd00::a" || o.ClusterDomain != "cluster.example" || o.ResolvConf != "/tmp/resolv.conf" {
		t.Errorf("agent options: dns %v, domain %q, resolv.conf %q", o.ClusterDNS, o.ClusterDomain, o.ResolvConf)
	}
	n.clusterDNS, n.clusterDomain = []string{"kube-dns"}, "Not_A.Domain"
	_, err = n.agentOptions(t.TempDir())
	for _, want := range []string{`--cluster-dns: "kube-dns" is not an IP address`, "--cluster-domain"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one with %s", err, want)
		}
	}
}
