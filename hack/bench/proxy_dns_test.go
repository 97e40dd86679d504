package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestEndpointIP(t *testing.T) {
	for n, want := range map[int]string{0: "10.214.0.0", 1: "10.214.0.1", 256: "10.214.1.0", 49999: "10.214.195.79", 70000: "10.215.17.112"} {
		if got := endpointIP(benchEndpointBase, n); got != want {
			t.Errorf("endpointIP(%d) = %s, want %s", n, got, want)
		}
	}
	if got := benchAddrs(2, 5); got[0] != "10.214.0.10" || got[4] != "10.214.0.14" {
		t.Errorf("benchAddrs(2, 5) = %v", got)
	}
}

func TestCountServiceRules(t *testing.T) {
	iptables := `*nat
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "bench-proxy/svc-00000:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-AAAA
-A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment "bench-proxy/svc-00001:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-BBBB
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-AAAA -j KUBE-SEP-CCCC
COMMIT
`
	if n := countServiceRules(iptables, "iptables"); n != 2 {
		t.Errorf("iptables: %d services, want 2", n)
	}
	nft := `table ip kube-proxy {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 10.96.0.1 . tcp . 443 : goto service-2QRHZV4L-default/kubernetes/tcp/https,
			     10.96.0.10 . tcp . 80 : goto service-ABCDEF-bench-proxy/svc-00000/tcp/http }
	}
}
`
	if n := countServiceRules(nft, "nftables"); n != 2 {
		t.Errorf("nftables: %d services, want 2", n)
	}
}

func TestFakeResolverAndExchange(t *testing.T) {
	f, err := startFakeResolver()
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	co, err := dns.Dial("udp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	name := "name-7." + dnsForwardZone
	if err := exchangeA(co, name, fakeAnswer(name).String()); err != nil {
		t.Errorf("in the zone: %v", err)
	}
	if err := exchangeA(co, name, "192.0.2.1"); err == nil || !strings.Contains(err.Error(), "want A 192.0.2.1") {
		t.Errorf("a wrong answer was not caught: %v", err)
	}
	if err := exchangeA(co, "example.org.", "192.0.2.1"); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Errorf("outside the zone: %v, want NXDOMAIN", err)
	}
	if got := f.queries.Load(); got != 3 {
		t.Errorf("the fake upstream counted %d queries, want 3", got)
	}
}

func TestCorefileKeepsKubeadmsPlugins(t *testing.T) {
	c := corefile(dnsPorts{dns: 1053, health: 1, ready: 2, metrics: 3}, "/k", "127.0.0.1:99")
	for _, want := range []string{".:1053 {", "kubeconfig /k", "forward . 127.0.0.1:99", "disable success cluster.local",
		"pods insecure", "fallthrough in-addr.arpa ip6.arpa", "ttl 30", "lameduck 5s", "loop", "reload", "loadbalance"} {
		if !strings.Contains(c, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, c)
		}
	}
}

func TestProcCPUTreeCountsChildren(t *testing.T) {
	before := procCPUTree(os.Getpid())
	// A child that burns CPU, waited for: its time is in cutime.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Skip("no sh:", err)
	}
	if el := time.Since(t0); el < 100*time.Millisecond {
		t.Skipf("the child ran only %s: too short to show in clock ticks", el)
	}
	if after := procCPUTree(os.Getpid()); after-before < 50*time.Millisecond {
		t.Errorf("CPU of self and children grew by %s after a busy child", after-before)
	}
}

// TestProxyNetns makes a namespace as the proxy runs use and checks that
// the host reaches it and that tearDown removes it.
func TestProxyNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	ns := newProxyNetns(250)
	t.Cleanup(func() { _ = ns.tearDown() })
	if err := ns.setUp(); err != nil {
		t.Fatal(err)
	}
	out, err := ns.exec("ip", "-4", "-o", "addr", "show", "dev", ns.nsIf)
	if err != nil || !strings.Contains(out, ns.nsIP+"/30") {
		t.Fatalf("address inside: %q, %v", out, err)
	}
	if v, err := ns.exec("sysctl", "-n", "net.ipv6.conf.all.disable_ipv6"); err != nil || strings.TrimSpace(v) != "1" {
		t.Errorf("IPv6 inside: disable_ipv6=%q, %v", v, err)
	}
	if err := runCmd("ping", "-c", "1", "-W", "2", ns.nsIP); err != nil && !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("the host does not reach the namespace: %v", err)
	}
	if err := ns.tearDown(); err != nil {
		t.Fatal(err)
	}
	if list, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(list), ns.name+" ") || strings.Contains(string(list), ns.name+"\n") {
		t.Errorf("%s still listed after tearDown:\n%s", ns.name, list)
	}
	if _, err := os.Stat("/sys/class/net/" + ns.hostIf); err == nil {
		t.Errorf("%s still there after tearDown", ns.hostIf)
	}
}
