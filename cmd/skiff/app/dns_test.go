package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/dns"
	"github.com/skiff-dev/skiff/test/integration"
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

// TestServerDNS: skiff server's DNS component answers and publishes
// kube-dns at the 10th service IP with an endpoint on the port it has.
func TestServerDNS(t *testing.T) {
	var apiOpts *options.Options
	cfg := integration.StartAPIServer(t, integration.ServerOptions{Customize: func(o *options.Options) { apiOpts = o }})
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan *dns.Server, 1)
	done := make(chan error, 1)
	s := &serverDNS{apiserver: apiOpts, port: -1, nodeName: "n1", started: func(srv *dns.Server) { listening <- srv }}
	go func() { done <- s.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serverDNS.Run: %v", err)
		}
	})
	var srv *dns.Server
	select {
	case srv = <-listening:
	case err := <-done:
		t.Fatalf("serverDNS.Run: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the DNS did not start")
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	slice, err := cs.DiscoveryV1().EndpointSlices("kube-system").Get(context.Background(), "kube-dns-skiff-v4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *slice.Ports[0].Port, int32(srv.UDPAddr().Port); got != want {
		t.Errorf("kube-dns endpoint port %d, want the DNS's %d", got, want)
	}
	integration.Eventually(t, 20*time.Second, func() string {
		m := new(mdns.Msg)
		m.SetQuestion("kube-dns.kube-system.svc.cluster.local.", mdns.TypeA)
		resp, _, err := new(mdns.Client).Exchange(m, srv.UDPAddr().String())
		if err != nil || len(resp.Answer) != 1 || resp.Answer[0].(*mdns.A).A.String() != "10.96.0.10" {
			return fmt.Sprintf("kube-dns's A: %v %v", resp, err)
		}
		return ""
	})

	n := &nodeOptions{}
	if err := n.defaultClusterDNS(apiOpts.ServiceClusterIPRange); err != nil || len(n.clusterDNS) != 1 || n.clusterDNS[0] != "10.96.0.10" {
		t.Errorf("the local node's --cluster-dns: %v %v", n.clusterDNS, err)
	}
	n.clusterDNS = []string{"192.0.2.53"}
	if err := n.defaultClusterDNS(apiOpts.ServiceClusterIPRange); err != nil || n.clusterDNS[0] != "192.0.2.53" {
		t.Errorf("a given --cluster-dns replaced: %v", n.clusterDNS)
	}
}
