package ipvs

import (
	"net"
	"slices"
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

type addr struct {
	ip                          string
	node                        string
	ready, serving, terminating bool
}

func ready(ip string) addr              { return addr{ip: ip, ready: true, serving: true} }
func readyOn(ip, node string) addr      { return addr{ip: ip, node: node, ready: true, serving: true} }
func notReady(ip string) addr           { return addr{ip: ip} }
func servingTerminating(ip string) addr { return addr{ip: ip, serving: true, terminating: true} }

func eps(ns, name string, protocol v1.Protocol, addrs ...addr) *discovery.EndpointSlice {
	s := proxytest.EndpointSlice(ns, name, 8080, protocol)
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, proxytest.Endpoint(a.ip, a.node, discovery.EndpointConditions{
			Ready: ptr.To(a.ready), Serving: ptr.To(a.serving), Terminating: ptr.To(a.terminating)}))
	}
	return s
}

// env is a proxier on fakes.
type env struct {
	t     *testing.T
	ipvs  *fakeIPVS
	ipset *fakeIPSet
	dummy *fakeDummy
	ipt   *fakeIPT
	p     *Proxier
	tr    *tracker.Tracker
	// fed are the services as last fed (the tracker wants the previous).
	fed map[string]*v1.Service
}

func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	_, cidr, _ := net.ParseCIDR("10.0.0.0/8")
	cfg := Config{NodeName: testNode, ClusterCIDR: cidr, NodeIPs: []net.IP{net.ParseIP("192.168.0.2")}}
	if mutate != nil {
		mutate(&cfg)
	}
	e := &env{t: t, ipvs: newFakeIPVS(), ipset: newFakeIPSet(), dummy: newFakeDummy("192.168.0.2", "172.16.0.2"), ipt: &fakeIPT{},
		tr: tracker.New(v1.IPv4Protocol, testNode), fed: map[string]*v1.Service{}}
	p, err := NewProxier(e.ipvs, e.ipset, e.dummy, e.ipt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

// sync feeds objects (a *v1.Service or *discovery.EndpointSlice; a
// removal is a removed) and syncs.
func (e *env) sync(objs ...any) {
	e.t.Helper()
	if err := e.trySync(objs...); err != nil {
		e.t.Fatal(err)
	}
}

type removed struct{ obj any }

func (e *env) trySync(objs ...any) error {
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			key := o.Namespace + "/" + o.Name
			e.tr.ServiceUpdate(e.fed[key], o)
			e.fed[key] = o
		case *discovery.EndpointSlice:
			e.tr.EndpointSliceUpdate(o, false)
		case removed:
			switch r := o.obj.(type) {
			case *v1.Service:
				e.tr.ServiceUpdate(r, nil)
				delete(e.fed, r.Namespace+"/"+r.Name)
			case *discovery.EndpointSlice:
				e.tr.EndpointSliceUpdate(r, true)
			}
		}
	}
	return e.p.Sync(e.tr.Services, e.tr.Endpoints, e.tr.Apply())
}

func (e *env) wantServers(want ...string) {
	e.t.Helper()
	slices.Sort(want)
	if diff := cmp.Diff(want, e.ipvs.keys()); diff != "" {
		e.t.Errorf("virtual servers (-want +got):\n%s", diff)
	}
}

func (e *env) wantDests(key string, want ...string) {
	e.t.Helper()
	slices.Sort(want)
	if diff := cmp.Diff(want, e.ipvs.dests(key)); diff != "" {
		e.t.Errorf("real servers of %s (-want +got):\n%s", key, diff)
	}
}

func (e *env) wantSet(set string, want ...string) {
	e.t.Helper()
	slices.Sort(want)
	if want == nil {
		want = []string{}
	}
	got := e.ipset.entries(set)
	if got == nil {
		got = []string{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		e.t.Errorf("ipset %s (-want +got):\n%s", set, diff)
	}
}

func (e *env) server(key string) VirtualServer {
	e.t.Helper()
	s, ok := e.ipvs.servers[key]
	if !ok {
		e.t.Fatalf("no virtual server %s; have %v", key, e.ipvs.keys())
	}
	return s.vs
}

func (e *env) rules() string {
	return string(e.p.LastRestore())
}

func TestClusterIPOnlyReadyEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil),
		eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1"), ready("10.1.0.2"), notReady("10.1.0.3")))

	e.wantServers("10.96.0.10:80/TCP")
	vs := e.server("10.96.0.10:80/TCP")
	if vs.Scheduler != "rr" || vs.Flags != 0 || vs.Timeout != 0 {
		t.Errorf("virtual server %+v: want rr, no flags, no timeout", vs)
	}
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.1:8080 w1", "10.1.0.2:8080 w1")
	e.wantSet(setClusterIP, "10.96.0.10,tcp:80")
	e.wantSet(setIPVSIPs, "10.96.0.10")
	if !e.dummy.exists || !e.dummy.addrs.Has("10.96.0.10") {
		t.Errorf("kube-ipvs0 (exists %v) addresses %v: want 10.96.0.10", e.dummy.exists, e.dummy.addrs)
	}
	rules := e.rules()
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ`)
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT`)
	proxytest.HasLine(t, rules, `-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000`)
	proxytest.HasLine(t, rules, `-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN`)
	proxytest.HasLine(t, rules, `-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT`)
	// No node port, no load balancer: their set rules are not written.
	proxytest.Lacks(t, rules, "KUBE-NODE-PORT-TCP")
	proxytest.Lacks(t, rules, "--match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER")
}

func TestServingTerminatingEndpointsWhenNoneReady(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil),
		eps("ns", "web", v1.ProtocolTCP, servingTerminating("10.1.0.1"), addr{ip: "10.1.0.2", terminating: true}, notReady("10.1.0.3")))
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.1:8080 w1")

	// A ready one takes over.
	e.sync(eps("ns", "web", v1.ProtocolTCP, servingTerminating("10.1.0.1"), ready("10.1.0.4")))
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.4:8080 w1")
}

func TestNoEndpointsNoRealServers(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil))
	e.wantServers("10.96.0.10:80/TCP")
	e.wantDests("10.96.0.10:80/TCP")
}

func TestNodePortOnEveryNodeAddress(t *testing.T) {
	e := newEnv(t, nil)
	np := func(proto v1.Protocol, port int32) func(*v1.Service) {
		return func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].Protocol = proto
			s.Spec.Ports[0].NodePort = port
		}
	}
	e.sync(proxytest.Service("ns", "tcp", "10.96.0.10", np(v1.ProtocolTCP, 30080)),
		eps("ns", "tcp", v1.ProtocolTCP, ready("10.1.0.1")),
		proxytest.Service("ns", "udp", "10.96.0.11", np(v1.ProtocolUDP, 30053)),
		eps("ns", "udp", v1.ProtocolUDP, ready("10.1.0.2")),
		proxytest.Service("ns", "sctp", "10.96.0.12", np(v1.ProtocolSCTP, 30099)))

	// Loopback (the fake's 127.0.0.1) is no node port address.
	e.wantServers("10.96.0.10:80/TCP", "10.96.0.11:80/UDP", "10.96.0.12:80/SCTP",
		"192.168.0.2:30080/TCP", "172.16.0.2:30080/TCP",
		"192.168.0.2:30053/UDP", "172.16.0.2:30053/UDP",
		"192.168.0.2:30099/SCTP", "172.16.0.2:30099/SCTP")
	e.wantDests("192.168.0.2:30080/TCP", "10.1.0.1:8080 w1")
	e.wantDests("172.16.0.2:30053/UDP", "10.1.0.2:8080 w1")
	e.wantSet(setNodePortTCP, "30080")
	e.wantSet(setNodePortUDP, "30053")
	e.wantSet(setNodePortSCTP, "172.16.0.2,sctp:30099", "192.168.0.2,sctp:30099")
	e.wantSet(setNodePortLocalTCP)
	// Node addresses are not bound to kube-ipvs0.
	e.wantSet(setIPVSIPs, "10.96.0.10", "10.96.0.11", "10.96.0.12")
	rules := e.rules()
	proxytest.HasLine(t, rules, `-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ`)
	proxytest.HasLine(t, rules, `-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-UDP dst -j KUBE-MARK-MASQ`)
	proxytest.HasLine(t, rules, `-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" -m set --match-set KUBE-NODE-PORT-SCTP-HASH dst,dst -j KUBE-MARK-MASQ`)
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT`)
}

func TestNodePortAddressesLimitNodePorts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NodePortAddresses = []net.IP{net.ParseIP("192.168.0.2"), net.ParseIP("127.0.0.1")} })
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}))
	e.wantServers("10.96.0.10:80/TCP", "192.168.0.2:30080/TCP")
}

func TestExternalIPs(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", func(s *v1.Service) {
		// 172.16.0.2 is a node address: served, but not bound to kube-ipvs0.
		s.Spec.ExternalIPs = []string{"203.0.113.5", "172.16.0.2"}
	}), eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1"), readyOn("10.1.0.2", testNode)))

	e.wantServers("10.96.0.10:80/TCP", "203.0.113.5:80/TCP", "172.16.0.2:80/TCP")
	e.wantDests("203.0.113.5:80/TCP", "10.1.0.1:8080 w1", "10.1.0.2:8080 w1")
	e.wantSet(setExternalIP, "172.16.0.2,tcp:80", "203.0.113.5,tcp:80")
	e.wantSet(setExternalIPLocal)
	e.wantSet(setIPVSIPs, "10.96.0.10", "203.0.113.5")
	rules := e.rules()
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -j KUBE-MARK-MASQ`)
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`)
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -m addrtype --dst-type LOCAL -j ACCEPT`)

	// externalTrafficPolicy Local: the local set (not masqueraded), this
	// node's endpoints only.
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{"203.0.113.5"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}))
	e.wantServers("10.96.0.10:80/TCP", "203.0.113.5:80/TCP")
	e.wantDests("203.0.113.5:80/TCP", "10.1.0.2:8080 w1")
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.1:8080 w1", "10.1.0.2:8080 w1")
	e.wantSet(setExternalIP)
	e.wantSet(setExternalIPLocal, "203.0.113.5,tcp:80")
	proxytest.Lacks(t, e.rules(), "KUBE-EXTERNAL-IP dst,dst -j KUBE-MARK-MASQ")
}

func lbService(mutate func(*v1.Service)) *v1.Service {
	return proxytest.Service("ns", "lb", "10.96.0.20", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30090
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.7"}}
		if mutate != nil {
			mutate(s)
		}
	})
}

func TestLoadBalancer(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(lbService(nil), eps("ns", "lb", v1.ProtocolTCP, ready("10.1.0.1")))
	e.wantServers("10.96.0.20:80/TCP", "198.51.100.7:80/TCP", "192.168.0.2:30090/TCP", "172.16.0.2:30090/TCP")
	e.wantDests("198.51.100.7:80/TCP", "10.1.0.1:8080 w1")
	e.wantSet(setLoadBalancer, "198.51.100.7,tcp:80")
	e.wantSet(setLoadBalancerLocal)
	e.wantSet(setLoadBalancerFW)
	e.wantSet(setIPVSIPs, "10.96.0.20", "198.51.100.7")
	rules := e.rules()
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER`)
	proxytest.HasLine(t, rules, `-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ`)
	proxytest.Lacks(t, rules, "KUBE-LOAD-BALANCER-LOCAL")
}

func TestLoadBalancerExternalTrafficPolicyLocal(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(lbService(func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32000
	}), eps("ns", "lb", v1.ProtocolTCP, readyOn("10.1.0.1", "other"), readyOn("10.1.0.2", testNode)))

	for _, key := range []string{"198.51.100.7:80/TCP", "192.168.0.2:30090/TCP", "172.16.0.2:30090/TCP"} {
		e.wantDests(key, "10.1.0.2:8080 w1")
	}
	// The cluster IP is for every endpoint.
	e.wantDests("10.96.0.20:80/TCP", "10.1.0.1:8080 w1", "10.1.0.2:8080 w1")
	e.wantSet(setLoadBalancerLocal, "198.51.100.7,tcp:80")
	e.wantSet(setNodePortLocalTCP, "30090")
	e.wantSet(setNodePortTCP, "30090")
	e.wantSet(setHealthCheckNodePort, "32000")
	// The local endpoint's hairpin.
	e.wantSet(setLoopBack, "10.1.0.2,tcp:8080,10.1.0.2")
	rules := e.rules()
	proxytest.HasLine(t, rules, `-A KUBE-LOAD-BALANCER -m comment --comment "Kubernetes service load balancer ip + port with externalTrafficPolicy=local" -m set --match-set KUBE-LOAD-BALANCER-LOCAL dst,dst -j RETURN`)
	proxytest.HasLine(t, rules, `-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port with externalTrafficPolicy=local" -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN`)
	proxytest.HasLine(t, rules, `-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE`)
	proxytest.HasLine(t, rules, `-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT`)
	// The local RETURN comes before the masquerade.
	if strings.Index(rules, "KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN") > strings.Index(rules, "KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ") {
		t.Errorf("local node port rule after the masquerade one:\n%s", rules)
	}

	// No local endpoint left: as upstream, the cluster's endpoints (local
	// pods still reach the service).
	e.sync(eps("ns", "lb", v1.ProtocolTCP, readyOn("10.1.0.1", "other")))
	e.wantDests("198.51.100.7:80/TCP", "10.1.0.1:8080 w1")
	e.wantSet(setLoopBack)
}

func TestLoadBalancerSourceRanges(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(lbService(func(s *v1.Service) {
		s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24"}
	}), eps("ns", "lb", v1.ProtocolTCP, ready("10.1.0.1")))
	e.wantSet(setLoadBalancerFW, "198.51.100.7,tcp:80")
	e.wantSet(setLoadBalancerSrcCIDR, "198.51.100.7,tcp:80,203.0.113.0/24")
	e.wantSet(setLoadBalancerSrcIP)
	rules := e.rules()
	proxytest.HasLine(t, rules, `-A KUBE-PROXY-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL`)
	proxytest.HasLine(t, rules, `-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN`)
	proxytest.HasLine(t, rules, `-A KUBE-SOURCE-RANGES-FIREWALL -j DROP`)
	// The node (192.168.0.2) is outside the ranges: it may not use the VIP.
	proxytest.HasLine(t, rules, `-A KUBE-IPVS-OUT-FILTER -s 198.51.100.7 -m ipvs --vaddr 198.51.100.7 --vproto tcp --vport 80 -j DROP`)

	// A range with the node: the VIP as source is allowed instead.
	e.sync(lbService(func(s *v1.Service) {
		s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24", "192.168.0.0/16"}
	}))
	e.wantSet(setLoadBalancerSrcCIDR, "198.51.100.7,tcp:80,203.0.113.0/24", "198.51.100.7,tcp:80,192.168.0.0/16")
	e.wantSet(setLoadBalancerSrcIP, "198.51.100.7,tcp:80,198.51.100.7")
	proxytest.Lacks(t, e.rules(), "KUBE-IPVS-OUT-FILTER -s")
}

func TestSessionAffinityIsPersistence(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(proxytest.Service("ns", "sticky", "10.96.0.10", func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.ExternalIPs = []string{"203.0.113.5"}
	}), proxytest.Service("ns", "timed", "10.96.0.11", func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	}), eps("ns", "sticky", v1.ProtocolTCP, ready("10.1.0.1")))

	for _, key := range []string{"10.96.0.10:80/TCP", "203.0.113.5:80/TCP"} {
		if vs := e.server(key); vs.Flags != FlagPersistent || vs.Timeout != 10800 {
			t.Errorf("%s: flags %#x timeout %d, want persistent for 10800s", key, vs.Flags, vs.Timeout)
		}
	}
	if vs := e.server("10.96.0.11:80/TCP"); vs.Flags != FlagPersistent || vs.Timeout != 60 {
		t.Errorf("flags %#x timeout %d, want persistent for 60s", vs.Flags, vs.Timeout)
	}

	// Affinity off: the virtual server is updated in place, its real
	// servers kept.
	e.ipvs.takeCalls()
	e.sync(proxytest.Service("ns", "sticky", "10.96.0.10", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.5"} }))
	if vs := e.server("10.96.0.10:80/TCP"); vs.Flags != 0 || vs.Timeout != 0 {
		t.Errorf("flags %#x timeout %d after affinity off, want none", vs.Flags, vs.Timeout)
	}
	calls := strings.Join(e.ipvs.takeCalls(), "\n")
	if !strings.Contains(calls, "update-vs 10.96.0.10:80/TCP") || strings.Contains(calls, "delete-vs") || strings.Contains(calls, "add-rs") {
		t.Errorf("calls:\n%s\nwant an update, no delete, no re-added real servers", calls)
	}
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.1:8080 w1")
}

func TestScheduler(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Scheduler = "lc" })
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil))
	if vs := e.server("10.96.0.10:80/TCP"); vs.Scheduler != "lc" {
		t.Errorf("scheduler %q, want lc", vs.Scheduler)
	}
	e = newEnv(t, func(c *Config) { c.Scheduler = "mh" })
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil))
	if vs := e.server("10.96.0.10:80/TCP"); vs.Scheduler != "mh" || vs.Flags != FlagSourceHash {
		t.Errorf("scheduler %q flags %#x, want mh with the source-hash flag", vs.Scheduler, vs.Flags)
	}
	if _, err := NewProxier(newFakeIPVS(), newFakeIPSet(), newFakeDummy(), &fakeIPT{}, Config{Scheduler: "fastest"}); err == nil || !strings.Contains(err.Error(), `unknown IPVS scheduler "fastest"`) {
		t.Errorf("unknown scheduler: err %v", err)
	}
	if _, err := NewProxier(nil, newFakeIPSet(), newFakeDummy(), &fakeIPT{}, Config{}); err == nil {
		t.Error("no IPVS handle: no error")
	}
}

func TestInternalTrafficPolicyLocal(t *testing.T) {
	e := newEnv(t, nil)
	local := func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) }
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", local),
		eps("ns", "web", v1.ProtocolTCP, readyOn("10.1.0.1", "other"), readyOn("10.1.0.2", testNode)))
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.2:8080 w1")

	// No local endpoint: nothing (the traffic is dropped).
	e.sync(eps("ns", "web", v1.ProtocolTCP, readyOn("10.1.0.1", "other")))
	e.wantDests("10.96.0.10:80/TCP")
}

func TestEndpointChangeTouchesOnlyThatService(t *testing.T) {
	e := newEnv(t, nil)
	np := func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30080 }
	e.sync(proxytest.Service("ns", "a", "10.96.0.10", np), eps("ns", "a", v1.ProtocolTCP, ready("10.1.0.1")),
		proxytest.Service("ns", "b", "10.96.0.11", nil), eps("ns", "b", v1.ProtocolTCP, ready("10.2.0.1")))
	e.ipvs.takeCalls()
	lists, addrLists := e.ipset.lists, e.dummy.lists

	e.sync(eps("ns", "a", v1.ProtocolTCP, ready("10.1.0.1"), ready("10.1.0.9")))
	calls := e.ipvs.takeCalls()
	want := []string{
		"list",
		"list-rs 10.96.0.10:80/TCP", "add-rs 10.96.0.10:80/TCP 10.1.0.9:8080",
		"list-rs 172.16.0.2:30080/TCP", "add-rs 172.16.0.2:30080/TCP 10.1.0.9:8080",
		"list-rs 192.168.0.2:30080/TCP", "add-rs 192.168.0.2:30080/TCP 10.1.0.9:8080",
	}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("IPVS calls of a partial sync (-want +got):\n%s", diff)
	}
	// Nor are the sets and addresses read back from the kernel.
	if e.ipset.lists != lists || e.dummy.lists != addrLists {
		t.Errorf("a partial sync listed ipsets (%d -> %d) or addresses (%d -> %d)", lists, e.ipset.lists, addrLists, e.dummy.lists)
	}
	e.wantDests("10.96.0.11:80/TCP", "10.2.0.1:8080 w1")

	// A full sync reads everything again and finds nothing to do.
	e.p.ForceFullSync()
	e.sync()
	for _, c := range e.ipvs.takeCalls() {
		if !strings.HasPrefix(c, "list") {
			t.Errorf("full sync with nothing changed made a change: %s", c)
		}
	}
	if e.ipset.lists == lists {
		t.Error("a full sync did not list the ipsets")
	}
}

func TestRemovedServiceIsGone(t *testing.T) {
	e := newEnv(t, nil)
	gone := proxytest.Service("ns", "gone", "10.96.0.10", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"203.0.113.5"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.7"}}
	})
	goneEps := eps("ns", "gone", v1.ProtocolTCP, readyOn("10.1.0.1", testNode))
	e.sync(gone, goneEps, proxytest.Service("ns", "kept", "10.96.0.11", nil))
	if len(e.ipvs.keys()) != 6 {
		t.Fatalf("virtual servers %v, want 6", e.ipvs.keys())
	}

	e.sync(removed{gone}, removed{goneEps})
	e.wantServers("10.96.0.11:80/TCP")
	for _, s := range Sets {
		want := []string{}
		switch s.Name {
		case setClusterIP:
			want = []string{"10.96.0.11,tcp:80"}
		case setIPVSIPs:
			want = []string{"10.96.0.11"}
		}
		e.wantSet(s.Name, want...)
	}
	if diff := cmp.Diff([]string{"10.96.0.11"}, sortedAddrs(e.dummy)); diff != "" {
		t.Errorf("kube-ipvs0 addresses (-want +got):\n%s", diff)
	}
}

func sortedAddrs(d *fakeDummy) []string {
	out := d.addrs.UnsortedList()
	slices.Sort(out)
	return out
}

func TestGracefulTerminationOfTCPRealServers(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil), eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1"), ready("10.1.0.2")))
	key := "10.96.0.10:80/TCP"
	// 10.1.0.2 has connections when it is removed.
	e.ipvs.servers[key].dests["10.1.0.2:8080"].ActiveConn = 2

	e.sync(eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1")))
	e.wantDests(key, "10.1.0.1:8080 w1", "10.1.0.2:8080 w0")

	// Nothing changed, connections still there: kept at weight 0.
	e.sync()
	e.wantDests(key, "10.1.0.1:8080 w1", "10.1.0.2:8080 w0")

	// Connections ended: the next sync (periodic, nothing changed) deletes it.
	e.ipvs.servers[key].dests["10.1.0.2:8080"].ActiveConn = 0
	e.ipvs.servers[key].dests["10.1.0.2:8080"].InactiveConn = 0
	e.sync()
	e.wantDests(key, "10.1.0.1:8080 w1")
	if e.p.draining.Len() != 0 {
		t.Errorf("still draining: %v", e.p.draining)
	}

	// A draining real server whose endpoint comes back takes connections again.
	e.sync(eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1"), ready("10.1.0.3")))
	e.ipvs.servers[key].dests["10.1.0.3:8080"].InactiveConn = 1
	e.sync(eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1")))
	e.wantDests(key, "10.1.0.1:8080 w1", "10.1.0.3:8080 w0")
	e.sync(eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1"), ready("10.1.0.3")))
	e.wantDests(key, "10.1.0.1:8080 w1", "10.1.0.3:8080 w1")
}

func TestUDPRealServersGoAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	dns := func(s *v1.Service) { s.Spec.Ports[0].Protocol = v1.ProtocolUDP }
	e.sync(proxytest.Service("ns", "dns", "10.96.0.10", dns), eps("ns", "dns", v1.ProtocolUDP, ready("10.1.0.1"), ready("10.1.0.2")))
	key := "10.96.0.10:80/UDP"
	e.ipvs.servers[key].dests["10.1.0.2:8080"].InactiveConn = 5
	e.sync(eps("ns", "dns", v1.ProtocolUDP, ready("10.1.0.1")))
	e.wantDests(key, "10.1.0.1:8080 w1")
}

func TestStaleVirtualServersDeletedButExcluded(t *testing.T) {
	_, excluded, _ := net.ParseCIDR("192.0.2.0/24")
	e := newEnv(t, func(c *Config) { c.ExcludeCIDRs = []*net.IPNet{excluded} })
	// Left by an earlier run: a stale service, one in an excluded range,
	// and a wanted one with a drained real server.
	for _, vs := range []*VirtualServer{
		{Address: net.ParseIP("10.96.0.99").To4(), Protocol: "TCP", Port: 80, Scheduler: "rr"},
		{Address: net.ParseIP("192.0.2.1").To4(), Protocol: "TCP", Port: 80, Scheduler: "rr"},
		{Address: net.ParseIP("10.96.0.10").To4(), Protocol: "TCP", Port: 80, Scheduler: "wrr"},
	} {
		if err := e.ipvs.AddVirtualServer(vs); err != nil {
			t.Fatal(err)
		}
	}
	vs := e.ipvs.servers["10.96.0.10:80/TCP"].vs
	_ = e.ipvs.AddRealServer(&vs, &RealServer{Address: net.ParseIP("10.1.0.1").To4(), Port: 8080, Weight: 0})
	_ = e.ipvs.AddRealServer(&vs, &RealServer{Address: net.ParseIP("10.1.0.7").To4(), Port: 8080, Weight: 1})
	e.dummy.exists = true
	e.dummy.addrs.Insert("10.96.0.99")

	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil), eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1")))
	e.wantServers("10.96.0.10:80/TCP", "192.0.2.1:80/TCP")
	if vs := e.server("10.96.0.10:80/TCP"); vs.Scheduler != "rr" {
		t.Errorf("scheduler %q, want rr (updated)", vs.Scheduler)
	}
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.1:8080 w1")
	if diff := cmp.Diff([]string{"10.96.0.10"}, sortedAddrs(e.dummy)); diff != "" {
		t.Errorf("kube-ipvs0 addresses (-want +got):\n%s", diff)
	}
}

func TestFailureMakesTheNextSyncFull(t *testing.T) {
	e := newEnv(t, nil)
	e.ipvs.failAdd = "10.96.0.11:80/TCP"
	err := e.trySync(proxytest.Service("ns", "a", "10.96.0.10", nil), eps("ns", "a", v1.ProtocolTCP, ready("10.1.0.1")),
		proxytest.Service("ns", "b", "10.96.0.11", nil), eps("ns", "b", v1.ProtocolTCP, ready("10.2.0.1")))
	if err == nil || !strings.Contains(err.Error(), "adding virtual server 10.96.0.11:80/TCP") {
		t.Fatalf("err %v, want the failed add", err)
	}
	// The rest was done.
	e.wantServers("10.96.0.10:80/TCP")
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.1:8080 w1")

	e.ipvs.failAdd = ""
	e.sync()
	e.wantServers("10.96.0.10:80/TCP", "10.96.0.11:80/TCP")
	e.wantDests("10.96.0.11:80/TCP", "10.2.0.1:8080 w1")
}

func TestRestoreFailureIsAnError(t *testing.T) {
	e := newEnv(t, nil)
	e.ipt.fail = errFake
	if err := e.trySync(proxytest.Service("ns", "a", "10.96.0.10", nil)); err == nil {
		t.Fatal("no error from a failed iptables-restore")
	}
}

type fakeError string

func (e fakeError) Error() string { return string(e) }

const errFake = fakeError("injected")

func TestJumpsAndChains(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClusterCIDR = nil; c.MasqueradeBit = 13 })
	e.sync(proxytest.Service("ns", "a", "10.96.0.10", nil))
	want := []string{
		"nat OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES",
		"nat PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES",
		"nat POSTROUTING -m comment --comment kubernetes postrouting rules -j KUBE-POSTROUTING",
		"filter FORWARD -m comment --comment kubernetes forwarding rules -j KUBE-FORWARD",
		"filter INPUT -m comment --comment kubernetes health check rules -j KUBE-NODE-PORT",
		"filter INPUT -m comment --comment kube-proxy firewall rules -j KUBE-PROXY-FIREWALL",
		"filter FORWARD -m comment --comment kube-proxy firewall rules -j KUBE-PROXY-FIREWALL",
		"filter INPUT -m comment --comment kubernetes ipvs access filter -j KUBE-IPVS-FILTER",
		"filter OUTPUT -m comment --comment kubernetes ipvs access filter -j KUBE-IPVS-OUT-FILTER",
	}
	if diff := cmp.Diff(want, e.ipt.jumps); diff != "" {
		t.Errorf("jumps (-want +got):\n%s", diff)
	}
	rules := e.rules()
	for _, c := range append(append([]string{}, natChains...), filterChains...) {
		proxytest.HasLine(t, rules, ":"+c+" - [0:0]")
	}
	// Without a cluster CIDR, the node's own traffic (from a service
	// address) is masqueraded.
	proxytest.HasLine(t, rules, `-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ`)
	proxytest.HasLine(t, rules, `-A KUBE-MARK-MASQ -j MARK --or-mark 0x2000`)
	// Jumps are ensured on full syncs only.
	e.sync(proxytest.Service("ns", "b", "10.96.0.11", nil))
	if len(e.ipt.jumps) != len(want) {
		t.Errorf("a partial sync ensured the jumps again")
	}

	e = newEnv(t, func(c *Config) { c.MasqueradeAll = true })
	e.sync(proxytest.Service("ns", "a", "10.96.0.10", nil))
	proxytest.HasLine(t, e.rules(), `-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ`)
}

func TestRestartResetsWeights(t *testing.T) {
	e := newEnv(t, nil)
	vs := &VirtualServer{Address: net.ParseIP("10.96.0.10").To4(), Protocol: "TCP", Port: 80, Scheduler: "rr"}
	_ = e.ipvs.AddVirtualServer(vs)
	_ = e.ipvs.AddRealServer(vs, &RealServer{Address: net.ParseIP("10.1.0.1").To4(), Port: 8080, Weight: 0})
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil), eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1")))
	e.wantDests("10.96.0.10:80/TCP", "10.1.0.1:8080 w1")
}

func TestParseMembers(t *testing.T) {
	out := `Name: KUBE-CLUSTER-IP
Type: hash:ip,port
Revision: 7
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1
Size in memory: 264
References: 2
Number of entries: 2
Members:
10.96.0.10,tcp:80
10.96.0.11,udp:53 timeout 5
`
	if diff := cmp.Diff([]string{"10.96.0.10,tcp:80", "10.96.0.11,udp:53"}, parseMembers(out)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if got := parseMembers("Name: X\nMembers:\n"); len(got) != 0 {
		t.Errorf("empty set: %v", got)
	}
}

func TestApplyRejectsBadEntries(t *testing.T) {
	c := &ipsetCLI{path: "/nonexistent"}
	if err := c.Apply([]SetChange{{Set: "KUBE-CLUSTER-IP", Entry: "1.2.3.4,tcp:80\nflush"}}); err == nil {
		t.Error("an entry with a newline was accepted")
	}
}

func TestChangedPortReplacesVirtualServer(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", nil), eps("ns", "web", v1.ProtocolTCP, ready("10.1.0.1")))
	e.sync(proxytest.Service("ns", "web", "10.96.0.10", func(s *v1.Service) { s.Spec.Ports[0].Port = 81 }))
	e.wantServers("10.96.0.10:81/TCP")
	e.wantDests("10.96.0.10:81/TCP", "10.1.0.1:8080 w1")
	e.wantSet(setClusterIP, "10.96.0.10,tcp:81")
}

func TestHostSourceRangeEntry(t *testing.T) {
	_, host, _ := net.ParseCIDR("192.0.2.9/32")
	_, wide, _ := net.ParseCIDR("192.0.2.0/24")
	ip := net.ParseIP("198.51.100.7")
	if got := entryIPPortNet(ip, "tcp", 80, host); got != "198.51.100.7,tcp:80,192.0.2.9" {
		t.Errorf("host range entry %q: ipset prints no /32", got)
	}
	if got := entryIPPortNet(ip, "tcp", 80, wide); got != "198.51.100.7,tcp:80,192.0.2.0/24" {
		t.Errorf("range entry %q", got)
	}
}
