package networkpolicy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/test/integration"
	"github.com/skiff-dev/skiff/test/netnstest"
)

// The end-to-end test: a "node" network namespace with a Linux bridge,
// "pods" (namespaces with a veth on the bridge), and a "remote" namespace
// routed to the node that holds another node's pod and two outside
// addresses. A real API server holds the Pods and NetworkPolicies; Run's
// rules go to the node namespace's iptables through wrappers on PATH.

type testPodNet struct {
	name, ns, ip string // netns and address
}

type testTopology struct {
	node, remote string
	subnet       string // 10.78.N: the node's pod subnet
	farIP        string // another node's pod, in remote
	outsideIPs   []string
	outsideNet   string // holds outsideIPs and the node's other address
	pods         map[string]*testPodNet
}

func newTopology(t *testing.T, podNames ...string) *testTopology {
	netnstest.RequireRoot(t, "creates network namespaces", "iptables", "iptables-restore", "iptables-save", "sysctl")
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		t.Skip("needs br_netfilter (/proc/sys/net/bridge/bridge-nf-call-iptables)")
	}
	id := os.Getpid() % 100000
	n := id % 250
	tp := &testTopology{
		node: fmt.Sprintf("np-node-%d", id), remote: fmt.Sprintf("np-rem-%d", id),
		subnet: fmt.Sprintf("10.78.%d", n), farIP: fmt.Sprintf("10.80.%d.5", n),
		outsideIPs: []string{fmt.Sprintf("10.79.%d.2", n), fmt.Sprintf("10.79.%d.3", n)},
		outsideNet: fmt.Sprintf("10.79.%d.0/24", n),
		pods:       map[string]*testPodNet{},
	}
	netnstest.Add(t, tp.node)
	netnstest.Add(t, tp.remote)
	br := fmt.Sprintf("npbr%d", id)
	netnstest.In(t, tp.node, "ip", "link", "add", br, "type", "bridge")
	netnstest.In(t, tp.node, "ip", "addr", "add", tp.subnet+".1/24", "dev", br)
	netnstest.In(t, tp.node, "ip", "link", "set", br, "up")
	netnstest.In(t, tp.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for i, name := range podNames {
		p := &testPodNet{name: name, ns: fmt.Sprintf("np-%d-%s", id, name), ip: fmt.Sprintf("%s.%d", tp.subnet, 10+i)}
		netnstest.Add(t, p.ns)
		hostSide := fmt.Sprintf("npv%d-%d", id, i)
		netnstest.Run(t, "ip", "link", "add", hostSide, "netns", tp.node, "type", "veth", "peer", "name", "eth0", "netns", p.ns)
		netnstest.In(t, tp.node, "ip", "link", "set", hostSide, "master", br, "up")
		netnstest.In(t, p.ns, "ip", "link", "set", "eth0", "up")
		netnstest.In(t, p.ns, "ip", "addr", "add", p.ip+"/24", "dev", "eth0")
		netnstest.In(t, p.ns, "ip", "route", "add", "default", "via", tp.subnet+".1")
		tp.pods[name] = p
	}
	// The remote side: 10.79.N/24 between node and remote, the far pod
	// on remote's loopback, routes both ways.
	vn, vr := fmt.Sprintf("npn%d", id), fmt.Sprintf("npr%d", id)
	netnstest.Run(t, "ip", "link", "add", vn, "netns", tp.node, "type", "veth", "peer", "name", vr, "netns", tp.remote)
	netnstest.In(t, tp.node, "ip", "link", "set", vn, "up")
	netnstest.In(t, tp.node, "ip", "addr", "add", fmt.Sprintf("10.79.%d.1/24", n), "dev", vn)
	netnstest.In(t, tp.node, "ip", "route", "add", fmt.Sprintf("10.80.%d.0/24", n), "via", tp.outsideIPs[0])
	netnstest.In(t, tp.remote, "ip", "link", "set", vr, "up")
	for _, ip := range tp.outsideIPs {
		netnstest.In(t, tp.remote, "ip", "addr", "add", ip+"/24", "dev", vr)
	}
	netnstest.In(t, tp.remote, "ip", "addr", "add", tp.farIP+"/32", "dev", "lo")
	netnstest.In(t, tp.remote, "ip", "route", "add", tp.subnet+".0/24", "via", fmt.Sprintf("10.79.%d.1", n))
	return tp
}

// toolWrappers puts iptables, iptables-restore, iptables-save and sysctl
// on PATH that run the real ones in netns ns.
func toolWrappers(t *testing.T, ns string) {
	netnstest.ToolWrappers(t, ns, "iptables", "iptables-restore", "iptables-save", "sysctl")
}

// serve listens in netns ns on ip for the TCP ports (echoing lines) and
// UDP ports (answering each datagram).
func serve(t *testing.T, ns, ip string, tcpPorts, udpPorts []int) {
	t.Helper()
	for _, port := range tcpPorts {
		netnstest.ServeTCP(t, ns, net.JoinHostPort(ip, fmt.Sprint(port)), func(c net.Conn) {
			s := bufio.NewScanner(c)
			for s.Scan() {
				fmt.Fprintf(c, "%s\n", s.Text())
			}
		})
	}
	err := netnstest.Do(ns, func() error {
		for _, port := range udpPorts {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if err != nil {
				return err
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				buf := make([]byte, 512)
				for {
					n, from, err := c.ReadFrom(buf)
					if err != nil {
						return
					}
					_, _ = c.WriteTo(buf[:n], from)
				}
			}()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

const probeTimeout = 700 * time.Millisecond

// connect opens a TCP connection from netns ns (from local address src
// when set) to addr and checks one echoed line.
func connect(ns, src, addr string) (net.Conn, error) {
	var conn net.Conn
	err := netnstest.Do(ns, func() error {
		d := net.Dialer{Timeout: probeTimeout}
		if src != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := echo(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func echo(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := fmt.Fprintf(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo answered %q", line)
	}
	return nil
}

func tcpOK(ns, src, addr string) error {
	c, err := connect(ns, src, addr)
	if err == nil {
		c.Close()
	}
	return err
}

func udpOK(ns, addr string) error {
	return netnstest.Do(ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(probeTimeout))
		if _, err := c.Write([]byte("q")); err != nil {
			return err
		}
		buf := make([]byte, 16)
		_, err = c.Read(buf)
		return err
	})
}

// probe is one expected connection: from a pod (or remote with a source
// address) to an address, over TCP or UDP.
type probe struct {
	desc    string
	ns, src string
	addr    string
	udp     bool
	open    bool
}

func (p probe) try() error {
	if p.udp {
		return udpOK(p.ns, p.addr)
	}
	return tcpOK(p.ns, p.src, p.addr)
}

// expect waits until every probe gives its expected answer, then checks
// them once more (so a flapping rule set fails).
func expect(t *testing.T, probes ...probe) {
	t.Helper()
	check := func() string {
		for _, p := range probes {
			err := p.try()
			if p.open && err != nil {
				return fmt.Sprintf("%s: blocked (%v), want open", p.desc, err)
			}
			if !p.open && err == nil {
				return fmt.Sprintf("%s: open, want blocked", p.desc)
			}
		}
		return ""
	}
	integration.Eventually(t, 20*time.Second, check)
	if problem := check(); problem != "" {
		t.Fatalf("on a second look: %s", problem)
	}
}

func TestNetworkPolicyInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := newTopology(t, "web", "client", "other", "bclient")
	toolWrappers(t, tp.node)
	// A new netns starts with bridged traffic passing iptables; turn it
	// off so the test sees Run turn it on.
	netnstest.In(t, tp.node, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")

	web, client, other, bclient := tp.pods["web"], tp.pods["client"], tp.pods["other"], tp.pods["bclient"]
	serve(t, web.ns, web.ip, []int{80, 8080, 7000, 7001, 7002}, []int{53, 54})
	serve(t, bclient.ns, bclient.ip, []int{80, 81}, nil)
	serve(t, tp.remote, tp.farIP, []int{80}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const nodeName = "np-node"
	for name, team := range map[string]string{"np-a": "a", "np-b": "b"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": team}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controllers run: the ServiceAccount admission wants it.
		sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		if _, err := cs.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkPod := func(ns, name, node, ip, app string, ports ...v1.ContainerPort) {
		t.Helper()
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
			Spec: v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "c", Image: "busybox", Ports: ports}}}}
		p, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = v1.PodRunning
		p.Status.PodIP = ip
		p.Status.PodIPs = []v1.PodIP{{IP: ip}}
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkPod("np-a", "web", nodeName, web.ip, "web", v1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP})
	mkPod("np-a", "client", nodeName, client.ip, "client")
	mkPod("np-a", "other", nodeName, other.ip, "other")
	mkPod("np-b", "client", nodeName, bclient.ip, "client", v1.ContainerPort{Name: "http", ContainerPort: 81, Protocol: v1.ProtocolTCP})
	mkPod("np-b", "far", "np-other-node", tp.farIP, "far")

	// startRun runs Run until stopRun (at the latest when the test ends).
	var stopRun func()
	startRun := func() {
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- Run(runCtx, cs, Options{NodeName: nodeName, MinSyncPeriod: 100 * time.Millisecond, SyncPeriod: 2 * time.Second})
		}()
		stopRun = func() {
			if runCtx.Err() != nil {
				return
			}
			stop()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		}
	}
	startRun()
	t.Cleanup(func() {
		stopRun()
		_ = Cleanup()
	})

	policies := cs.NetworkingV1().NetworkPolicies
	apply := func(t *testing.T, ns string, np *networkingv1.NetworkPolicy) {
		t.Helper()
		np.Namespace = ns
		if _, err := policies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(t *testing.T, ns, name string) {
		t.Helper()
		if err := policies(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	webAddr := func(port int) string { return net.JoinHostPort(web.ip, fmt.Sprint(port)) }
	to := func(desc string, from *testPodNet, addr string, open bool) probe {
		return probe{desc: desc, ns: from.ns, addr: addr, open: open}
	}
	fromRemote := func(desc, src, addr string, open bool) probe {
		return probe{desc: desc, ns: tp.remote, src: src, addr: addr, open: open}
	}
	app := func(a string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": a}}
	}
	team := func(tm string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"team": tm}}
	}
	ingressFrom := func(name string, sel *metav1.LabelSelector, peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: ports}}}}
	}
	denyAll := func(name string, types ...networkingv1.PolicyType) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: types}}
	}

	t.Run("no policy: all open, bridged traffic passes iptables", func(t *testing.T) {
		integration.Eventually(t, 20*time.Second, func() string {
			if save := netnstest.In(t, tp.node, "iptables-save", "-t", "filter"); !strings.Contains(save, "-A FORWARD -m comment --comment \"skiff network policies\" -j "+topChain) {
				return "no FORWARD jump yet:\n" + save
			}
			return ""
		})
		expect(t,
			to("a/client -> web:80", client, webAddr(80), true),
			to("b/client -> web:80", bclient, webAddr(80), true),
			fromRemote("far pod -> web:80", tp.farIP, webAddr(80), true),
		)
		out := strings.TrimSpace(netnstest.In(t, tp.node, "sysctl", "-n", "net.bridge.bridge-nf-call-iptables"))
		if out != "1" {
			t.Errorf("bridge-nf-call-iptables is %s in the node, want 1 (set by Run)", out)
		}
	})

	t.Run("default deny ingress", func(t *testing.T) {
		apply(t, "np-a", denyAll("deny-ingress"))
		expect(t,
			to("a/client -> web:80 (same node, bridged)", client, webAddr(80), false),
			to("b/client -> web:80", bclient, webAddr(80), false),
			fromRemote("far pod -> web:80 (other node)", tp.farIP, webAddr(80), false),
			// Egress is not isolated; np-b has no policy.
			to("web -> b/client:80", web, net.JoinHostPort(bclient.ip, "80"), true),
		)
		// The node itself still reaches its pods (kubelet probes).
		if err := tcpOK(tp.node, "", webAddr(80)); err != nil {
			t.Errorf("node -> web:80: %v, want open", err)
		}
	})

	t.Run("podSelector re-opens exactly that source", func(t *testing.T) {
		apply(t, "np-a", ingressFrom("from-client", app("web"), []networkingv1.NetworkPolicyPeer{{PodSelector: app("client")}}))
		expect(t,
			to("a/client -> web:80", client, webAddr(80), true),
			to("a/client -> web:8080", client, webAddr(8080), true),
			to("a/other -> web:80", other, webAddr(80), false),
			to("b/client -> web:80 (app=client, other namespace)", bclient, webAddr(80), false),
		)
		remove(t, "np-a", "from-client")
	})

	t.Run("namespaceSelector, and with podSelector", func(t *testing.T) {
		apply(t, "np-a", ingressFrom("from-team-b", app("web"), []networkingv1.NetworkPolicyPeer{{NamespaceSelector: team("b")}}))
		expect(t,
			to("b/client -> web:80", bclient, webAddr(80), true),
			fromRemote("b/far on another node -> web:80", tp.farIP, webAddr(80), true),
			to("a/client -> web:80", client, webAddr(80), false),
		)
		remove(t, "np-a", "from-team-b")
		apply(t, "np-a", ingressFrom("from-b-clients", app("web"), []networkingv1.NetworkPolicyPeer{{NamespaceSelector: team("b"), PodSelector: app("client")}}))
		expect(t,
			to("b/client -> web:80", bclient, webAddr(80), true),
			fromRemote("b/far -> web:80 (not app=client)", tp.farIP, webAddr(80), false),
			to("a/client -> web:80 (not in team b)", client, webAddr(80), false),
		)
		remove(t, "np-a", "from-b-clients")
	})

	t.Run("numbered, named and ranged ports, UDP", func(t *testing.T) {
		udp := v1.ProtocolUDP
		apply(t, "np-a", ingressFrom("ports", app("web"), nil,
			networkingv1.NetworkPolicyPort{Port: ptr.To(intstr.FromString("http"))},
			networkingv1.NetworkPolicyPort{Port: ptr.To(intstr.FromInt32(7000)), EndPort: ptr.To(int32(7001))},
			networkingv1.NetworkPolicyPort{Protocol: &udp, Port: ptr.To(intstr.FromInt32(53))},
		))
		expect(t,
			to("a/client -> web:8080 (named http)", client, webAddr(8080), true),
			to("a/client -> web:7000", client, webAddr(7000), true),
			to("a/client -> web:7001 (endPort)", client, webAddr(7001), true),
			to("a/client -> web:7002 (past endPort)", client, webAddr(7002), false),
			to("a/client -> web:80", client, webAddr(80), false),
			probe{desc: "a/client -> web:53/udp", ns: client.ns, addr: webAddr(53), udp: true, open: true},
			probe{desc: "a/client -> web:54/udp", ns: client.ns, addr: webAddr(54), udp: true, open: false},
		)
		remove(t, "np-a", "ports")
	})

	t.Run("ipBlock with except", func(t *testing.T) {
		block := &networkingv1.IPBlock{CIDR: tp.outsideNet, Except: []string{tp.outsideIPs[1] + "/32"}}
		apply(t, "np-a", ingressFrom("outside", app("web"), []networkingv1.NetworkPolicyPeer{{IPBlock: block}}))
		expect(t,
			fromRemote("outside "+tp.outsideIPs[0]+" -> web:80", tp.outsideIPs[0], webAddr(80), true),
			fromRemote("outside "+tp.outsideIPs[1]+" (except) -> web:80", tp.outsideIPs[1], webAddr(80), false),
			fromRemote("far pod (not in the block) -> web:80", tp.farIP, webAddr(80), false),
		)
		remove(t, "np-a", "outside")
		remove(t, "np-a", "deny-ingress")
		expect(t, to("a/client -> web:80 with no ingress policy left", client, webAddr(80), true))
	})

	t.Run("egress deny and allow", func(t *testing.T) {
		bAddr := func(port int) string { return net.JoinHostPort(bclient.ip, fmt.Sprint(port)) }
		egress := networkingv1.PolicyTypeEgress
		apply(t, "np-a", &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "client-egress-deny"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: *app("client"), PolicyTypes: []networkingv1.PolicyType{egress}}})
		expect(t,
			to("a/client -> b/client:80", client, bAddr(80), false),
			to("a/client -> web:80", client, webAddr(80), false),
			probe{desc: "a/client -> far pod:80 (other node)", ns: client.ns, addr: net.JoinHostPort(tp.farIP, "80"), open: false},
			to("a/other -> b/client:80 (not selected)", other, bAddr(80), true),
			to("b/client -> a/client's neighbour web (ingress open)", bclient, webAddr(80), true),
		)
		apply(t, "np-a", &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "client-egress-team-b"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: *app("client"), PolicyTypes: []networkingv1.PolicyType{egress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{
					To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: team("b")}},
					Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("http"))}},
				}}}})
		expect(t,
			to("a/client -> b/client:81 (named http on the destination)", client, bAddr(81), true),
			to("a/client -> b/client:80", client, bAddr(80), false),
			to("a/client -> web:8080 (web's http, but np-a)", client, webAddr(8080), false),
		)
		remove(t, "np-a", "client-egress-deny")
		remove(t, "np-a", "client-egress-team-b")
		expect(t, to("a/client -> b/client:80 once the egress policies are gone", client, bAddr(80), true))
	})

	t.Run("established connection survives a new deny, delete re-opens", func(t *testing.T) {
		conn, err := connect(other.ns, "", webAddr(80))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		apply(t, "np-a", denyAll("deny-late"))
		expect(t, to("a/other -> web:80 new connection", other, webAddr(80), false))
		for i := range 3 {
			if err := echo(conn); err != nil {
				t.Fatalf("established connection broken by the new policy (round %d): %v", i, err)
			}
		}
		remove(t, "np-a", "deny-late")
		expect(t, to("a/other -> web:80 after the delete", other, webAddr(80), true))
	})

	t.Run("a restarted Run takes over the rules", func(t *testing.T) {
		apply(t, "np-a", denyAll("deny-restart"))
		expect(t, to("a/client -> web:80", client, webAddr(80), false))
		stopRun()
		remove(t, "np-a", "deny-restart")
		time.Sleep(time.Second)
		// Stopped: the rules stay (pods stay protected while the agent restarts).
		if err := tcpOK(client.ns, "", webAddr(80)); err == nil {
			t.Fatal("open while Run is stopped: the rules were removed when Run ended")
		}
		startRun()
		expect(t, to("a/client -> web:80 after the restart", client, webAddr(80), true))
		if save := netnstest.In(t, tp.node, "iptables-save", "-t", "filter"); strings.Contains(save, chainPrefix+"-I-") {
			t.Errorf("the old pod chains remain after the restart's sync:\n%s", save)
		}
	})

	t.Run("rules restored after a flush, Cleanup leaves nothing", func(t *testing.T) {
		apply(t, "np-a", denyAll("deny-again"))
		expect(t, to("a/client -> web:80", client, webAddr(80), false))
		// Another component's ACCEPT at the top of FORWARD (as kube-proxy's
		// KUBE-FORWARD for masquerade-marked packets): the jump moves back
		// before it. (The flush below removes it.)
		netnstest.In(t, tp.node, "iptables", "-I", "FORWARD", "1", "-m", "comment", "--comment", "np-test-accept", "-j", "ACCEPT")
		if err := tcpOK(client.ns, "", webAddr(80)); err != nil {
			t.Fatalf("still blocked behind an ACCEPT (%v): the check below proves nothing", err)
		}
		expect(t, to("a/client -> web:80 with an ACCEPT inserted before the jump", client, webAddr(80), false))
		netnstest.In(t, tp.node, "iptables", "-F", "FORWARD")
		if err := tcpOK(client.ns, "", webAddr(80)); err != nil {
			t.Fatalf("still blocked without the FORWARD jump (%v): the repair below proves nothing", err)
		}
		expect(t, to("a/client -> web:80 after FORWARD was flushed", client, webAddr(80), false))

		stopRun()
		if err := Cleanup(); err != nil {
			t.Fatal(err)
		}
		if save := netnstest.In(t, tp.node, "iptables-save", "-t", "filter"); strings.Contains(save, chainPrefix) {
			t.Errorf("rules left after Cleanup:\n%s", save)
		}
		expect(t, to("a/client -> web:80 after Cleanup", client, webAddr(80), true))
		if err := Cleanup(); err != nil {
			t.Errorf("second Cleanup: %v", err)
		}
	})
}
