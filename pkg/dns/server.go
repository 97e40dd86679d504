// Package dns is skiff's cluster DNS: the Kubernetes DNS specification
// (https://github.com/kubernetes/dns/blob/master/docs/specification.md)
// served from informers of Services, EndpointSlices and Namespaces, with
// CoreDNS's extensions pods use (pod A records, SRV of a Service's name,
// search-path friendly NXDOMAIN), and every other name forwarded to the
// host's resolvers through a cache.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Defaults of Options.
const (
	DefaultClusterDomain = "cluster.local"
	DefaultPort          = 53
	// DefaultTTL of cluster records: kubeadm's Corefile's (ttl 30), what
	// clusters commonly run; CoreDNS's own default is 5.
	DefaultTTL        = 30
	DefaultResolvConf = "/etc/resolv.conf"
	// Where CoreDNS's health, ready and prometheus plugins listen.
	DefaultHealthPort  = 8080
	DefaultReadyPort   = 8181
	DefaultMetricsPort = 9153
	// forwardTimeout bounds one forwarded query over all upstreams.
	forwardTimeout = 5 * time.Second
	// maxChase bounds ExternalName CNAME chains.
	maxChase = 8
	// ednsSize is the UDP payload size this server advertises (the DNS
	// flag day's 1232: no fragmentation).
	ednsSize = 1232
)

// Options say what to serve and where.
type Options struct {
	// BindAddress of the DNS listeners; empty: 0.0.0.0.
	BindAddress string
	// Port of UDP and TCP; 0: DefaultPort; -1: a free port (tests).
	Port int
	// ClusterDomain is the zone served; empty: cluster.local.
	ClusterDomain string
	// TTL of cluster records; 0: DefaultTTL.
	TTL uint32
	// Upstreams receive the names outside the cluster (IP[:port]); none:
	// the nameservers of ResolvConf.
	Upstreams []string
	// ResolvConf is read for Upstreams; empty: /etc/resolv.conf.
	ResolvConf string
	// CacheSize is how many forwarded answers are cached; 0: the default.
	CacheSize int
	// HealthAddress (/health), ReadyAddress (/ready) and MetricsAddress
	// (/metrics) are host:port listeners; empty: not served. One address
	// may serve several.
	HealthAddress, ReadyAddress, MetricsAddress string
	// DNSService is the Service ns.dns.<zone> names (the zone's NS);
	// empty: kube-system/kube-dns.
	DNSService types.NamespacedName
	// Started, if set, is called once the server listens.
	Started func(*Server)
}

// Server is a running DNS server.
type Server struct {
	zone      *zone
	forwarder *forwarder
	metrics   *metrics
	synced    atomic.Bool
	// serial is the SOA serial, the time of the last change seen.
	serial  atomic.Uint32
	ctx     context.Context
	udpAddr *net.UDPAddr
	tcpAddr *net.TCPAddr
	http    map[string]net.Addr
	label   string // the metrics' server label
}

// UDPAddr and TCPAddr are where the server answers queries.
func (s *Server) UDPAddr() *net.UDPAddr { return s.udpAddr }
func (s *Server) TCPAddr() *net.TCPAddr { return s.tcpAddr }

// HTTPAddr is the listener of "/health", "/ready" or "/metrics"; nil if
// not served.
func (s *Server) HTTPAddr(path string) net.Addr { return s.http[path] }

// Ready says whether the informers have synced: until then cluster names
// are answered SERVFAIL (a client retries; an NXDOMAIN would be cached).
func (s *Server) Ready() bool { return s.synced.Load() }

// Upstreams are the resolvers names outside the cluster go to.
func (s *Server) Upstreams() []string { return s.forwarder.upstreams }

func (o *Options) complete() {
	if o.BindAddress == "" {
		o.BindAddress = "0.0.0.0"
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.ResolvConf == "" {
		o.ResolvConf = DefaultResolvConf
	}
	if o.DNSService.Name == "" {
		o.DNSService = types.NamespacedName{Namespace: metav1.NamespaceSystem, Name: "kube-dns"}
	}
}

// Run serves DNS until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, client kubernetes.Interface, o Options) error {
	o.complete()
	logger := klog.FromContext(ctx).WithName("dns")
	origin := dns.Fqdn(strings.ToLower(strings.Trim(o.ClusterDomain, ".")))
	if _, ok := dns.IsDomainName(origin); !ok || origin == "." {
		return fmt.Errorf("cluster domain %q is not a domain name", o.ClusterDomain)
	}

	// The caches hold what DNS needs: managed fields and annotations
	// (last-applied configurations) of 10 000 Services are dropped.
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(func(obj any) (any, error) {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetManagedFields(nil)
			m.SetAnnotations(nil)
		}
		return obj, nil
	}))
	services := factory.Core().V1().Services()
	slices := factory.Discovery().V1().EndpointSlices()
	namespaces := factory.Core().V1().Namespaces()
	if err := services.Informer().AddIndexers(cache.Indexers{byIP: serviceIPIndex}); err != nil {
		return err
	}
	if err := slices.Informer().AddIndexers(cache.Indexers{byIP: sliceIPIndex, byService: sliceServiceIndex}); err != nil {
		return err
	}
	s := &Server{metrics: newMetrics(), ctx: ctx, http: map[string]net.Addr{}}
	s.serial.Store(uint32(time.Now().Unix()))
	changed := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.serial.Store(uint32(time.Now().Unix())) },
		UpdateFunc: func(any, any) { s.serial.Store(uint32(time.Now().Unix())) },
		DeleteFunc: func(any) { s.serial.Store(uint32(time.Now().Unix())) },
	}
	for _, inf := range []cache.SharedIndexInformer{services.Informer(), slices.Informer(), namespaces.Informer()} {
		if _, err := inf.AddEventHandler(changed); err != nil {
			return err
		}
	}
	s.zone = &zone{origin: origin, ttl: o.TTL, services: services.Lister(), serviceIPs: services.Informer().GetIndexer(),
		slices: slices.Informer().GetIndexer(), namespaces: namespaces.Lister(), dnsService: o.DNSService, serial: s.serial.Load}

	pc, ln, err := listen(o.BindAddress, o.Port)
	if err != nil {
		return err
	}
	s.udpAddr, s.tcpAddr = pc.LocalAddr().(*net.UDPAddr), ln.Addr().(*net.TCPAddr)
	s.label = "dns://" + net.JoinHostPort(o.BindAddress, strconv.Itoa(s.udpAddr.Port))
	upstreams, err := Upstreams(o.Upstreams, o.ResolvConf, s.udpAddr)
	if err != nil {
		pc.Close()
		ln.Close()
		return err
	}
	if len(upstreams) == 0 {
		logger.Info("No upstream resolvers: names outside the cluster are answered SERVFAIL", "resolvConf", o.ResolvConf)
	}
	s.forwarder = newForwarder(upstreams, o.CacheSize, s.metrics)

	httpServers, err := s.listenHTTP(o)
	if err != nil {
		pc.Close()
		ln.Close()
		return err
	}

	factory.Start(ctx.Done())
	defer factory.Shutdown()
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced, slices.Informer().HasSynced, namespaces.Informer().HasSynced) {
			s.synced.Store(true)
			logger.Info("DNS records synced", "zone", origin)
		}
	}()

	udp := &dns.Server{PacketConn: pc, Handler: s, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, UDPSize: dns.DefaultMsgSize}
	tcp := &dns.Server{Listener: ln, Handler: s, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 2+len(httpServers))
	for _, srv := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
		select {
		case <-started:
		case err := <-errs:
			return err
		}
	}
	for _, hs := range httpServers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.server.Serve(hs.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	logger.Info("Serving DNS", "zone", origin, "udp", s.udpAddr.String(), "tcp", s.tcpAddr.String(), "upstreams", upstreams, "ttl", o.TTL)
	if o.Started != nil {
		o.Started(s)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = udp.ShutdownContext(shutdownCtx)
	_ = tcp.ShutdownContext(shutdownCtx)
	for _, hs := range httpServers {
		_ = hs.server.Shutdown(shutdownCtx)
	}
	wg.Wait()
	logger.Info("DNS stopped")
	return runErr
}

// listen opens UDP and TCP on one port; port -1 is a free one, which TCP
// may have taken elsewhere: tried again then.
func listen(host string, port int) (net.PacketConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		p := port
		if p < 0 {
			p = 0
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return nil, nil, fmt.Errorf("DNS over UDP: %w", err)
		}
		actual := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(actual)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port >= 0 || attempt >= 10 {
			return nil, nil, fmt.Errorf("DNS over TCP: %w", err)
		}
	}
}

type httpServer struct {
	server   *http.Server
	listener net.Listener
}

// listenHTTP serves /health, /ready and /metrics, those on one address
// from one server.
func (s *Server) listenHTTP(o Options) ([]httpServer, error) {
	muxes := map[string]*http.ServeMux{}
	var order []string
	add := func(addr, path string, h http.Handler) {
		if addr == "" {
			return
		}
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
			order = append(order, addr)
		}
		muxes[addr].Handle(path, h)
	}
	add(o.HealthAddress, "/health", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("OK"))
	}))
	add(o.ReadyAddress, "/ready", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "informers not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK"))
	}))
	add(o.MetricsAddress, "/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	var servers []httpServer
	for _, addr := range order {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, hs := range servers {
				hs.listener.Close()
			}
			return nil, err
		}
		servers = append(servers, httpServer{server: &http.Server{Handler: muxes[addr], ReadHeaderTimeout: 10 * time.Second}, listener: ln})
		for path, a := range map[string]string{"/health": o.HealthAddress, "/ready": o.ReadyAddress, "/metrics": o.MetricsAddress} {
			if a == addr {
				s.http[path] = ln.Addr()
			}
		}
	}
	return servers, nil
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	_, overTCP := w.RemoteAddr().(*net.TCPAddr)
	qtype := "other"
	if len(req.Question) == 1 {
		qtype = dns.TypeToString[req.Question[0].Qtype]
	}
	proto, family := "udp", "1"
	if overTCP {
		proto = "tcp"
	}
	if ip := addrIP(w.RemoteAddr()); ip != nil && ip.To4() == nil {
		family = "2"
	}
	s.metrics.requests.WithLabelValues(s.label, ".", proto, family, qtype).Inc()

	resp, plugin := s.answer(req)
	if opt := req.IsEdns0(); opt != nil {
		fitEDNS(resp, opt)
	} else {
		dropOPT(resp)
	}
	if !overTCP {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		resp.Truncate(size)
	} else {
		resp.Compress = true
	}
	if err := w.WriteMsg(resp); err != nil {
		klog.V(4).InfoS("Writing a DNS response", "err", err, "client", w.RemoteAddr().String())
	}
	s.metrics.responses.WithLabelValues(s.label, ".", dns.RcodeToString[resp.Rcode], plugin).Inc()
	s.metrics.duration.WithLabelValues(s.label, ".", qtype).Observe(time.Since(start).Seconds())
}

// answer is the response to req and the part that gave it (the metrics'
// plugin label, CoreDNS's names).
func (s *Server) answer(req *dns.Msg) (*dns.Msg, string) {
	resp := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery {
		return resp.SetRcode(req, dns.RcodeNotImplemented), ""
	}
	if len(req.Question) != 1 {
		return resp.SetRcodeFormatError(req), ""
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if dns.IsSubDomain(s.zone.origin, name) {
		if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
			return resp.SetRcode(req, dns.RcodeRefused), "kubernetes"
		}
		if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
			// The zone is computed per query: no transfers (as CoreDNS's
			// kubernetes plugin without a transfer block).
			return resp.SetRcode(req, dns.RcodeRefused), "kubernetes"
		}
		if !s.Ready() {
			return resp.SetRcode(req, dns.RcodeServerFailure), "kubernetes"
		}
		res := s.zone.lookup(name, q.Name, q.Qtype)
		resp.SetRcode(req, res.rcode)
		resp.Answer, resp.Extra = res.answer, res.extra
		s.chase(req, resp, res.chase, q.Qtype)
		if len(resp.Answer) == 0 {
			resp.Ns = []dns.RR{s.zone.soa(s.zone.origin)}
		}
		resp.Authoritative, resp.RecursionAvailable = true, true
		return resp, "kubernetes"
	}
	if q.Qtype == dns.TypePTR && s.Ready() {
		if ip := reverseIP(name); ip != nil {
			if res, ok := s.zone.ptr(ip, q.Name); ok {
				resp.SetReply(req)
				resp.Answer = res.answer
				resp.Authoritative, resp.RecursionAvailable = true, true
				return resp, "kubernetes"
			}
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, forwardTimeout)
	defer cancel()
	fwd, err := s.forwarder.forward(ctx, req)
	if err != nil {
		klog.V(2).InfoS("Forwarding a DNS query failed", "name", q.Name, "type", dns.TypeToString[q.Qtype], "err", err)
		return resp.SetRcode(req, dns.RcodeServerFailure), "forward"
	}
	fwd.Id = req.Id
	fwd.Question = req.Question
	// Answered for the client, not by this server's authority.
	fwd.RecursionAvailable, fwd.Authoritative = true, false
	return fwd, "forward"
}

// chase resolves an ExternalName's CNAME target for the client, as a
// recursive resolver would: in the zone, or forwarded.
func (s *Server) chase(req, resp *dns.Msg, target string, qtype uint16) {
	for i := 0; target != "" && i < maxChase; i++ {
		if dns.IsSubDomain(s.zone.origin, target) {
			res := s.zone.lookup(target, target, qtype)
			resp.Answer = append(resp.Answer, res.answer...)
			target = res.chase
			continue
		}
		sub := new(dns.Msg)
		sub.SetQuestion(target, qtype)
		sub.CheckingDisabled = req.CheckingDisabled
		ctx, cancel := context.WithTimeout(s.ctx, forwardTimeout)
		fwd, err := s.forwarder.forward(ctx, sub)
		cancel()
		if err == nil {
			resp.Answer = append(resp.Answer, fwd.Answer...)
		}
		return
	}
}

// fitEDNS gives a response to an EDNS query this server's OPT (a
// forwarded or cached one may carry the upstream's, or none).
func fitEDNS(resp *dns.Msg, reqOPT *dns.OPT) {
	dropOPT(resp)
	resp.SetEdns0(ednsSize, reqOPT.Do())
}

// dropOPT: no OPT answers a query without one (RFC 6891).
func dropOPT(resp *dns.Msg) {
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
}

func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP
	case *net.TCPAddr:
		return a.IP
	}
	return nil
}

func serviceIPIndex(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, ip := range clusterIPs(svc) {
		keys = append(keys, ip.String())
	}
	return keys, nil
}

func sliceIPIndex(obj any) ([]string, error) {
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, ep := range slice.Endpoints {
		if len(ep.Addresses) > 0 {
			if ip := net.ParseIP(ep.Addresses[0]); ip != nil {
				keys = append(keys, ip.String())
			}
		}
	}
	return keys, nil
}

func sliceServiceIndex(obj any) ([]string, error) {
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := slice.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{slice.Namespace + "/" + name}, nil
}
