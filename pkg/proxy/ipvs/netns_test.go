package ipvs

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/proxy/proxytest"
	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

// These tests use the real ipset, iptables and rtnetlink in network
// namespaces named skipvs-*; IPVS itself cannot be had on kernels without
// IP_VS and stays a fake.

func needRootAndTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs the %s command: %v", tool, err)
		}
	}
}

func newNetns(t *testing.T, name string) string {
	t.Helper()
	ns := fmt.Sprintf("skipvs-%s-%d", name, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	return ns
}

func inNetns(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

func mustInNetns(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := inNetns(t, ns, args...)
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// nsIPT is pkg/proxy/iptables' Interface with the real iptables of a
// network namespace.
type nsIPT struct {
	t  *testing.T
	ns string
}

func (n nsIPT) run(stdin []byte, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (n nsIPT) EnsureChain(table, chain string) error {
	if n.run(nil, "iptables", "-w", "-t", table, "-S", chain) == nil {
		return nil
	}
	return n.run(nil, "iptables", "-w", "-t", table, "-N", chain)
}

func (n nsIPT) EnsureRuleFirst(table, chain string, rule ...string) error {
	if n.run(nil, append([]string{"iptables", "-w", "-t", table, "-C", chain}, rule...)...) == nil {
		return nil
	}
	return n.run(nil, append([]string{"iptables", "-w", "-t", table, "-I", chain, "1"}, rule...)...)
}

func (n nsIPT) DeleteRule(table, chain string, rule ...string) error { return nil }
func (n nsIPT) ChainExists(table, chain string) (bool, error) {
	return n.run(nil, "iptables", "-w", "-t", table, "-S", chain) == nil, nil
}
func (n nsIPT) DeleteChain(table, chain string) error     { return nil }
func (n nsIPT) ListChains(table string) ([]string, error) { return nil, nil }
func (n nsIPT) Restore(data []byte) error {
	return n.run(data, "iptables-restore", "-w", "5", "--noflush", "--counters")
}

// countingIPSet records the changes made through it.
type countingIPSet struct {
	IPSet
	changes []SetChange
}

func (c *countingIPSet) Apply(changes []SetChange) error {
	c.changes = append(c.changes, changes...)
	return c.IPSet.Apply(changes)
}

func TestRealIPSetsAndIPTablesInNetns(t *testing.T) {
	needRootAndTools(t, "ipset", "iptables", "iptables-restore")
	ns := newNetns(t, "rules")
	ipsetPath, _ := exec.LookPath("ipset")
	realSets := &ipsetCLI{path: ipsetPath, prefix: []string{"ip", "netns", "exec", ns}}
	ipt := nsIPT{t: t, ns: ns}
	_, cidr, _ := net.ParseCIDR("10.0.0.0/8")
	cfg := Config{NodeName: testNode, ClusterCIDR: cidr, NodeIPs: []net.IP{net.ParseIP("192.168.0.2")}}
	dummy := newFakeDummy("192.168.0.2", "172.16.0.2")
	ipvs := newFakeIPVS()
	p, err := NewProxier(ipvs, realSets, dummy, ipt, cfg)
	if err != nil {
		t.Fatal(err)
	}

	tr := tracker.New(v1.IPv4Protocol, testNode)
	lb := proxytest.Service("ns", "lb", "10.96.0.20", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30090
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32000
		// The node is in a range: no -m ipvs rule, which needs IP_VS.
		s.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/16", "192.0.2.9/32"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.7"}}
	})
	for _, s := range []*v1.Service{
		lb,
		proxytest.Service("ns", "web", "10.96.0.10", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ExternalIPs = []string{"203.0.113.5"}
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		}),
		proxytest.Service("ns", "dns", "10.96.0.11", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].Protocol = v1.ProtocolUDP
			s.Spec.Ports[0].NodePort = 30053
			s.Spec.ExternalIPs = []string{"203.0.113.6"}
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}),
		proxytest.Service("ns", "sctp", "10.96.0.12", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].Protocol = v1.ProtocolSCTP
			s.Spec.Ports[0].NodePort = 30099
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}),
		proxytest.Service("ns", "itp", "10.96.0.13", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}),
	} {
		tr.ServiceUpdate(nil, s)
	}
	lbEps := eps("ns", "lb", v1.ProtocolTCP, readyOn("10.1.0.2", testNode))
	tr.EndpointSliceUpdate(lbEps, false)
	tr.EndpointSliceUpdate(eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1")), false)
	if err := p.Sync(tr.Services, tr.Endpoints, tr.Apply()); err != nil {
		t.Fatalf("sync against the real ipset and iptables: %v", err)
	}

	// What the kernel's sets hold is what the proxier computed, every
	// kind of entry in the format ipset prints.
	want := p.setEntries
	for _, s := range Sets {
		got, err := realSets.ListEntries(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if computed := sets.List(want[s.Name]); !slices.Equal(computed, got) {
			t.Errorf("ipset %s: computed %v, the kernel has %v", s.Name, computed, got)
		}
	}
	for set, entry := range map[string]string{
		setLoadBalancerSrcCIDR: "198.51.100.7,tcp:80,192.0.2.9",
		setLoadBalancerSrcIP:   "198.51.100.7,tcp:80,198.51.100.7",
		setNodePortLocalSCTP:   "192.168.0.2,sctp:30099",
		setNodePortUDP:         "30053",
		setExternalIPLocal:     "203.0.113.6,udp:80",
		setLoopBack:            "10.1.0.2,tcp:8080,10.1.0.2",
		setHealthCheckNodePort: "32000",
	} {
		if !want[set].Has(entry) {
			t.Errorf("ipset %s lacks %s: %v", set, entry, sets.List(want[set]))
		}
	}

	// The rules are in the kernel, in our chains, with the jumps to them.
	nat := mustInNetns(t, ns, "iptables", "-w", "-t", "nat", "-S")
	filter := mustInNetns(t, ns, "iptables", "-w", "-t", "filter", "-S")
	for _, want := range []struct{ rules, a, b string }{
		{nat, "-A PREROUTING", "-j KUBE-SERVICES"},
		{nat, "-A POSTROUTING", "-j KUBE-POSTROUTING"},
		{nat, "--match-set KUBE-CLUSTER-IP dst,dst", "-j KUBE-MARK-MASQ"},
		{nat, "--match-set KUBE-NODE-PORT-LOCAL-UDP dst", "-j RETURN"},
		{nat, "--match-set KUBE-LOOP-BACK dst,dst,src", "-j MASQUERADE"},
		{filter, "-A INPUT", "-j KUBE-IPVS-FILTER"},
		{filter, "--match-set KUBE-LOAD-BALANCER-FW dst,dst", "-j KUBE-SOURCE-RANGES-FIREWALL"},
		{filter, "--match-set KUBE-IPVS-IPS dst", "-j REJECT"},
	} {
		found := false
		for _, line := range strings.Split(want.rules, "\n") {
			found = found || (strings.Contains(line, want.a) && strings.Contains(line, want.b))
		}
		if !found {
			t.Errorf("no rule with %q and %q in:\n%s", want.a, want.b, want.rules)
		}
	}

	// A restarted proxier reads the sets back: an entry nobody wants goes,
	// nothing else changes (the formats agree).
	mustInNetns(t, ns, "ipset", "add", setClusterIP, "10.96.9.9,tcp:1")
	counting := &countingIPSet{IPSet: realSets}
	p2, err := NewProxier(ipvs, counting, dummy, ipt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Sync(tr.Services, tr.Endpoints, tr.Apply()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]SetChange{{Set: setClusterIP, Entry: "10.96.9.9,tcp:1", Delete: true}}, counting.changes); diff != "" {
		t.Errorf("set changes after a restart (-want +got):\n%s", diff)
	}

	// The load balancer removed: its entries leave the kernel's sets.
	tr.ServiceUpdate(lb, nil)
	tr.EndpointSliceUpdate(lbEps, true)
	if err := p2.Sync(tr.Services, tr.Endpoints, tr.Apply()); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{setLoadBalancer, setLoadBalancerFW, setLoadBalancerLocal, setLoadBalancerSrcCIDR, setLoadBalancerSrcIP, setHealthCheckNodePort, setLoopBack} {
		got, err := realSets.ListEntries(set)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("ipset %s still has %v", set, got)
		}
	}
	clusterIPs, _ := realSets.ListEntries(setClusterIP)
	if slices.Contains(clusterIPs, "10.96.0.20,tcp:80") || !slices.Contains(clusterIPs, "10.96.0.10,tcp:80") {
		t.Errorf("KUBE-CLUSTER-IP after the removal: %v", clusterIPs)
	}
	if strings.Contains(mustInNetns(t, ns, "iptables", "-w", "-t", "filter", "-S", chainProxyFirewall), "KUBE-LOAD-BALANCER-FW") {
		t.Error("the load-balancer firewall rule stayed with its set empty")
	}
}

func TestNetlinkDummyInNetns(t *testing.T) {
	needRootAndTools(t)
	ns := newNetns(t, "dummy")
	mustInNetns(t, ns, "ip", "link", "add", "skv0", "type", "veth", "peer", "name", "skv1")
	mustInNetns(t, ns, "ip", "link", "set", "lo", "up")
	mustInNetns(t, ns, "ip", "link", "set", "skv1", "up")
	mustInNetns(t, ns, "ip", "addr", "add", "192.168.5.5/24", "dev", "skv1")
	handle, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer handle.Close()
	h, err := netlink.NewHandleAt(handle)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d := &netlinkDummy{h: h}

	// kube-ipvs0: made when the kernel has the dummy type, else a clear error.
	_, noDummy := inNetns(t, ns, "ip", "link", "add", "probe0", "type", "dummy")
	err = d.EnsureDevice(DummyDevice)
	if noDummy != nil {
		if err == nil || !strings.Contains(err.Error(), "no dummy network interfaces") {
			t.Errorf("EnsureDevice on a kernel without dummy links: %v", err)
		}
	} else if err != nil {
		t.Errorf("EnsureDevice: %v", err)
	}
	if err := d.EnsureDevice("skv0"); err == nil || !strings.Contains(err.Error(), "is a veth, not a dummy") {
		t.Errorf("EnsureDevice on a veth: %v", err)
	}

	ip := net.ParseIP("10.96.0.10")
	for i := 0; i < 2; i++ {
		if err := d.AddAddress("skv0", ip); err != nil {
			t.Fatalf("AddAddress (%d): %v", i, err)
		}
	}
	if err := d.AddAddress("skv0", net.ParseIP("fd00::1")); err == nil {
		t.Error("an IPv6 address was accepted")
	}
	addrs, err := d.Addresses("skv0")
	if err != nil || len(addrs) != 1 || !addrs[0].Equal(ip) {
		t.Errorf("Addresses: %v, %v; want [10.96.0.10]", addrs, err)
	}
	node, err := d.NodeAddresses("skv0")
	if err != nil {
		t.Fatal(err)
	}
	if len(node) != 1 || !node[0].Equal(net.ParseIP("192.168.5.5")) {
		t.Errorf("NodeAddresses: %v; want [192.168.5.5] (not loopback, not skv0's)", node)
	}
	for i := 0; i < 2; i++ {
		if err := d.DeleteAddress("skv0", ip); err != nil {
			t.Fatalf("DeleteAddress (%d): %v", i, err)
		}
	}
	if addrs, _ := d.Addresses("skv0"); len(addrs) != 0 {
		t.Errorf("Addresses after the deletion: %v", addrs)
	}
	if err := d.DeleteAddress("nonexistent0", ip); err != nil {
		t.Errorf("DeleteAddress on a missing device: %v", err)
	}
}

func TestSupportedOnThisKernel(t *testing.T) {
	err := Supported()
	if _, statErr := os.Stat(procIPVS); statErr != nil {
		// No IP_VS here (the case this test was written on).
		if err == nil || !strings.Contains(err.Error(), "CONFIG_IP_VS") || !strings.Contains(err.Error(), "use --mode iptables") {
			t.Errorf("Supported without %s: %v", procIPVS, err)
		}
		if _, herr := NewHandle(); herr == nil {
			t.Error("NewHandle succeeded without IP_VS")
		}
		t.Logf("Supported: %v", err)
	}

	needRootAndTools(t)
	ns := newNetns(t, "probe")
	_, noDummy := inNetns(t, ns, "ip", "link", "add", "probe0", "type", "dummy")
	derr := dummySupported()
	if noDummy != nil {
		if derr == nil || !strings.Contains(derr.Error(), "creating a dummy link") {
			t.Errorf("dummySupported on a kernel without dummy links: %v", derr)
		}
	} else if derr != nil {
		t.Errorf("dummySupported: %v", derr)
	}
	t.Logf("dummy probe: %v", derr)
}
