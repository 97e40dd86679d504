package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	configv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/test/harness"
	"github.com/skiff-dev/skiff/test/netnstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// testNet is three network namespaces: "node", where the proxy runs,
// joined by veth pairs to "backend", a host with the endpoints'
// addresses, and to "client", a host on another subnet routed through
// the node (whose address an endpoint sees when nothing masquerades it).
type testNet struct {
	node, backend, client string
	nodeIP                string
	backendIPs            []string // the endpoints' addresses, in backend
	clientIP              string
}

// newTestNet makes the namespaces (removed at cleanup), their names and
// interfaces' starting with prefix; skips without root or ip netns.
func newTestNet(t *testing.T, prefix, linkPrefix string) *testNet {
	netnstest.RequireRoot(t, "creates network namespaces")
	id := os.Getpid() % 100000
	n := &testNet{node: fmt.Sprintf("%s-node-%d", prefix, id), backend: fmt.Sprintf("%s-be-%d", prefix, id),
		client: fmt.Sprintf("%s-cl-%d", prefix, id)}
	for _, ns := range []string{n.node, n.backend, n.client} {
		netnstest.Add(t, ns)
	}
	// 10.77.0.0/16 is this test's own (the conformance run uses 10.248/16).
	subnet := fmt.Sprintf("10.77.%d", id%250)
	n.nodeIP = subnet + ".1"
	n.backendIPs = []string{subnet + ".11", subnet + ".12", subnet + ".13", subnet + ".14"}
	vn, vb := fmt.Sprintf("%sn%d", linkPrefix, id), fmt.Sprintf("%sb%d", linkPrefix, id)
	netnstest.Run(t, "ip", "link", "add", vn, "netns", n.node, "type", "veth", "peer", "name", vb, "netns", n.backend)
	vnc, vc := fmt.Sprintf("%sm%d", linkPrefix, id), fmt.Sprintf("%sc%d", linkPrefix, id)
	netnstest.Run(t, "ip", "link", "add", vnc, "netns", n.node, "type", "veth", "peer", "name", vc, "netns", n.client)
	clientSubnet := fmt.Sprintf("10.76.%d", id%250)
	n.clientIP = clientSubnet + ".2"
	netnstest.In(t, n.node, "ip", "link", "set", vn, "up")
	netnstest.In(t, n.node, "ip", "addr", "add", n.nodeIP+"/24", "dev", vn)
	// Cluster IPs (skiff's default range) are routed out of the veth, as
	// a node's default route would; DNAT changes where they go.
	netnstest.In(t, n.node, "ip", "route", "add", "10.96.0.0/12", "dev", vn)
	netnstest.In(t, n.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	netnstest.In(t, n.backend, "ip", "link", "set", vb, "up")
	netnstest.In(t, n.backend, "ip", "addr", "add", subnet+".2/24", "dev", vb)
	for _, ip := range n.backendIPs {
		netnstest.In(t, n.backend, "ip", "addr", "add", ip+"/24", "dev", vb)
	}
	netnstest.In(t, n.backend, "ip", "route", "add", clientSubnet+".0/24", "via", n.nodeIP)
	netnstest.In(t, n.node, "ip", "link", "set", vnc, "up")
	netnstest.In(t, n.node, "ip", "addr", "add", clientSubnet+".1/24", "dev", vnc)
	netnstest.In(t, n.client, "ip", "link", "set", vc, "up")
	netnstest.In(t, n.client, "ip", "addr", "add", n.clientIP+"/24", "dev", vc)
	netnstest.In(t, n.client, "ip", "route", "add", "default", "via", clientSubnet+".1")
	return n
}

// serveBackends listens on port of every backend IP and answers each
// connection with the IP it was made to and the client's address.
func serveBackends(t *testing.T, n *testNet, port int) {
	for _, ip := range n.backendIPs {
		netnstest.ServeTCP(t, n.backend, net.JoinHostPort(ip, fmt.Sprint(port)), func(c net.Conn) {
			local := c.LocalAddr().(*net.TCPAddr).IP.String()
			fmt.Fprintf(c, "%s %s\n", local, c.RemoteAddr().(*net.TCPAddr).IP)
		})
	}
}

// serveUDPBackends answers each datagram to port of every backend IP
// with that IP.
func serveUDPBackends(t *testing.T, n *testNet, port int) {
	var conns []net.PacketConn
	err := netnstest.Do(n.backend, func() error {
		for _, ip := range n.backendIPs {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		t.Cleanup(func() { c.Close() })
		go func() {
			buf := make([]byte, 512)
			for {
				_, from, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = c.WriteTo([]byte(n.backendIPs[i]), from)
			}
		}()
	}
}

// udpAsk sends a datagram from ns, always from local port srcPort (one
// conntrack entry), to addr and returns the answer.
func udpAsk(ns string, srcPort int, addr string) (string, error) {
	var answer string
	err := netnstest.Do(ns, func() error {
		c, err := net.ListenUDP("udp", &net.UDPAddr{Port: srcPort})
		if err != nil {
			return err
		}
		defer c.Close()
		to, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo([]byte("who"), to); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 512)
		n, _, err := c.ReadFrom(buf)
		answer = string(buf[:n])
		return err
	})
	return answer, err
}

// dial connects from ns to addr and returns the answer: "backendIP clientIP".
func dial(ns, addr string) (string, error) {
	return netnstest.ReadTCP(ns, addr, 3*time.Second)
}

// toolWrappers puts iptables, iptables-restore, iptables-save, nft and
// conntrack on PATH that run the real ones in netns ns, so that the proxy
// (which finds them on PATH) changes the node's rules and conntrack table,
// never the host's. Those missing here are left out (Cleanup then skips
// their mode); the test's mode needs its own.
func toolWrappers(t *testing.T, ns string) {
	netnstest.ToolWrappers(t, ns, "iptables", "iptables-restore", "iptables-save", "nft", "conntrack")
}

func freeLoopbackAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func endpointSlice(name string, port int32, ips ...string) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Labels: map[string]string{
			discovery.LabelServiceName: name, discovery.LabelManagedBy: "proxy-test"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{ip}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	return s
}

// TestProxyInNetns runs the proxy in each mode against a real skiff API
// server, its rules in a network namespace acting as a node, and connects
// through them to listeners in a second namespace acting as the
// endpoints' host (and from a third, a client routed through the node).
func TestProxyInNetns(t *testing.T) {
	for _, tc := range []struct {
		mode                    configv1alpha1.ProxyMode
		tools                   []string
		netnsPrefix, linkPrefix string
	}{
		{ModeIPTables, []string{"iptables", "iptables-restore", "iptables-save"}, "skproxy", "skp"},
		{ModeNFTables, []string{"nft"}, "nft", "nft"},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			for _, tool := range tc.tools {
				if _, err := exec.LookPath(tool); err != nil {
					t.Skipf("proxy mode %s needs %s: not on PATH", tc.mode, tool)
				}
			}
			testProxyInNetns(t, tc.mode, tc.netnsPrefix, tc.linkPrefix)
		})
	}
}

// nftChain is the text of the kube-proxy table's chain whose name holds
// part (e.g. "default/web/tcp/http"), from `nft list table` output.
func nftChain(table, prefix, part string) string {
	start := strings.Index(table, "chain "+prefix)
	for start >= 0 {
		end := strings.Index(table[start:], "}")
		block := table[start : start+end]
		// "chain NAME { # handle N"
		head, _, _ := strings.Cut(block, "{")
		if strings.HasSuffix(strings.TrimSpace(head), "-"+part) {
			return block
		}
		next := strings.Index(table[start+end:], "chain "+prefix)
		if next < 0 {
			break
		}
		start = start + end + next
	}
	return ""
}

func testProxyInNetns(t *testing.T, mode configv1alpha1.ProxyMode, netnsPrefix, linkPrefix string) {
	n := newTestNet(t, netnsPrefix, linkPrefix)
	toolWrappers(t, n.node)
	listTable := func() string {
		return netnstest.In(t, n.node, "nft", "-a", "list", "table", "ip", "kube-proxy")
	}
	const backendPort = 8080
	serveBackends(t, n, backendPort)
	const udpPort = 5353
	serveUDPBackends(t, n, udpPort)

	srv := harness.StartSkiffTest(t, harness.Options{Command: "apiserver"})
	client, err := kubernetes.NewForConfig(srv.AdminConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const nodeName = "proxy-node"
	if _, err := client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := "default"
	mkService := func(name string, mutate func(*v1.Service)) *v1.Service {
		t.Helper()
		s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}}}
		if mutate != nil {
			mutate(s)
		}
		s, err := client.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mkSlice := func(s *discovery.EndpointSlice) {
		t.Helper()
		if _, err := client.DiscoveryV1().EndpointSlices(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	web := mkService("web", nil)
	mkSlice(endpointSlice("web", backendPort, n.backendIPs[:3]...))
	empty := mkService("empty", nil)
	sticky := mkService("sticky", func(s *v1.Service) { s.Spec.SessionAffinity = v1.ServiceAffinityClientIP })
	mkSlice(endpointSlice("sticky", backendPort, n.backendIPs[:3]...))
	np := mkService("np", func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort })
	mkSlice(endpointSlice("np", backendPort, n.backendIPs[3]))
	local := mkService("local", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	})
	localSlice := endpointSlice("local", backendPort, n.backendIPs[2])
	// On this node as far as the proxy knows (it reaches it over the veth).
	localSlice.Endpoints[0].NodeName = ptr.To(nodeName)
	mkSlice(localSlice)

	dnsSvc := mkService("dns", func(s *v1.Service) { s.Spec.Ports[0].Protocol = v1.ProtocolUDP })
	dnsSlice := endpointSlice("dns", udpPort, n.backendIPs[0])
	dnsSlice.Ports[0].Protocol = ptr.To(v1.ProtocolUDP)
	mkSlice(dnsSlice)

	opts := DefaultOptions(nodeName)
	opts.Mode = mode
	opts.LocalhostNodePorts = false // would set the host's route_localnet
	opts.MinSyncPeriod = 100 * time.Millisecond
	opts.SyncPeriod = 2 * time.Second
	opts.HealthzBindAddress = freeLoopbackAddr(t)
	opts.MetricsBindAddress = freeLoopbackAddr(t)
	opts.ClusterCIDR = "10.244.0.0/16"
	proxyCtx, stopProxy := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(proxyCtx, client, opts) }()
	t.Cleanup(func() {
		stopProxy()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		if err := Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		if _, err := exec.LookPath("iptables-save"); err == nil {
			save := netnstest.In(t, n.node, "iptables-save")
			if strings.Contains(save, "KUBE-") {
				t.Errorf("rules left after Cleanup:\n%s", save)
			}
		}
		if _, err := exec.LookPath("nft"); err == nil {
			tables := netnstest.In(t, n.node, "nft", "list", "tables")
			if strings.Contains(tables, "kube-proxy") {
				t.Errorf("nftables table left after Cleanup:\n%s", tables)
			}
		}
	})

	webAddr := net.JoinHostPort(web.Spec.ClusterIP, "80")
	netnstest.Eventually(t, 30*time.Second, "the cluster IP answers", func() error { _, err := dial(n.node, webAddr); return err })

	t.Run("spreads over 3 endpoints", func(t *testing.T) {
		seen := map[string]int{}
		for range 60 {
			answer, err := dial(n.node, webAddr)
			if err != nil {
				t.Fatal(err)
			}
			seen[strings.Fields(answer)[0]]++
		}
		for _, ip := range n.backendIPs[:3] {
			if seen[ip] == 0 {
				t.Errorf("endpoint %s never reached in 60 connections: %v", ip, seen)
			}
		}
		if len(seen) != 3 {
			t.Errorf("reached %v, want exactly the 3 endpoints", seen)
		}
	})

	t.Run("no endpoints rejects", func(t *testing.T) {
		start := time.Now()
		_, err := dial(n.node, net.JoinHostPort(empty.Spec.ClusterIP, "80"))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial to a service without endpoints: %v, want connection refused", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("refused after %s, want at once (REJECT, not a drop)", d)
		}
	})

	t.Run("session affinity sticks", func(t *testing.T) {
		addr := net.JoinHostPort(sticky.Spec.ClusterIP, "80")
		first, err := dial(n.node, addr)
		if err != nil {
			t.Fatal(err)
		}
		for range 15 {
			answer, err := dial(n.node, addr)
			if err != nil {
				t.Fatal(err)
			}
			if answer != first {
				t.Fatalf("affinity broken: %q then %q", first, answer)
			}
		}
	})

	t.Run("node port from another host", func(t *testing.T) {
		addr := net.JoinHostPort(n.nodeIP, fmt.Sprint(np.Spec.Ports[0].NodePort))
		answer, err := dial(n.backend, addr)
		if err != nil {
			t.Fatalf("node port %s: %v", addr, err)
		}
		f := strings.Fields(answer)
		if f[0] != n.backendIPs[3] {
			t.Errorf("node port reached %s, want %s", f[0], n.backendIPs[3])
		}
		// externalTrafficPolicy Cluster: masqueraded to the node's IP.
		if f[1] != n.nodeIP {
			t.Errorf("endpoint saw client %s, want the node %s (masqueraded)", f[1], n.nodeIP)
		}
	})

	t.Run("externalTrafficPolicy Local keeps the client IP", func(t *testing.T) {
		addr := net.JoinHostPort(n.nodeIP, fmt.Sprint(local.Spec.Ports[0].NodePort))
		answer, err := dial(n.client, addr)
		if err != nil {
			t.Fatalf("node port %s from the client: %v", addr, err)
		}
		if f := strings.Fields(answer); f[0] != n.backendIPs[2] || f[1] != n.clientIP {
			t.Errorf("answer %q, want endpoint %s seeing the client %s", answer, n.backendIPs[2], n.clientIP)
		}
		// The Cluster policy's node port, from the same client: masqueraded.
		addr = net.JoinHostPort(n.nodeIP, fmt.Sprint(np.Spec.Ports[0].NodePort))
		answer, err = dial(n.client, addr)
		if err != nil {
			t.Fatalf("node port %s from the client: %v", addr, err)
		}
		if f := strings.Fields(answer); f[1] != n.nodeIP {
			t.Errorf("Cluster policy: endpoint saw %s, want the node %s", f[1], n.nodeIP)
		}
	})

	t.Run("rules restored after a flush", func(t *testing.T) {
		if mode == ModeNFTables {
			// Someone deletes the table (nft flush ruleset, a reload).
			netnstest.In(t, n.node, "nft", "delete", "table", "ip", "kube-proxy")
		} else {
			// A firewall reload: every nat chain flushed and deleted.
			netnstest.In(t, n.node, "iptables", "-t", "nat", "-F")
			netnstest.In(t, n.node, "iptables", "-t", "nat", "-X")
		}
		if _, err := dial(n.node, webAddr); err == nil {
			t.Fatal("the cluster IP still answers without rules: the test proves nothing")
		}
		netnstest.Eventually(t, 15*time.Second, "the cluster IP answers again", func() error { _, err := dial(n.node, webAddr); return err })
	})

	t.Run("endpoint change applied by the next sync", func(t *testing.T) {
		var npChainBefore string
		if mode == ModeNFTables {
			npChainBefore = nftChain(listTable(), "service-", "default/np/tcp/http")
			if !strings.Contains(npChainBefore, "# handle") {
				t.Fatalf("no service chain of default/np in the table:\n%s", listTable())
			}
		}
		s, err := client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Endpoints = endpointSlice("web", backendPort, n.backendIPs[3]).Endpoints
		if _, err := client.DiscoveryV1().EndpointSlices(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		netnstest.Eventually(t, 10*time.Second, "only the new endpoint answers", func() error {
			for range 10 {
				answer, err := dial(n.node, webAddr)
				if err != nil {
					return err
				}
				if ip := strings.Fields(answer)[0]; ip != n.backendIPs[3] {
					return fmt.Errorf("reached %s", ip)
				}
			}
			return nil
		})
		if mode == ModeNFTables {
			table := listTable()
			web := nftChain(table, "service-", "default/web/tcp/http")
			if !strings.Contains(web, n.backendIPs[3]) {
				t.Errorf("web's chain lacks the new endpoint:\n%s", table)
			}
			for _, ip := range n.backendIPs[:3] {
				if strings.Contains(web, ip+" ") || strings.Contains(web, ip+":") {
					t.Errorf("web's chain still has the old endpoint %s:\n%s", ip, web)
				}
			}
			// An incremental transaction: another service's chain kept
			// its rules (a full sync would have rewritten them, with new
			// handles).
			if after := nftChain(table, "service-", "default/np/tcp/http"); after != npChainBefore {
				t.Errorf("np's chain was rewritten by web's change:\nbefore:\n%s\nafter:\n%s", npChainBefore, after)
			}
		} else {
			// The old endpoints' chains are gone.
			save := netnstest.In(t, n.node, "iptables-save", "-t", "nat")
			for _, ip := range n.backendIPs[:3] {
				if strings.Contains(save, "--comment \"default/web:http -> "+ip) {
					t.Errorf("rules for the old endpoint %s remain:\n%s", ip, save)
				}
			}
		}
		// Endpoints gone: rejected.
		if err := client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		netnstest.Eventually(t, 10*time.Second, "rejected once its slice is gone", func() error {
			_, err := dial(n.node, webAddr)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("dial: %v", err)
			}
			return nil
		})
	})

	t.Run("UDP conntrack entries follow endpoint changes", func(t *testing.T) {
		addr := net.JoinHostPort(dnsSvc.Spec.ClusterIP, "80")
		const src = 40123
		if answer, err := udpAsk(n.node, src, addr); err != nil || answer != n.backendIPs[0] {
			t.Fatalf("UDP service: %q %v, want %s", answer, err, n.backendIPs[0])
		}
		s, err := client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "dns-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Endpoints[0].Addresses = []string{n.backendIPs[1]}
		if _, err := client.DiscoveryV1().EndpointSlices(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The old endpoint still answers: only a deleted conntrack entry
		// sends the same flow to the new one.
		netnstest.Eventually(t, 10*time.Second, "the same UDP flow reaches the new endpoint", func() error {
			answer, err := udpAsk(n.node, src, addr)
			if err != nil {
				return err
			}
			if answer != n.backendIPs[1] {
				return fmt.Errorf("answered by %s", answer)
			}
			return nil
		})
	})

	t.Run("healthz and metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + opts.HealthzBindAddress + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"nodeEligible":true`) {
			t.Errorf("/healthz: %d %s", resp.StatusCode, body)
		}
		resp, err = http.Get("http://" + opts.MetricsBindAddress + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{"kubeproxy_sync_proxy_rules_duration_seconds_count", "kubeproxy_sync_proxy_rules_last_timestamp_seconds"} {
			if !strings.Contains(string(body), m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
		resp, err = http.Get("http://" + opts.MetricsBindAddress + "/proxyMode")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != string(mode) {
			t.Errorf("/proxyMode: %q, want %q", body, mode)
		}
	})
}
