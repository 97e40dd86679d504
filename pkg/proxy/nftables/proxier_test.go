package nftables

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kptr "k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

const testNode = "test-node"

func svc(ns, name, clusterIP string, mutate func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP,
			Ports: []v1.ServicePort{{Name: "p80", Port: 80, Protocol: v1.ProtocolTCP}}},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

type addr struct {
	ip    string
	node  string
	ready bool
}

func ready(ip string) addr { return addr{ip: ip, ready: true} }

func eps(ns, name string, addrs ...addr) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: kptr.To("p80"), Port: kptr.To[int32](80), Protocol: kptr.To(v1.ProtocolTCP)}},
	}
	for _, a := range addrs {
		e := discovery.Endpoint{Addresses: []string{a.ip}, Conditions: discovery.EndpointConditions{Ready: kptr.To(a.ready)}}
		if a.node != "" {
			e.NodeName = kptr.To(a.node)
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return s
}

func newTracker(objs ...any) *tracker.Tracker {
	tr := tracker.New(v1.IPv4Protocol, testNode)
	feed(tr, objs...)
	return tr
}

func feed(tr *tracker.Tracker, objs ...any) {
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			tr.ServiceUpdate(nil, o)
		case *discovery.EndpointSlice:
			tr.EndpointSliceUpdate(o, false)
		}
	}
}

func testProxier(nft knftables.Interface) *Proxier {
	_, cidr, _ := net.ParseCIDR("10.0.0.0/8")
	return NewProxier(nft, Config{NodeName: testNode, ClusterCIDR: cidr, NodeIPs: []net.IP{net.ParseIP("192.168.0.2")}})
}

func syncAll(t *testing.T, p *Proxier, tr *tracker.Tracker) {
	t.Helper()
	if err := p.Sync(tr.Services, tr.Endpoints, tr.Apply()); err != nil {
		t.Fatal(err)
	}
}

// dumpLines are the fake table's objects, one "add ..." line each.
func dumpLines(fake *knftables.Fake) map[string]bool {
	lines := map[string]bool{}
	for _, l := range strings.Split(fake.Dump(), "\n") {
		if l != "" {
			lines[l] = true
		}
	}
	return lines
}

func TestNamesAreUpstreams(t *testing.T) {
	// Examples from upstream's proxier comments and tests.
	name := tracker.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns1", Name: "svc1"}, Port: "p80"}
	if got := servicePortBase(name, "tcp"); got != "ULMVA6XW-ns1/svc1/tcp/p80" {
		t.Errorf("service name base %s", got)
	}
	if got := endpointBase(name, "tcp", &tracker.Endpoint{IP: "10.180.0.1", Port: 80}); got != "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80" {
		t.Errorf("endpoint name base %s", got)
	}
	if got := nameBase(strings.Repeat("x", 300)); len(got) != nameBaseMax || !strings.HasSuffix(got, "...") {
		t.Errorf("long name base %q (%d)", got, len(got))
	}
}

// overall is upstream's TestOverallNFTablesRules scenario in spirit: a
// ClusterIP service over two endpoints, a LoadBalancer with Local policy
// and a local endpoint, a NodePort, an external IP, a LoadBalancer with
// source ranges and affinity, one without endpoints.
func overall() []any {
	return []any{
		svc("ns1", "svc1", "172.30.0.41", nil),
		eps("ns1", "svc1", ready("10.180.0.1"), ready("10.180.0.2")),
		svc("ns2", "svc2", "172.30.0.42", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.Ports[0].NodePort = 3001
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "1.2.3.4"}}
			s.Spec.HealthCheckNodePort = 30000
		}),
		eps("ns2", "svc2", addr{ip: "10.180.0.2", node: testNode, ready: true}, addr{ip: "10.180.0.3", node: "other", ready: true}),
		svc("ns3", "svc3", "172.30.0.43", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 3003
		}),
		eps("ns3", "svc3", ready("10.180.0.3")),
		svc("ns4", "svc4", "172.30.0.44", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"192.168.99.33"} }),
		eps("ns4", "svc4", ready("10.180.0.4")),
		svc("ns5", "svc5", "172.30.0.45", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 3002
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "5.6.7.8"}}
			s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/25"}
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: kptr.To[int32](10800)}}
		}),
		eps("ns5", "svc5", ready("10.180.0.5")),
		svc("ns6", "svc6", "172.30.0.46", nil),
	}
}

func TestOverallRules(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p := testProxier(fake)
	syncAll(t, p, newTracker(overall()...))
	got := dumpLines(fake)

	want := []string{
		// Base chains and the dispatch.
		"add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
		"add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }",
		"add rule ip kube-proxy nat-prerouting jump services",
		"add rule ip kube-proxy nat-postrouting jump masquerading",
		"add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check",
		"add rule ip kube-proxy masquerading mark and 0x00004000 != 0 mark set mark xor 0x00004000 masquerade fully-random",
		"add rule ip kube-proxy services ip daddr @cluster-ips ip saddr != 10.0.0.0/8 mark set mark or 0x00004000 comment \"masquerade clusterIP traffic from outside cluster\"",
		"add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips",
		"add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
		"add rule ip kube-proxy reject-chain reject",

		// svc1: two endpoints spread by numgen.
		"add element ip kube-proxy cluster-ips { 172.30.0.41 }",
		"add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }",
		"add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.180.0.1 . 80 , 1 : 10.180.0.2 . 80 }",

		// svc2: Local external policy, the local endpoint only outside,
		// every endpoint inside; the local one hairpins.
		"add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }",
		"add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }",
		"add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit pod traffic\"",
		"add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local mark set mark or 0x00004000 comment \"masquerade local traffic\"",
		"add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit local traffic\"",
		"add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 goto local-42NFTM6N-ns2/svc2/tcp/p80",
		"add rule ip kube-proxy local-42NFTM6N-ns2/svc2/tcp/p80 meta l4proto tcp dnat to 10.180.0.2:80",
		"add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.180.0.2 . 80 , 1 : 10.180.0.3 . 80 }",
		"add element ip kube-proxy hairpin-connections { 10.180.0.2 . 10.180.0.2 . tcp . 80 }",

		// svc3: NodePort with Cluster policy: masqueraded.
		"add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }",
		"add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 mark set mark or 0x00004000 comment \"masquerade\"",
		"add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80",

		// svc4: external IP.
		"add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }",

		// svc5: source ranges and affinity.
		"add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }",
		"add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop",
		"add set ip kube-proxy affinity-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }",
		"add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80 goto endpoint-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80",
		"add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80 }",
		"add rule ip kube-proxy endpoint-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80 update @affinity-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80 { ip saddr }",
		"add rule ip kube-proxy endpoint-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80",

		// svc6: no endpoints: rejected.
		"add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment \"ns6/svc6:p80\" : goto reject-chain }",
	}
	var missing []string
	for _, l := range want {
		if !got[l] {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		t.Errorf("missing from the table:\n%s\n\ntable:\n%s", strings.Join(missing, "\n"), fake.Dump())
	}
	// No service chain for the service without endpoints, no hairpin for
	// remote endpoints.
	for l := range got {
		if strings.Contains(l, "ns6/svc6/tcp/p80") || strings.Contains(l, "hairpin-connections { 10.180.0.1") {
			t.Errorf("unexpected %s", l)
		}
	}
}

// A partial sync must leave the table as a full sync of the same state
// would, with a transaction about the changed service only.
func TestPartialSyncEqualsFullSync(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p := testProxier(fake)
	tr := newTracker(overall()...)
	syncAll(t, p, tr)

	steps := []struct {
		name    string
		change  func(tr *tracker.Tracker)
		service string
	}{
		{"endpoint replaced", func(tr *tracker.Tracker) {
			feed(tr, eps("ns1", "svc1", ready("10.180.0.1"), ready("10.180.0.9")))
		}, "ns1/svc1"},
		{"last endpoint gone: rejected", func(tr *tracker.Tracker) { feed(tr, eps("ns4", "svc4")) }, "ns4/svc4"},
		{"endpoints back", func(tr *tracker.Tracker) { feed(tr, eps("ns6", "svc6", ready("10.180.0.6"))) }, "ns6/svc6"},
		{"affinity endpoint changed", func(tr *tracker.Tracker) { feed(tr, eps("ns5", "svc5", ready("10.180.0.7"))) }, "ns5/svc5"},
		{"service deleted", func(tr *tracker.Tracker) {
			tr.ServiceUpdate(svc("ns3", "svc3", "172.30.0.43", nil), nil)
		}, "ns3/svc3"},
		{"local endpoint moved away", func(tr *tracker.Tracker) {
			feed(tr, eps("ns2", "svc2", addr{ip: "10.180.0.3", node: "other", ready: true}))
		}, "ns2/svc2"},
	}
	for _, step := range steps {
		step.change(tr)
		syncAll(t, p, tr)
		tx, full := p.LastTransaction()
		if full {
			t.Fatalf("%s: a full sync, want a partial one", step.name)
		}
		for _, other := range []string{"ns1/svc1", "ns2/svc2", "ns3/svc3", "ns4/svc4", "ns5/svc5", "ns6/svc6"} {
			if other != step.service && strings.Contains(tx, other) {
				t.Errorf("%s: the transaction touches %s:\n%s", step.name, other, tx)
			}
		}
		if !strings.Contains(tx, step.service) {
			t.Errorf("%s: the transaction does not touch %s:\n%s", step.name, step.service, tx)
		}

		// The same state, synced whole into an empty table.
		fresh := knftables.NewFake(knftables.IPv4Family, TableName)
		q := testProxier(fresh)
		if err := q.Sync(tr.Services, tr.Endpoints, tracker.Result{}); err != nil {
			t.Fatal(err)
		}
		// Chains flushed but not yet deleted are the only difference.
		partial := dumpLines(fake)
		for c := range p.staleChains {
			delete(partial, "add chain ip kube-proxy "+c)
		}
		whole := dumpLines(fresh)
		for l := range whole {
			if !partial[l] {
				t.Errorf("%s: after the partial sync the table lacks %s", step.name, l)
			}
		}
		for l := range partial {
			if !whole[l] {
				t.Errorf("%s: after the partial sync the table has %s too", step.name, l)
			}
		}
	}
}

func TestStaleChainsDeletedLater(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p := testProxier(fake)
	tr := newTracker(svc("ns1", "svc1", "172.30.0.41", nil), eps("ns1", "svc1", ready("10.180.0.1")))
	syncAll(t, p, tr)
	chain := "service-ULMVA6XW-ns1/svc1/tcp/p80"
	if fake.Table.Chains[chain] == nil {
		t.Fatalf("no chain %s:\n%s", chain, fake.Dump())
	}
	tr.ServiceUpdate(svc("ns1", "svc1", "172.30.0.41", nil), nil)
	syncAll(t, p, tr)
	c := fake.Table.Chains[chain]
	if c == nil || len(c.Rules) != 0 {
		t.Fatalf("chain %s: want it flushed, not yet deleted: %+v", chain, c)
	}
	if e := fake.Table.Maps[serviceIPsMap].FindElement("172.30.0.41", "tcp", "80"); e != nil {
		t.Errorf("service-ips still has %v", e)
	}
	// A second later the next sync deletes it.
	p.staleChains[chain] = time.Now().Add(-2 * staleChainDelay)
	syncAll(t, p, tr)
	if fake.Table.Chains[chain] != nil {
		t.Errorf("chain %s not deleted", chain)
	}
}

func TestFullSyncRemovesLeftovers(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	old := testProxier(fake)
	syncAll(t, old, newTracker(overall()...))
	// A new proxy (a restart) that knows only svc1.
	p := testProxier(fake)
	syncAll(t, p, newTracker(svc("ns1", "svc1", "172.30.0.41", nil), eps("ns1", "svc1", ready("10.180.0.1"))))
	for name, c := range fake.Table.Chains {
		if isServiceObject(name) && !strings.Contains(name, "ns1/svc1") && len(c.Rules) != 0 {
			t.Errorf("leftover chain %s not flushed", name)
		}
	}
	for name := range fake.Table.Sets {
		if isServiceObject(name) {
			t.Errorf("leftover affinity set %s", name)
		}
	}
	for _, m := range []string{serviceIPsMap, serviceNodePortsMap, noEndpointServicesMap, firewallIPsMap} {
		for _, e := range fake.Table.Maps[m].Elements {
			if !strings.Contains(strings.Join(e.Value, " "), "ns1/svc1") {
				t.Errorf("leftover element in %s: %v", m, e)
			}
		}
	}
}

// failingNFT fails its next Run.
type failingNFT struct {
	*knftables.Fake
	fail bool
}

func (f *failingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	if f.fail {
		f.fail = false
		return errors.New("injected failure")
	}
	return f.Fake.Run(ctx, tx)
}

func TestFailureForcesFullSync(t *testing.T) {
	nft := &failingNFT{Fake: knftables.NewFake(knftables.IPv4Family, TableName)}
	p := testProxier(nft)
	tr := newTracker(overall()...)
	syncAll(t, p, tr)
	feed(tr, eps("ns1", "svc1", ready("10.180.0.9")))
	nft.fail = true
	if err := p.Sync(tr.Services, tr.Endpoints, tr.Apply()); err == nil {
		t.Fatal("Sync succeeded with a failing nft")
	}
	// The change is consumed by the tracker: only a full sync has it.
	syncAll(t, p, tr)
	if _, full := p.LastTransaction(); !full {
		t.Error("the sync after a failure was not a full one")
	}
	if e := nft.Table.Chains["service-ULMVA6XW-ns1/svc1/tcp/p80"]; e == nil || !strings.Contains(e.Rules[0].Rule, "10.180.0.9") {
		t.Errorf("svc1's chain lacks the new endpoint: %+v", e)
	}
}

func TestDeletedTableRewritten(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p := testProxier(fake)
	tr := newTracker(overall()...)
	syncAll(t, p, tr)
	if err := cleanupTable(context.Background(), fake); err != nil {
		t.Fatal(err)
	}
	if fake.Table != nil {
		t.Fatal("cleanup left the table")
	}
	// Nothing changed, yet the table is written whole.
	syncAll(t, p, tr)
	if _, full := p.LastTransaction(); !full {
		t.Error("not a full sync after the table was deleted")
	}
	if fake.Table == nil || fake.Table.Maps[serviceIPsMap].FindElement("172.30.0.41", "tcp", "80") == nil {
		t.Errorf("table not rewritten:\n%s", fake.Dump())
	}
	// Cleaning up a table that is not there is fine.
	if err := cleanupTable(context.Background(), fake); err != nil {
		t.Fatal(err)
	}
	if err := cleanupTable(context.Background(), fake); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

func TestMasqueradeAllAndNodePortAddresses(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p := NewProxier(fake, Config{MasqueradeAll: true, MasqueradeBit: 5, NodePortAddresses: []net.IP{net.ParseIP("192.168.0.2"), net.ParseIP("127.0.0.1")}})
	syncAll(t, p, newTracker(overall()...))
	got := dumpLines(fake)
	for _, l := range []string{
		"add rule ip kube-proxy services ip daddr @cluster-ips mark set mark or 0x00000020 comment \"masquerade all clusterIP traffic\"",
		"add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
		"add element ip kube-proxy nodeport-ips { 192.168.0.2 }",
	} {
		if !got[l] {
			t.Errorf("missing %s\n%s", l, fake.Dump())
		}
	}
	if got["add element ip kube-proxy nodeport-ips { 127.0.0.1 }"] {
		t.Error("loopback in nodeport-ips")
	}
}

func TestKernelVersion(t *testing.T) {
	for release, want := range map[string][2]int{"6.18.0-1-amd64": {6, 18}, "5.13": {5, 13}, "4.19.0+": {4, 19}} {
		major, minor, ok := kernelVersion(release)
		if !ok || major != want[0] || minor != want[1] {
			t.Errorf("%s: %d.%d %t", release, major, minor, ok)
		}
	}
	if _, _, ok := kernelVersion("garbage"); ok {
		t.Error("garbage parsed")
	}
}

func TestCheck(t *testing.T) {
	t.Run("without nft", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		err := Check()
		if err == nil || !strings.Contains(err.Error(), "needs the nft command") {
			t.Errorf("Check without nft: %v", err)
		}
		// Nothing to clean up then, and no error.
		if err := Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup without nft: %v", err)
		}
	})
	t.Run("here", func(t *testing.T) {
		if _, err := exec.LookPath("nft"); err != nil || os.Geteuid() != 0 {
			t.Skip("needs nft and root (nft --check of a table)")
		}
		// A dry run (nft --check): the host's ruleset is not changed.
		if err := Check(); err != nil {
			t.Errorf("Check on a host with nft and nf_tables: %v", err)
		}
	})
}
