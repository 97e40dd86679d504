package iptables

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/proxy/proxytest"
	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

const testNode = "test-node"

// fakeIPT records what the proxier does instead of doing it.
type fakeIPT struct {
	chains   map[string][]string
	jumps    []string
	deleted  []string
	restores []string
	fail     error
}

func (f *fakeIPT) EnsureChain(table, chain string) error { return nil }
func (f *fakeIPT) EnsureRuleFirst(table, chain string, rule ...string) error {
	f.jumps = append(f.jumps, table+" "+chain+" "+strings.Join(rule, " "))
	return nil
}
func (f *fakeIPT) DeleteRule(table, chain string, rule ...string) error {
	f.deleted = append(f.deleted, table+" "+chain+" "+strings.Join(rule, " "))
	return nil
}
func (f *fakeIPT) ListChains(table string) ([]string, error) { return f.chains[table], nil }
func (f *fakeIPT) ChainExists(table, chain string) (bool, error) {
	for _, c := range f.chains[table] {
		if c == chain {
			return true, nil
		}
	}
	return false, nil
}
func (f *fakeIPT) DeleteChain(table, chain string) error {
	f.deleted = append(f.deleted, table+" "+chain)
	return nil
}
func (f *fakeIPT) Restore(data []byte) error {
	if f.fail != nil {
		return f.fail
	}
	f.restores = append(f.restores, string(data))
	return nil
}

type addr struct {
	ip    string
	node  string
	ready bool
}

func eps(ns, name string, addrs ...addr) *discovery.EndpointSlice {
	s := proxytest.EndpointSlice(ns, name, 80, v1.ProtocolTCP)
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, proxytest.Endpoint(a.ip, a.node, discovery.EndpointConditions{Ready: ptr.To(a.ready)}))
	}
	return s
}

func ready(ip string) addr { return addr{ip: ip, ready: true} }

// state is a tracker fed with objects, applied.
func state(objs ...any) (*tracker.Tracker, tracker.Result) {
	tr := tracker.New(v1.IPv4Protocol, testNode)
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			tr.ServiceUpdate(nil, o)
		case *discovery.EndpointSlice:
			tr.EndpointSliceUpdate(o, false)
		}
	}
	return tr, tr.Apply()
}

func testProxier(f *fakeIPT) *Proxier {
	_, cidr, _ := net.ParseCIDR("10.0.0.0/8")
	return NewProxier(f, Config{NodeName: testNode, ClusterCIDR: cidr, LocalhostNodePorts: true, NodeIPs: []net.IP{net.ParseIP("192.168.0.2")}})
}

func syncRules(t *testing.T, p *Proxier, tr *tracker.Tracker, res tracker.Result) string {
	t.Helper()
	if err := p.Sync(tr.Services, tr.Endpoints, res); err != nil {
		t.Fatal(err)
	}
	return string(p.LastRestore())
}

// tables splits restore input into its tables' lines, sorted (rule order
// matters only within a chain, and within a chain it is kept).
func tables(t *testing.T, data string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var table string
	for _, l := range strings.Split(strings.TrimSpace(data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case l == "COMMIT":
		default:
			out[table] = append(out[table], l)
		}
	}
	for k := range out {
		out[k] = sortKeepingChainOrder(out[k])
	}
	return out
}

// sortKeepingChainOrder sorts chain lines and groups rules by chain,
// keeping each chain's rules in order.
func sortKeepingChainOrder(lines []string) []string {
	var chains []string
	rules := map[string][]string{}
	var order []string
	for _, l := range lines {
		if strings.HasPrefix(l, ":") {
			chains = append(chains, l)
			continue
		}
		f := strings.Fields(l)
		key := f[1]
		if _, ok := rules[key]; !ok {
			order = append(order, key)
		}
		rules[key] = append(rules[key], l)
	}
	sort.Strings(chains)
	sort.Strings(order)
	out := chains
	for _, k := range order {
		out = append(out, rules[k]...)
	}
	return out
}

func TestChainNamesAreUpstreams(t *testing.T) {
	// Known names from upstream's kube-proxy tests.
	if got := serviceChain(svcChainPrefix, "ns1/svc1:p80", "tcp"); got != "KUBE-SVC-XPGD46QRK7WJZT7O" {
		t.Errorf("service chain %s", got)
	}
	if got := endpointChain("ns1/svc1:p80", "tcp", "10.180.0.1:80"); got != "KUBE-SEP-SXIVWICOYRO3J4NJ" {
		t.Errorf("endpoint chain %s", got)
	}
	if got := serviceChain(fwChainPrefix, "ns5/svc5:p80", "tcp"); got != "KUBE-FW-NUKIZ6OKUXPJNT4C" {
		t.Errorf("firewall chain %s", got)
	}
}

// TestOverallRules is upstream's TestOverallIPTablesRules scenario (six
// services: ClusterIP, LoadBalancer Local, NodePort, external IP,
// LoadBalancer with source ranges and affinity, no endpoints): the rules
// must be upstream's, less its nfacct counters.
func TestOverallRules(t *testing.T) {
	tr, res := state(
		proxytest.Service("ns1", "svc1", "172.30.0.41", nil),
		proxytest.Service("ns2", "svc2", "172.30.0.42", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.Ports[0].NodePort = 3001
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "1.2.3.4"}}
			s.Spec.ExternalIPs = []string{"192.168.99.22"}
			s.Spec.HealthCheckNodePort = 30000
		}),
		proxytest.Service("ns3", "svc3", "172.30.0.43", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 3003
		}),
		proxytest.Service("ns4", "svc4", "172.30.0.44", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.ExternalIPs = []string{"192.168.99.33"}
		}),
		proxytest.Service("ns5", "svc5", "172.30.0.45", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports[0].NodePort = 3002
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "5.6.7.8"}}
			s.Spec.HealthCheckNodePort = 30000
			s.Spec.LoadBalancerSourceRanges = []string{" 203.0.113.0/25"}
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](10800)}}
		}),
		proxytest.Service("ns6", "svc6", "172.30.0.46", nil),
		eps("ns1", "svc1", ready("10.180.0.1")),
		// Not on this node (no nodeName): svc2 has no local endpoint.
		eps("ns2", "svc2", ready("10.180.0.2")),
		eps("ns3", "svc3", ready("10.180.0.3")),
		eps("ns4", "svc4", ready("10.180.0.4"), addr{ip: "10.180.0.5", node: testNode, ready: true}),
		eps("ns5", "svc5", ready("10.180.0.3")),
	)
	got := tables(t, syncRules(t, testProxier(&fakeIPT{}), tr, res))
	want := tables(t, `
*filter
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
COMMIT
*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
:KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
:KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
:KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
:KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
COMMIT
`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules differ from upstream's (-want +got):\n%s", diff)
	}
}

func TestThreeEndpointsSpreadEvenly(t *testing.T) {
	tr, res := state(proxytest.Service("ns", "web", "10.96.0.20", nil), eps("ns", "web", ready("10.1.0.1"), ready("10.1.0.2"), ready("10.1.0.3")))
	out := syncRules(t, testProxier(&fakeIPT{}), tr, res)
	chain := serviceChain(svcChainPrefix, "ns/web:p80", "tcp")
	sep := func(ip string) string { return endpointChain("ns/web:p80", "tcp", ip+":80") }
	proxytest.HasLine(t, out, fmt.Sprintf(`-A KUBE-SERVICES -m comment --comment "ns/web:p80 cluster IP" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j %s`, chain))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/web:p80 -> 10.1.0.1:80" -m statistic --mode random --probability 0.3333333333 -j %s`, chain, sep("10.1.0.1")))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/web:p80 -> 10.1.0.2:80" -m statistic --mode random --probability 0.5000000000 -j %s`, chain, sep("10.1.0.2")))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/web:p80 -> 10.1.0.3:80" -j %s`, chain, sep("10.1.0.3")))
	for _, ip := range []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"} {
		proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment ns/web:p80 -m tcp -p tcp -j DNAT --to-destination %s:80`, sep(ip), ip))
	}
	proxytest.Lacks(t, out, "REJECT")
}

func TestNoUsableEndpointsRejects(t *testing.T) {
	// Only a not-ready, not-terminating endpoint: nothing usable.
	tr, res := state(proxytest.Service("ns", "web", "10.96.0.20", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"192.0.2.10"}
	}), eps("ns", "web", addr{ip: "10.1.0.1"}))
	out := syncRules(t, testProxier(&fakeIPT{}), tr, res)
	proxytest.HasLine(t, out, `-A KUBE-SERVICES -m comment --comment "ns/web:p80 has no endpoints" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j REJECT`)
	proxytest.HasLine(t, out, `-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns/web:p80 has no endpoints" -m tcp -p tcp -d 192.0.2.10 --dport 80 -j REJECT`)
	proxytest.HasLine(t, out, `-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns/web:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT`)
	proxytest.Lacks(t, out, "KUBE-SVC-")
	proxytest.Lacks(t, out, "KUBE-SEP-")
}

func TestNodePortAndAffinity(t *testing.T) {
	tr, res := state(proxytest.Service("ns", "web", "10.96.0.20", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](300)}}
	}), eps("ns", "web", ready("10.1.0.1"), ready("10.1.0.2")))
	p := testProxier(&fakeIPT{})
	p.cfg.LocalhostNodePorts = false
	out := syncRules(t, p, tr, res)
	svcChain := serviceChain(svcChainPrefix, "ns/web:p80", "tcp")
	ext := serviceChain(extChainPrefix, "ns/web:p80", "tcp")
	sep1 := endpointChain("ns/web:p80", "tcp", "10.1.0.1:80")
	proxytest.HasLine(t, out, fmt.Sprintf(`-A KUBE-NODEPORTS -m comment --comment ns/web:p80 -m tcp -p tcp --dport 30080 -j %s`, ext))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "masquerade traffic for ns/web:p80 external destinations" -j KUBE-MARK-MASQ`, ext))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -j %s`, ext, svcChain))
	proxytest.HasLine(t, out, `-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS`)
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/web:p80 -> 10.1.0.1:80" -m recent --name %s --rcheck --seconds 300 --reap -j %s`, svcChain, sep1, sep1))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment ns/web:p80 -m recent --name %s --set -m tcp -p tcp -j DNAT --to-destination 10.1.0.1:80`, sep1, sep1))
	proxytest.Lacks(t, out, "KUBE-FIREWALL")
	// The affinity checks come before the random spread.
	if i, j := strings.Index(out, "--rcheck"), strings.Index(out, "--mode random"); i < 0 || j < 0 || i > j {
		t.Errorf("affinity rules are not before the spread:\n%s", out)
	}
}

func TestLocalTrafficPolicies(t *testing.T) {
	local := addr{ip: "10.1.0.1", node: testNode, ready: true}
	remote := addr{ip: "10.1.0.2", node: "other", ready: true}
	tr, res := state(
		proxytest.Service("ns", "etp", "10.96.0.21", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30081
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}),
		eps("ns", "etp", local, remote),
		proxytest.Service("ns", "itp", "10.96.0.22", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}),
		eps("ns", "itp", local, remote),
		proxytest.Service("ns", "itp-remote", "10.96.0.23", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}),
		eps("ns", "itp-remote", remote),
	)
	out := syncRules(t, testProxier(&fakeIPT{}), tr, res)
	ext := serviceChain(extChainPrefix, "ns/etp:p80", "tcp")
	svl := serviceChain(svlChainPrefix, "ns/etp:p80", "tcp")
	svcC := serviceChain(svcChainPrefix, "ns/etp:p80", "tcp")
	// External traffic: only the local endpoint, no masquerade (the client
	// IP is kept); this node's own traffic masqueraded, to all endpoints.
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -j %s`, ext, svl))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "masquerade LOCAL traffic for ns/etp:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`, ext))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/etp:p80 -> 10.1.0.1:80" -j %s`, svl, endpointChain("ns/etp:p80", "tcp", "10.1.0.1:80")))
	proxytest.Lacks(t, out, fmt.Sprintf(`-A %s -m comment --comment "masquerade traffic for`, ext))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/etp:p80 -> 10.1.0.2:80" -j %s`, svcC, endpointChain("ns/etp:p80", "tcp", "10.1.0.2:80")))

	// Internal Local: the cluster IP goes to the local endpoint only.
	itpSVL := serviceChain(svlChainPrefix, "ns/itp:p80", "tcp")
	proxytest.HasLine(t, out, fmt.Sprintf(`-A KUBE-SERVICES -m comment --comment "ns/itp:p80 cluster IP" -m tcp -p tcp -d 10.96.0.22 --dport 80 -j %s`, itpSVL))
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/itp:p80 -> 10.1.0.1:80" -j %s`, itpSVL, endpointChain("ns/itp:p80", "tcp", "10.1.0.1:80")))
	proxytest.Lacks(t, out, endpointChain("ns/itp:p80", "tcp", "10.1.0.2:80"))
	proxytest.Lacks(t, out, serviceChain(svcChainPrefix, "ns/itp:p80", "tcp"))
	// No local endpoint: dropped (not rejected: endpoints exist elsewhere).
	proxytest.HasLine(t, out, `-A KUBE-SERVICES -m comment --comment "ns/itp-remote:p80 has no local endpoints" -m tcp -p tcp -d 10.96.0.23 --dport 80 -j DROP`)
}

func TestMasqueradeAll(t *testing.T) {
	tr, res := state(proxytest.Service("ns", "web", "10.96.0.20", nil), eps("ns", "web", ready("10.1.0.1")))
	p := NewProxier(&fakeIPT{}, Config{MasqueradeAll: true})
	out := syncRules(t, p, tr, res)
	proxytest.HasLine(t, out, fmt.Sprintf(`-A %s -m comment --comment "ns/web:p80 cluster IP" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j KUBE-MARK-MASQ`, serviceChain(svcChainPrefix, "ns/web:p80", "tcp")))
	// Without a cluster CIDR nor masquerade-all: no masquerade rule.
	out = syncRules(t, NewProxier(&fakeIPT{}, Config{}), tr, res)
	proxytest.Lacks(t, out, `--dport 80 -j KUBE-MARK-MASQ`)
	proxytest.Lacks(t, out, `! -s`)
}

func TestPartialSyncAndStaleChains(t *testing.T) {
	tr := tracker.New(v1.IPv4Protocol, testNode)
	a, b := proxytest.Service("ns", "a", "10.96.0.31", nil), proxytest.Service("ns", "b", "10.96.0.32", nil)
	for _, o := range []*v1.Service{a, b} {
		tr.ServiceUpdate(nil, o)
	}
	tr.EndpointSliceUpdate(eps("ns", "a", ready("10.1.0.1")), false)
	tr.EndpointSliceUpdate(eps("ns", "b", ready("10.1.0.2")), false)
	f := &fakeIPT{chains: map[string][]string{}}
	p := testProxier(f)
	first := syncRules(t, p, tr, tr.Apply())
	aChain := serviceChain(svcChainPrefix, "ns/a:p80", "tcp")
	bChain := serviceChain(svcChainPrefix, "ns/b:p80", "tcp")
	oldSEP := endpointChain("ns/b:p80", "tcp", "10.1.0.2:80")
	for _, c := range []string{aChain, bChain, oldSEP} {
		proxytest.HasLine(t, first, ":"+c+" - [0:0]")
	}
	if len(f.jumps) == 0 {
		t.Error("a full sync ensured no jump rules")
	}

	// b's endpoint changes: a partial sync rewrites b's chains only, and
	// deletes b's old endpoint chain.
	f.chains[tableNAT] = []string{"PREROUTING", kubeServicesChain, aChain, bChain, oldSEP, endpointChain("ns/a:p80", "tcp", "10.1.0.1:80")}
	f.jumps = nil
	tr.EndpointSliceUpdate(eps("ns", "b", ready("10.1.0.3")), false)
	second := syncRules(t, p, tr, tr.Apply())
	newSEP := endpointChain("ns/b:p80", "tcp", "10.1.0.3:80")
	proxytest.HasLine(t, second, ":"+bChain+" - [0:0]")
	proxytest.HasLine(t, second, ":"+newSEP+" - [0:0]")
	proxytest.HasLine(t, second, "-X "+oldSEP)
	proxytest.Lacks(t, second, ":"+aChain)
	proxytest.Lacks(t, second, "-X "+aChain)
	// KUBE-SERVICES is rewritten whole, a's jump included.
	proxytest.HasLine(t, second, fmt.Sprintf(`-A KUBE-SERVICES -m comment --comment "ns/a:p80 cluster IP" -m tcp -p tcp -d 10.96.0.31 --dport 80 -j %s`, aChain))
	if len(f.jumps) != 0 {
		t.Errorf("a partial sync ensured jump rules: %v", f.jumps)
	}

	// A failed sync makes the next one full.
	f.fail = fmt.Errorf("boom")
	tr.ServiceUpdate(a, nil)
	if err := p.Sync(tr.Services, tr.Endpoints, tr.Apply()); err == nil {
		t.Fatal("a failed restore was no error")
	}
	f.fail = nil
	third := syncRules(t, p, tr, tracker.Result{})
	proxytest.HasLine(t, third, ":"+bChain+" - [0:0]")
	proxytest.HasLine(t, third, "-X "+aChain)
}

func TestCleanup(t *testing.T) {
	f := &fakeIPT{chains: map[string][]string{
		tableNAT:    {"PREROUTING", "OUTPUT", kubeServicesChain, kubeMarkMasqChain, "KUBE-SVC-ABC", "KUBE-SEP-DEF", "CNI-HOSTPORT-DNAT"},
		tableFilter: {"INPUT", kubeServicesChain, kubeForwardChain, kubeletFirewallChain},
	}}
	if err := Cleanup(f); err != nil {
		t.Fatal(err)
	}
	if want := len(jumpRules) + len(kubeletJumpRules) + len(canaryTables); len(f.deleted) != want {
		t.Errorf("deleted %d jump rules, want %d", len(f.deleted), want)
	}
	all := strings.Join(f.restores, "")
	for _, c := range []string{kubeServicesChain, kubeMarkMasqChain, "KUBE-SVC-ABC", "KUBE-SEP-DEF", kubeForwardChain, kubeletFirewallChain} {
		if !strings.Contains(all, "-X "+c+"\n") {
			t.Errorf("%s not deleted:\n%s", c, all)
		}
	}
	for _, c := range []string{"CNI-HOSTPORT-DNAT", "PREROUTING"} {
		proxytest.Lacks(t, all, c)
	}
}
