package dns_test

// Against a real skiff API server: Services and EndpointSlices created
// through the API, the DNS server on a free loopback port queried over UDP
// and TCP with miekg/dns's client, and a second miekg/dns server as the
// upstream resolver of forwarded names.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	skiffdns "github.com/skiff-dev/skiff/pkg/dns"
	"github.com/skiff-dev/skiff/test/integration"
)

const ns = "dns-test"

// upstream is a tiny authoritative server for example.org and
// example.com, counting the queries it gets per name.
type upstream struct {
	addr    string
	mu      sync.Mutex
	queries map[string]int
}

func (u *upstream) count(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queries[name]
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{queries: map[string]int{}}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		u.mu.Lock()
		u.queries[strings.ToLower(q.Name)]++
		u.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		a := func(name, ip string) dns.RR {
			return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}
		}
		switch strings.ToLower(q.Name) {
		case "example.org.":
			if q.Qtype == dns.TypeA {
				m.Answer = []dns.RR{a(q.Name, "192.0.2.53")}
			}
		case "www.example.com.":
			if q.Qtype == dns.TypeA {
				m.Answer = []dns.RR{a(q.Name, "192.0.2.54")}
			}
		case "big.example.org.":
			for i := range 60 {
				m.Answer = append(m.Answer, a(q.Name, fmt.Sprintf("192.0.2.%d", i+1)))
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
				Ns: "ns.example.org.", Mbox: "hostmaster.example.org.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 30}}
		}
		if _, tcp := w.RemoteAddr().(*net.TCPAddr); !tcp {
			m.Truncate(dns.MinMsgSize)
		}
		_ = w.WriteMsg(m)
	})
	// UDP and TCP on one free port: another may hold the TCP one.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if attempt == 10 {
				t.Fatal(err)
			}
		}
	}
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

type env struct {
	t      *testing.T
	cs     kubernetes.Interface
	server *skiffdns.Server
	up     *upstream
}

func start(t *testing.T) *env {
	t.Helper()
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	cs := kubernetes.NewForConfigOrDie(cfg)
	up := startUpstream(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *skiffdns.Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- skiffdns.Run(ctx, cs, skiffdns.Options{
			BindAddress: "127.0.0.1", Port: -1, Upstreams: []string{up.addr},
			HealthAddress: "127.0.0.1:0", ReadyAddress: "127.0.0.1:0", MetricsAddress: "127.0.0.1:0",
			Started: func(s *skiffdns.Server) { started <- s },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dns.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the DNS server did not stop")
		}
	})
	var s *skiffdns.Server
	select {
	case s = <-started:
	case err := <-done:
		t.Fatalf("dns.Run returned before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the DNS server did not start")
	}
	e := &env{t: t, cs: cs, server: s, up: up}
	integration.Eventually(t, 30*time.Second, func() string {
		if code, body := e.get("/ready"); code != http.StatusOK {
			return fmt.Sprintf("/ready: %d %s", code, body)
		}
		return ""
	})
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) get(path string) (int, string) {
	resp, err := http.Get("http://" + e.server.HTTPAddr(path).String() + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// query asks the server over network ("udp" or "tcp") without EDNS.
func (e *env) query(network, name string, qtype uint16) *dns.Msg {
	e.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	addr := e.server.UDPAddr().String()
	if network == "tcp" {
		addr = e.server.TCPAddr().String()
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		e.t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

// answers are the answer section's records without their TTLs and
// owner, sorted: "A 10.0.0.1", "SRV 0 100 80 web.ns.svc.cluster.local.".
func answers(section []dns.RR) string {
	var out []string
	for _, rr := range section {
		fields := strings.Fields(rr.String())
		out = append(out, strings.Join(fields[3:], " "))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// expect waits until name's answer (rcode and records) is want, over UDP
// and TCP: the informers see the API's changes shortly after.
func (e *env) expect(name string, qtype uint16, want string) *dns.Msg {
	e.t.Helper()
	var last *dns.Msg
	integration.Eventually(e.t, 20*time.Second, func() string {
		for _, network := range []string{"udp", "tcp"} {
			last = e.query(network, name, qtype)
			got := dns.RcodeToString[last.Rcode]
			if a := answers(last.Answer); a != "" {
				got += " " + a
			}
			if got != want {
				return fmt.Sprintf("%s %s over %s: got %q, want %q", name, dns.TypeToString[qtype], network, got, want)
			}
		}
		return ""
	})
	return last
}

// expectNegative checks an NXDOMAIN or NODATA answer: no records, the
// zone's SOA in the authority section, authoritative.
func (e *env) expectNegative(name string, qtype uint16, rcode int) {
	e.t.Helper()
	m := e.expect(name, qtype, dns.RcodeToString[rcode])
	if len(m.Ns) != 1 {
		e.t.Fatalf("%s: authority %v, want the zone's SOA", name, m.Ns)
	}
	soa, ok := m.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Name != "cluster.local." || soa.Minttl != skiffdns.DefaultTTL {
		e.t.Fatalf("%s: authority %v, want the SOA of cluster.local. with minimum %d", name, m.Ns[0], skiffdns.DefaultTTL)
	}
	if !m.Authoritative {
		e.t.Fatalf("%s: not authoritative", name)
	}
}

func (e *env) createService(svc *corev1.Service) *corev1.Service {
	e.t.Helper()
	svc.Namespace = ns
	out, err := e.cs.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

type ep struct {
	ip, hostname string
	ready        *bool
}

func (e *env) createSlice(name, service string, eps []ep, ports ...discoveryv1.EndpointPort) {
	e.t.Helper()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "dns-test"}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports,
	}
	for _, p := range eps {
		endpoint := discoveryv1.Endpoint{Addresses: []string{p.ip}, Conditions: discoveryv1.EndpointConditions{Ready: p.ready}}
		if p.hostname != "" {
			endpoint.Hostname = ptr.To(p.hostname)
		}
		slice.Endpoints = append(slice.Endpoints, endpoint)
	}
	if _, err := e.cs.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func reverse(t *testing.T, ip string) string {
	name, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func TestClusterRecords(t *testing.T) {
	e := start(t)
	ctx := context.Background()

	web := e.createService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		}}})
	webIP := web.Spec.ClusterIP
	e.createService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}})
	e.createSlice("db-1", "db", []ep{
		{ip: "10.244.1.5", hostname: "db-0", ready: ptr.To(true)},
		{ip: "10.244.1.6", hostname: "db-1"},
		{ip: "10.244.1.7", hostname: "db-2", ready: ptr.To(false)},
		{ip: "10.244.1.8", ready: ptr.To(true)},
	}, discoveryv1.EndpointPort{Name: ptr.To("pg"), Port: ptr.To[int32](5432), Protocol: ptr.To(corev1.ProtocolTCP)})
	e.createService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.com"}})
	e.createService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "x", Port: 1}}}})

	webName := "web." + ns + ".svc.cluster.local."
	t.Run("ClusterIP", func(t *testing.T) {
		m := e.expect(webName, dns.TypeA, "NOERROR A "+webIP)
		if !m.Authoritative || !m.RecursionAvailable {
			t.Errorf("flags aa=%v ra=%v, want both", m.Authoritative, m.RecursionAvailable)
		}
		if ttl := m.Answer[0].Header().Ttl; ttl != skiffdns.DefaultTTL {
			t.Errorf("TTL %d, want %d", ttl, skiffdns.DefaultTTL)
		}
		// Case-insensitive, the answer in the question's case.
		m = e.expect("WEB.Dns-Test.svc.Cluster.Local.", dns.TypeA, "NOERROR A "+webIP)
		if got := m.Answer[0].Header().Name; got != "WEB.Dns-Test.svc.Cluster.Local." {
			t.Errorf("answer owner %q, want the question's case", got)
		}
		e.expectNegative(webName, dns.TypeAAAA, dns.RcodeSuccess)
		e.expectNegative(webName, dns.TypeTXT, dns.RcodeSuccess)
		m = e.expect("_http._tcp."+webName, dns.TypeSRV, "NOERROR SRV 0 100 80 "+webName)
		if answers(m.Extra) != "A "+webIP {
			t.Errorf("SRV additional section %q, want the Service's A", answers(m.Extra))
		}
		e.expect("_dns._udp."+webName, dns.TypeSRV, "NOERROR SRV 0 100 53 "+webName)
		e.expect(webName, dns.TypeSRV, "NOERROR SRV 0 50 53 "+webName+", SRV 0 50 80 "+webName)
		e.expectNegative("_http._udp."+webName, dns.TypeSRV, dns.RcodeNameError)
		e.expectNegative("_tcp."+webName, dns.TypeSRV, dns.RcodeSuccess)
		e.expectNegative("_http._tcp."+webName, dns.TypeA, dns.RcodeSuccess)
		e.expect(reverse(t, webIP), dns.TypePTR, "NOERROR PTR "+webName)
	})

	dbName := "db." + ns + ".svc.cluster.local."
	t.Run("Headless", func(t *testing.T) {
		// Ready endpoints only (nil is ready).
		e.expect(dbName, dns.TypeA, "NOERROR A 10.244.1.5, A 10.244.1.6, A 10.244.1.8")
		e.expect("db-0."+dbName, dns.TypeA, "NOERROR A 10.244.1.5")
		e.expect("10-244-1-8."+dbName, dns.TypeA, "NOERROR A 10.244.1.8")
		e.expectNegative("db-2."+dbName, dns.TypeA, dns.RcodeNameError)
		m := e.expect("_pg._tcp."+dbName, dns.TypeSRV, fmt.Sprintf("NOERROR SRV 0 33 5432 10-244-1-8.%s, SRV 0 33 5432 db-0.%s, SRV 0 33 5432 db-1.%s", dbName, dbName, dbName))
		if got := answers(m.Extra); got != "A 10.244.1.5, A 10.244.1.6, A 10.244.1.8" {
			t.Errorf("SRV additional section %q, want the endpoints' A records", got)
		}
		e.expect(reverse(t, "10.244.1.5"), dns.TypePTR, "NOERROR PTR db-0."+dbName)
		// The spec: a headless Service without ready endpoints is NXDOMAIN.
		e.expectNegative("nobody."+ns+".svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	})

	t.Run("ExternalName", func(t *testing.T) {
		extName := "ext." + ns + ".svc.cluster.local."
		m := e.expect(extName, dns.TypeA, "NOERROR A 192.0.2.54, CNAME www.example.com.")
		if _, ok := m.Answer[0].(*dns.CNAME); !ok {
			t.Errorf("answer %v: the CNAME comes first", m.Answer)
		}
		e.expect(extName, dns.TypeCNAME, "NOERROR CNAME www.example.com.")
	})

	t.Run("Other records", func(t *testing.T) {
		e.expect("dns-version.cluster.local.", dns.TypeTXT, `NOERROR TXT "1.1.0"`)
		e.expect("10-244-1-9."+ns+".pod.cluster.local.", dns.TypeA, "NOERROR A 10.244.1.9")
		e.expect("fd00--9."+ns+".pod.cluster.local.", dns.TypeAAAA, "NOERROR AAAA fd00::9")
		e.expectNegative("10-244-1-9.nowhere.pod.cluster.local.", dns.TypeA, dns.RcodeNameError)
		e.expect("cluster.local.", dns.TypeNS, "NOERROR NS ns.dns.cluster.local.")
		kube, err := e.cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.expect("kubernetes.default.svc.cluster.local.", dns.TypeA, "NOERROR A "+kube.Spec.ClusterIP)
	})

	t.Run("Negative", func(t *testing.T) {
		for _, name := range []string{
			"nope." + ns + ".svc.cluster.local.",
			"web.elsewhere.svc.cluster.local.",
			// A search path appended to a full name.
			"kubernetes.default.svc.cluster.local.default.svc.cluster.local.",
			webName + ns + ".svc.cluster.local.",
			"web." + ns + ".cluster.local.",
			"x.db-0." + dbName,
			"nowhere.svc.cluster.local.",
		} {
			e.expectNegative(name, dns.TypeA, dns.RcodeNameError)
		}
		// Names that exist without records of the type.
		for _, name := range []string{"svc.cluster.local.", ns + ".svc.cluster.local.", "cluster.local.", ns + ".pod.cluster.local."} {
			e.expectNegative(name, dns.TypeA, dns.RcodeSuccess)
		}
		if m := e.query("tcp", "cluster.local.", dns.TypeAXFR); m.Rcode != dns.RcodeRefused {
			t.Errorf("AXFR: %s, want REFUSED", dns.RcodeToString[m.Rcode])
		}
	})

	t.Run("Updates", func(t *testing.T) {
		web, err := e.cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		web.Spec.Ports = append(web.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP})
		if _, err := e.cs.CoreV1().Services(ns).Update(ctx, web, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.expect("_metrics._tcp."+webName, dns.TypeSRV, "NOERROR SRV 0 100 9090 "+webName)

		slice, err := e.cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, "db-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		slice.Endpoints[0].Conditions.Ready = ptr.To(false)
		if _, err := e.cs.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.expect(dbName, dns.TypeA, "NOERROR A 10.244.1.6, A 10.244.1.8")
		e.expectNegative("db-0."+dbName, dns.TypeA, dns.RcodeNameError)

		if err := e.cs.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.expectNegative(webName, dns.TypeA, dns.RcodeNameError)
		e.expectNegative("_http._tcp."+webName, dns.TypeSRV, dns.RcodeNameError)
		// The freed IP is no longer the cluster's: its PTR is forwarded
		// (the upstream knows no such name).
		e.expect(reverse(t, webIP), dns.TypePTR, "NXDOMAIN")
	})

	t.Run("Truncation", func(t *testing.T) {
		var eps []ep
		for i := range 60 {
			eps = append(eps, ep{ip: fmt.Sprintf("10.244.2.%d", i+1)})
		}
		e.createService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "many"}, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "x", Port: 1}}}})
		e.createSlice("many-1", "many", eps)
		name := "many." + ns + ".svc.cluster.local."
		integration.Eventually(t, 20*time.Second, func() string {
			if m := e.query("tcp", name, dns.TypeA); len(m.Answer) != 60 {
				return fmt.Sprintf("over TCP: %d records, want 60", len(m.Answer))
			}
			return ""
		})
		m := e.query("udp", name, dns.TypeA)
		if !m.Truncated || len(m.Answer) >= 60 {
			t.Errorf("over UDP without EDNS: truncated=%v with %d records, want TC and fewer than 60", m.Truncated, len(m.Answer))
		}
		m.Compress = true // as it was sent
		if l := m.Len(); l > dns.MinMsgSize {
			t.Errorf("UDP answer of %d bytes, want at most 512", l)
		}
		// EDNS with a 4096-byte buffer takes them all.
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.SetEdns0(4096, false)
		resp, _, err := (&dns.Client{Net: "udp", UDPSize: 4096}).Exchange(q, e.server.UDPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Truncated || len(resp.Answer) != 60 || resp.IsEdns0() == nil {
			t.Errorf("over UDP with EDNS 4096: truncated=%v, %d records, OPT %v; want 60 records with an OPT", resp.Truncated, len(resp.Answer), resp.IsEdns0())
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		code, body := e.get("/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		for _, want := range []string{"coredns_dns_requests_total{", `coredns_dns_responses_total{plugin="kubernetes",rcode="NXDOMAIN"`, "coredns_dns_request_duration_seconds_bucket{"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if code, body := e.get("/health"); code != http.StatusOK || body != "OK" {
			t.Errorf("/health: %d %q", code, body)
		}
	})
}

func TestForwarding(t *testing.T) {
	e := start(t)

	e.expect("example.org.", dns.TypeA, "NOERROR A 192.0.2.53")
	m := e.query("udp", "EXAMPLE.org.", dns.TypeA)
	if m.Authoritative || !m.RecursionAvailable || answers(m.Answer) != "A 192.0.2.53" {
		t.Errorf("forwarded answer aa=%v ra=%v %q, want ra and the upstream's record", m.Authoritative, m.RecursionAvailable, answers(m.Answer))
	}
	if ttl := m.Answer[0].Header().Ttl; ttl > 60 {
		t.Errorf("cached TTL %d, want at most the upstream's 60", ttl)
	}
	// expect asked over UDP and TCP, then once more: the cache answered.
	if n := e.up.count("example.org."); n != 1 {
		t.Errorf("the upstream got %d queries for example.org, want 1 (cached)", n)
	}

	e.expect("missing.example.org.", dns.TypeA, "NXDOMAIN")
	e.query("udp", "missing.example.org.", dns.TypeA)
	if n := e.up.count("missing.example.org."); n != 1 {
		t.Errorf("the upstream got %d queries for missing.example.org, want 1 (negative answers cached)", n)
	}

	// A large answer: the upstream truncates over UDP, the server fetches
	// it over TCP, and truncates it again for a UDP client.
	m = e.query("udp", "big.example.org.", dns.TypeA)
	if !m.Truncated {
		t.Errorf("big answer over UDP: not truncated (%d records)", len(m.Answer))
	}
	if m = e.query("tcp", "big.example.org.", dns.TypeA); len(m.Answer) != 60 {
		t.Errorf("big answer over TCP: %d records, want 60", len(m.Answer))
	}
	if n := e.up.count("big.example.org."); n != 2 {
		t.Errorf("the upstream got %d queries for big.example.org, want 2 (UDP, then TCP once)", n)
	}

	// Unknown reverse names go upstream too.
	e.expect(reverse(t, "192.0.2.99"), dns.TypePTR, "NXDOMAIN")
	if n := e.up.count(reverse(t, "192.0.2.99")); n != 1 {
		t.Errorf("the upstream got %d queries for the reverse name, want 1", n)
	}
}

// TestKubeDNSService: the Service skiff server publishes for its DNS, at
// the 10th service IP with endpoints where the DNS listens, answered by
// the DNS itself (kube-dns.kube-system.svc and the zone's NS).
func TestKubeDNSService(t *testing.T) {
	ip, err := skiffdns.ClusterDNSIP("10.96.0.0/12", 10)
	if err != nil || ip.String() != "10.96.0.10" {
		t.Fatalf("ClusterDNSIP(10.96.0.0/12, 10) = %v, %v; want 10.96.0.10", ip, err)
	}
	if ip, err := skiffdns.ClusterDNSIP("fd00:10:96::/112", 10); err != nil || ip.String() != "fd00:10:96::a" {
		t.Errorf("ClusterDNSIP of an IPv6 range = %v, %v; want fd00:10:96::a", ip, err)
	}
	if _, err := skiffdns.ClusterDNSIP("10.96.0.0/29", 10); err == nil {
		t.Error("ClusterDNSIP beyond a /29: no error")
	}

	e := start(t)
	ctx := context.Background()
	o := skiffdns.ServiceOptions{ClusterIP: ip, EndpointIPs: []net.IP{net.ParseIP("192.0.2.10")}, Port: 1053, MetricsPort: 9153, NodeName: "n1"}
	if err := skiffdns.EnsureService(ctx, e.cs, o); err != nil {
		t.Fatal(err)
	}
	// Again: the same, with a changed endpoint.
	o.EndpointIPs = []net.IP{net.ParseIP("192.0.2.11")}
	if err := skiffdns.EnsureService(ctx, e.cs, o); err != nil {
		t.Fatalf("second EnsureService: %v", err)
	}
	svc, err := e.cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s/%s:%d->%s", p.Name, p.Protocol, p.Port, p.TargetPort.String()))
	}
	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Labels["k8s-app"] != "kube-dns" || strings.Join(ports, " ") != "dns/UDP:53->1053 dns-tcp/TCP:53->1053 metrics/TCP:9153->9153" {
		t.Errorf("service: clusterIP %s labels %v ports %v", svc.Spec.ClusterIP, svc.Labels, ports)
	}
	slice, err := e.cs.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kube-dns-skiff-v4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != "192.0.2.11" || len(slice.Ports) != 3 || *slice.Ports[0].Port != 1053 {
		t.Errorf("slice endpoints %v ports %v", slice.Endpoints, slice.Ports)
	}
	eps, err := e.cs.CoreV1().Endpoints("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps.Subsets) != 1 || eps.Subsets[0].Addresses[0].IP != "192.0.2.11" || eps.Labels[discoveryv1.LabelSkipMirror] != "true" {
		t.Errorf("endpoints %v labels %v", eps.Subsets, eps.Labels)
	}
	e.expect("kube-dns.kube-system.svc.cluster.local.", dns.TypeA, "NOERROR A 10.96.0.10")
	e.expect("ns.dns.cluster.local.", dns.TypeA, "NOERROR A 10.96.0.10")
	e.expect(reverse(t, "10.96.0.10"), dns.TypePTR, "NOERROR PTR kube-dns.kube-system.svc.cluster.local.")

	// Another ClusterIP cannot be had: an error, not a silent mismatch.
	o.ClusterIP = net.ParseIP("10.96.0.11")
	if err := skiffdns.EnsureService(ctx, e.cs, o); err == nil || !strings.Contains(err.Error(), "has ClusterIP 10.96.0.10") {
		t.Errorf("EnsureService with another ClusterIP: %v", err)
	}
}
