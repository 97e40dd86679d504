package networkpolicy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func testPod(ns, name, node, ip string, lbls map[string]string, ports ...v1.ContainerPort) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "c", Ports: ports}}},
		Status:     v1.PodStatus{Phase: v1.PodRunning, PodIP: ip},
	}
}

func testNS(name string, lbls map[string]string) *v1.Namespace {
	return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func policy(ns, name string, sel map[string]string, mutate func(*networkingv1.NetworkPolicySpec)) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}}}
	if mutate != nil {
		mutate(&np.Spec)
	}
	return np
}

func numPort(proto v1.Protocol, p int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: ptr.To(intstr.FromInt32(p))}
}

func namedNPPort(proto v1.Protocol, name string) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: ptr.To(intstr.FromString(name))}
}

// cluster: namespaces a (team=x) and b (team=y); node n1 holds a/web and
// a/db, n2 holds a/client and b/client; b/host is hostNetwork.
func cluster(policies ...*networkingv1.NetworkPolicy) clusterState {
	host := testPod("b", "host", "n1", "192.168.0.1", map[string]string{"app": "client"})
	host.Spec.HostNetwork = true
	done := testPod("a", "done", "n1", "10.0.0.9", map[string]string{"app": "web"})
	done.Status.Phase = v1.PodSucceeded
	return clusterState{
		Namespaces: []*v1.Namespace{testNS("a", map[string]string{"team": "x"}), testNS("b", map[string]string{"team": "y"})},
		Pods: []*v1.Pod{
			testPod("a", "web", "n1", "10.0.0.1", map[string]string{"app": "web"},
				v1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP},
				v1.ContainerPort{Name: "dns", ContainerPort: 5353, Protocol: v1.ProtocolUDP}),
			testPod("a", "db", "n1", "10.0.0.2", map[string]string{"app": "db"},
				v1.ContainerPort{Name: "http", ContainerPort: 9090, Protocol: v1.ProtocolTCP}),
			testPod("a", "client", "n2", "10.0.1.1", map[string]string{"app": "client"}),
			testPod("b", "client", "n2", "10.0.1.2", map[string]string{"app": "client"}),
			host, done,
		},
		Policies: policies,
	}
}

func rulesOf(t *testing.T, st clusterState, name string) podRules {
	t.Helper()
	for _, r := range computeRules(st, "n1") {
		if r.Namespace+"/"+r.Name == name {
			return r
		}
	}
	t.Fatalf("no rules for %s", name)
	return podRules{}
}

func TestOnlyThisNodesPodsWithAddresses(t *testing.T) {
	var names []string
	for _, r := range computeRules(cluster(), "n1") {
		names = append(names, r.Namespace+"/"+r.Name)
		if r.Ingress != nil || r.Egress != nil {
			t.Errorf("%s isolated without policies", r.Name)
		}
	}
	if want := []string{"a/db", "a/web"}; !reflect.DeepEqual(names, want) {
		t.Errorf("local pods %v, want %v (hostNetwork and finished pods are not subject to policies)", names, want)
	}
}

func TestPolicyTypesDefaulting(t *testing.T) {
	// No policyTypes, no egress rules: ingress only.
	r := rulesOf(t, cluster(policy("a", "p", nil, nil)), "a/web")
	if r.Ingress == nil || len(r.Ingress) != 0 || r.Egress != nil {
		t.Errorf("empty policy: ingress %v egress %v, want deny ingress only", r.Ingress, r.Egress)
	}
	// Egress rules without policyTypes: both.
	r = rulesOf(t, cluster(policy("a", "p", nil, func(s *networkingv1.NetworkPolicySpec) {
		s.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	})), "a/web")
	if r.Ingress == nil || len(r.Ingress) != 0 || len(r.Egress) != 1 || r.Egress[0].Peers != nil || r.Egress[0].Ports != nil {
		t.Errorf("egress rule: ingress %v egress %v, want deny ingress, allow all egress", r.Ingress, r.Egress)
	}
	// Explicit Egress only: default deny egress, ingress open.
	r = rulesOf(t, cluster(policy("a", "p", nil, func(s *networkingv1.NetworkPolicySpec) {
		s.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	})), "a/web")
	if r.Ingress != nil || r.Egress == nil || len(r.Egress) != 0 {
		t.Errorf("egress type: ingress %v egress %v, want deny egress only", r.Ingress, r.Egress)
	}
}

func TestPeers(t *testing.T) {
	from := func(peers ...networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
		return policy("a", "p", map[string]string{"app": "web"}, func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: peers}}
		})
	}
	client := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}
	teamY := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "y"}}
	all := &metav1.LabelSelector{}
	for _, tc := range []struct {
		name  string
		np    *networkingv1.NetworkPolicy
		peers []peer
	}{
		{"podSelector: own namespace only", from(networkingv1.NetworkPolicyPeer{PodSelector: client}), []peer{{CIDR: "10.0.1.1/32"}}},
		{"namespaceSelector: every pod there", from(networkingv1.NetworkPolicyPeer{NamespaceSelector: teamY}), []peer{{CIDR: "10.0.1.2/32"}}},
		{"both: pods in those namespaces", from(networkingv1.NetworkPolicyPeer{PodSelector: client, NamespaceSelector: all}),
			[]peer{{CIDR: "10.0.1.1/32"}, {CIDR: "10.0.1.2/32"}}},
		{"empty podSelector: all of own namespace", from(networkingv1.NetworkPolicyPeer{PodSelector: all}),
			[]peer{{CIDR: "10.0.1.1/32"}, {CIDR: "10.0.0.2/32"}, {CIDR: "10.0.0.1/32"}}},
		{"ipBlock with except, normalized", from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.7/16", Except: []string{"10.0.1.0/24"}}}),
			[]peer{{CIDR: "10.0.0.0/16", Except: []string{"10.0.1.0/24"}}}},
		{"IPv6 ipBlock ignored", from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "fd00::/64"}}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rulesOf(t, cluster(tc.np), "a/web")
			var got []peer
			for _, a := range r.Ingress {
				got = append(got, a.Peers...)
			}
			if !reflect.DeepEqual(got, tc.peers) {
				t.Errorf("peers %v, want %v", got, tc.peers)
			}
			if tc.peers == nil && len(r.Ingress) != 0 {
				t.Errorf("a rule selecting nobody allows %v, want nothing", r.Ingress)
			}
		})
	}
	// A policy for other pods leaves db open.
	if r := rulesOf(t, cluster(from(networkingv1.NetworkPolicyPeer{PodSelector: client})), "a/db"); r.Ingress != nil {
		t.Errorf("db isolated by a policy selecting web: %v", r.Ingress)
	}
}

func TestPorts(t *testing.T) {
	np := policy("a", "p", nil, func(s *networkingv1.NetworkPolicySpec) {
		rng := numPort(v1.ProtocolTCP, 7000)
		rng.EndPort = ptr.To(int32(7010))
		s.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{
			{Port: ptr.To(intstr.FromInt32(80))}, // protocol defaults to TCP
			numPort(v1.ProtocolSCTP, 9),
			rng,
			{Protocol: ptr.To(v1.ProtocolUDP)}, // every UDP port
			namedNPPort(v1.ProtocolTCP, "http"),
			namedNPPort(v1.ProtocolTCP, "dns"), // dns is UDP: no match
		}}}
	})
	st := cluster(np)
	web := rulesOf(t, st, "a/web")
	want := []allow{
		{Policy: "a/p", Ports: []port{{"tcp", 80, 0}, {"sctp", 9, 0}, {"tcp", 7000, 7010}, {"udp", 0, 0}}},
		{Policy: "a/p", Ports: []port{{"tcp", 8080, 0}}}, // named: web's own number
	}
	if !reflect.DeepEqual(web.Ingress, want) {
		t.Errorf("web ingress\n%+v, want\n%+v", web.Ingress, want)
	}
	if db := rulesOf(t, st, "a/db"); !reflect.DeepEqual(db.Ingress[1].Ports, []port{{"tcp", 9090, 0}}) {
		t.Errorf("db's named port resolved to %v, want its own 9090", db.Ingress[1].Ports)
	}

	// Egress with a named port: each destination pod with its own number.
	eg := policy("a", "e", map[string]string{"app": "db"}, func(s *networkingv1.NetworkPolicySpec) {
		s.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		s.Egress = []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{namedNPPort(v1.ProtocolTCP, "http")}}}
	})
	db := rulesOf(t, cluster(eg), "a/db")
	wantE := []allow{
		{Policy: "a/e", Peers: []peer{{CIDR: "10.0.0.2/32"}}, Ports: []port{{"tcp", 9090, 0}}},
		{Policy: "a/e", Peers: []peer{{CIDR: "10.0.0.1/32"}}, Ports: []port{{"tcp", 8080, 0}}},
	}
	if !reflect.DeepEqual(db.Egress, wantE) {
		t.Errorf("db egress\n%+v, want\n%+v", db.Egress, wantE)
	}
}

func TestPoliciesUnion(t *testing.T) {
	st := cluster(
		policy("a", "deny", nil, nil),
		policy("a", "web", map[string]string{"app": "web"}, func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{numPort(v1.ProtocolTCP, 80)}}}
		}),
		policy("b", "elsewhere", nil, func(s *networkingv1.NetworkPolicySpec) { s.Ingress = []networkingv1.NetworkPolicyIngressRule{{}} }),
	)
	web := rulesOf(t, st, "a/web")
	if len(web.Ingress) != 1 || web.Ingress[0].Policy != "a/web" {
		t.Errorf("web: %+v, want the one allow of a/web (deny adds none, b's policy does not apply)", web.Ingress)
	}
	if db := rulesOf(t, st, "a/db"); db.Ingress == nil || len(db.Ingress) != 0 {
		t.Errorf("db: %+v, want default deny", db.Ingress)
	}
}

func TestRender(t *testing.T) {
	st := cluster(
		policy("a", "p", map[string]string{"app": "web"}, func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress = []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "172.16.0.0/12", Except: []string{"172.16.5.0/24"}}},
				},
				Ports: []networkingv1.NetworkPolicyPort{numPort(v1.ProtocolTCP, 80), numPort(v1.ProtocolUDP, 53)},
			}}
			s.Egress = []networkingv1.NetworkPolicyEgressRule{}
			s.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
		}),
	)
	rs := render(computeRules(st, "n1"), 0x40000)
	data := string(restoreInput(rs, []string{"SKIFF-NWPLCY-A-OLD", "OTHER"}))
	for _, want := range []string{
		"-A SKIFF-NWPLCY -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n",
		"-A SKIFF-NWPLCY -s 10.0.0.1/32 -m comment --comment \"a/web egress\" -j " + hashName("E", "a", "web", "10.0.0.1") + "\n",
		"-A SKIFF-NWPLCY -d 10.0.0.1/32 -m comment --comment \"a/web ingress\" -j " + hashName("I", "a", "web", "10.0.0.1") + "\n",
		"-p tcp -m tcp --dport 80 -j SKIFF-NWPLCY-P-",
		"-p udp -m udp --dport 53 -j SKIFF-NWPLCY-P-",
		" -s 10.0.1.1/32 -j MARK --set-xmark 0x40000/0x40000\n",
		" -s 172.16.5.0/24 -j RETURN\n",
		" -s 172.16.0.0/12 -j MARK --set-xmark 0x40000/0x40000\n",
		"-m mark --mark 0x40000/0x40000 -j RETURN\n",
		"-m comment --comment \"a/web egress: no policy allows\" -j DROP\n",
		":SKIFF-NWPLCY-A-OLD - [0:0]\n",
		"-X SKIFF-NWPLCY-A-OLD\n",
	} {
		if !strings.Contains(data, want) {
			t.Errorf("missing %q in\n%s", want, data)
		}
	}
	if strings.Contains(data, "OTHER") {
		t.Errorf("touches a chain that is not its own:\n%s", data)
	}
	if strings.Contains(data, "10.0.0.2") {
		t.Errorf("db has no policy but appears:\n%s", data)
	}
	for _, c := range rs.chains {
		if len(c) > 28 {
			t.Errorf("chain name %q longer than iptables allows", c)
		}
	}
	// Deterministic: the same state renders the same bytes.
	if again := string(restoreInput(render(computeRules(st, "n1"), 0x40000), []string{"SKIFF-NWPLCY-A-OLD", "OTHER"})); again != data {
		t.Error("rendering is not deterministic")
	}
}

// BenchmarkComputeAndRender: 50 namespaces of 40 pods (2000, 200 on this
// node), a default deny and an allow-from-namespace per namespace.
func BenchmarkComputeAndRender(b *testing.B) {
	st := benchState()
	var lines int
	for b.Loop() {
		data := restoreInput(render(computeRules(st, "n1"), 0x40000), nil)
		lines = strings.Count(string(data), "\n")
	}
	b.ReportMetric(float64(lines), "lines")
}

func benchState() clusterState {
	var st clusterState
	for n := range 50 {
		ns := fmt.Sprintf("ns%d", n)
		st.Namespaces = append(st.Namespaces, testNS(ns, map[string]string{"team": fmt.Sprint(n % 5)}))
		for i := range 40 {
			node := "n2"
			if i%10 == 0 {
				node = "n1"
			}
			st.Pods = append(st.Pods, testPod(ns, fmt.Sprintf("p%d", i), node, fmt.Sprintf("10.%d.%d.%d", 1+n/250, n%250, 1+i),
				map[string]string{"app": fmt.Sprint(i % 4)}, v1.ContainerPort{Name: "http", ContainerPort: 8080}))
		}
		st.Policies = append(st.Policies, policy(ns, "deny", nil, nil),
			policy(ns, "allow", map[string]string{"app": "0"}, func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress = []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "1"}}}},
					Ports: []networkingv1.NetworkPolicyPort{namedNPPort(v1.ProtocolTCP, "http"), numPort(v1.ProtocolTCP, 80)},
				}}
			}))
	}
	return st
}
