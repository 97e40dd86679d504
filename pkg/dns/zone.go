package dns

import (
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	netutils "k8s.io/utils/net"
)

// SchemaVersion is the version of the Kubernetes DNS specification served
// in dns-version.<zone>.
const SchemaVersion = "1.1.0"

// Index names of the informers' indexers.
const (
	byIP      = "ip"
	byService = "service"
)

// zone answers the cluster domain from the informers' caches: records are
// computed per query (as CoreDNS's kubernetes plugin does), so an update
// is visible to the next query without a rebuild.
type zone struct {
	origin     string // lower-case FQDN, "cluster.local."
	ttl        uint32
	services   corelisters.ServiceLister
	serviceIPs cache.Indexer // services by cluster IP
	slices     cache.Indexer // EndpointSlices by service and by address
	namespaces corelisters.NamespaceLister
	// dnsService is the Service whose IPs ns.dns.<zone> resolves to.
	dnsService types.NamespacedName
	serial     func() uint32
}

// result is one lookup's answer; an empty answer is NXDOMAIN or NODATA
// (rcode says which), the caller adds the SOA.
type result struct {
	rcode  int
	answer []dns.RR
	extra  []dns.RR
	// chase is the CNAME target to resolve further (ExternalName).
	chase string
}

var (
	nxdomain = result{rcode: dns.RcodeNameError}
	nodata   = result{rcode: dns.RcodeSuccess}
)

// lookup answers qname (lower-case, under the zone) for qtype; owner is the
// name as asked, so that the answer keeps the client's case.
func (z *zone) lookup(qname, owner string, qtype uint16) result {
	rel := strings.TrimSuffix(strings.TrimSuffix(qname, z.origin), ".")
	var labels []string
	if rel != "" {
		labels = dns.SplitDomainName(rel)
	}
	switch {
	case len(labels) == 0:
		return z.apex(owner, qtype)
	case len(labels) == 1 && labels[0] == "dns-version":
		if qtype == dns.TypeTXT || qtype == dns.TypeANY {
			return result{answer: []dns.RR{&dns.TXT{Hdr: z.hdr(owner, dns.TypeTXT), Txt: []string{SchemaVersion}}}}
		}
		return nodata
	case len(labels) == 1 && labels[0] == "dns":
		return nodata
	case len(labels) == 2 && labels[0] == "ns" && labels[1] == "dns":
		svc, err := z.services.Services(z.dnsService.Namespace).Get(z.dnsService.Name)
		if err != nil {
			return nodata
		}
		return result{answer: z.addresses(owner, qtype, clusterIPs(svc))}
	case labels[len(labels)-1] == "svc":
		return z.service(labels[:len(labels)-1], owner, qtype)
	case labels[len(labels)-1] == "pod":
		return z.pod(labels[:len(labels)-1], owner, qtype)
	}
	return nxdomain
}

func (z *zone) apex(owner string, qtype uint16) result {
	var r result
	if qtype == dns.TypeSOA || qtype == dns.TypeANY {
		r.answer = append(r.answer, z.soa(owner))
	}
	if qtype == dns.TypeNS || qtype == dns.TypeANY {
		r.answer = append(r.answer, &dns.NS{Hdr: z.hdr(owner, dns.TypeNS), Ns: "ns.dns." + z.origin})
	}
	return r
}

// soa is the zone's SOA, also the authority of negative answers: its
// minimum (the negative TTL) is the records' TTL.
func (z *zone) soa(owner string) dns.RR {
	return &dns.SOA{Hdr: z.hdr(owner, dns.TypeSOA), Ns: "ns.dns." + z.origin, Mbox: "hostmaster." + z.origin,
		Serial: z.serial(), Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: z.ttl}
}

// service answers <labels>.svc.<zone>: labels are [svc ns],
// [hostname svc ns] or [_port _proto svc ns]; fewer are the
// names' parents (empty non-terminals while their namespace exists).
func (z *zone) service(labels []string, owner string, qtype uint16) result {
	n := len(labels)
	if n == 0 {
		return nodata
	}
	if n > 4 {
		// Search paths appended to a full name: fail fast.
		return nxdomain
	}
	ns := labels[n-1]
	if _, err := z.namespaces.Get(ns); err != nil {
		return nxdomain
	}
	if n == 1 {
		return nodata
	}
	svc, err := z.services.Services(ns).Get(labels[n-2])
	if err != nil {
		return nxdomain
	}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	external := svc.Spec.Type == corev1.ServiceTypeExternalName
	var eps []endpoint
	var ports []port
	if headless && !external {
		eps, ports = z.endpoints(svc)
		// The spec: a headless Service without ready endpoints is NXDOMAIN.
		if len(eps) == 0 {
			return nxdomain
		}
	} else {
		ports = servicePorts(svc)
	}
	switch {
	case n == 2 && external:
		target := dns.Fqdn(strings.ToLower(svc.Spec.ExternalName))
		r := result{answer: []dns.RR{&dns.CNAME{Hdr: z.hdr(owner, dns.TypeCNAME), Target: target}}}
		if qtype != dns.TypeCNAME {
			r.chase = target
		}
		return r
	case external:
		return nxdomain
	case n == 2 && qtype == dns.TypeSRV:
		// SRV of the Service's name: all its ports (as CoreDNS).
		return z.srv(owner, svc, headless, eps, ports)
	case n == 2 && headless:
		var ips []net.IP
		for _, ep := range eps {
			ips = append(ips, ep.ip)
		}
		return result{answer: shuffled(z.addresses(owner, qtype, ips))}
	case n == 2:
		return result{answer: z.addresses(owner, qtype, clusterIPs(svc))}
	case n == 3:
		if headless {
			var ips []net.IP
			for _, ep := range eps {
				if ep.host == labels[0] {
					ips = append(ips, ep.ip)
				}
			}
			if len(ips) > 0 {
				return result{answer: z.addresses(owner, qtype, ips)}
			}
		}
		// _<proto>.<svc>: the parent of SRV names.
		for _, p := range ports {
			if p.name != "" && "_"+p.proto == labels[0] {
				return nodata
			}
		}
		return nxdomain
	}
	// n == 4: _<port>._<proto>.<svc>.<ns>.
	var matched []port
	for _, p := range ports {
		if p.name != "" && "_"+p.name == labels[0] && "_"+p.proto == labels[1] {
			matched = append(matched, p)
		}
	}
	if len(matched) == 0 {
		return nxdomain
	}
	if qtype != dns.TypeSRV && qtype != dns.TypeANY {
		return nodata
	}
	return z.srv(owner, svc, headless, eps, matched)
}

// srv answers SRV records of ports: one per port targeting the Service's
// name, or, headless, one per port and endpoint targeting the endpoint's
// name; the targets' addresses go in the additional section.
func (z *zone) srv(owner string, svc *corev1.Service, headless bool, eps []endpoint, ports []port) result {
	var r result
	fqdn := svc.Name + "." + svc.Namespace + ".svc." + z.origin
	if !headless {
		for _, p := range ports {
			r.answer = append(r.answer, &dns.SRV{Hdr: z.hdr(owner, dns.TypeSRV), Priority: 0, Weight: weight(len(ports)), Port: uint16(p.port), Target: fqdn})
		}
		if len(r.answer) > 0 {
			r.extra = z.addresses(fqdn, dns.TypeANY, clusterIPs(svc))
		}
		return r
	}
	added := map[string]bool{}
	for _, p := range ports {
		for _, ep := range eps {
			target := ep.host + "." + fqdn
			r.answer = append(r.answer, &dns.SRV{Hdr: z.hdr(owner, dns.TypeSRV), Priority: 0, Weight: weight(len(eps)), Port: uint16(p.port), Target: target})
			if key := target + ep.ip.String(); !added[key] {
				added[key] = true
				r.extra = append(r.extra, z.addresses(target, dns.TypeANY, []net.IP{ep.ip})...)
			}
		}
	}
	return r
}

// pod answers <a-b-c-d>.<ns>.pod.<zone> with the address in the name,
// without looking for the pod (CoreDNS's "pods insecure"); its namespace
// must exist.
func (z *zone) pod(labels []string, owner string, qtype uint16) result {
	n := len(labels)
	if n == 0 {
		return nodata
	}
	if n > 2 {
		return nxdomain
	}
	if _, err := z.namespaces.Get(labels[n-1]); err != nil {
		return nxdomain
	}
	if n == 1 {
		return nodata
	}
	ip := dashedIP(labels[0])
	if ip == nil {
		return nxdomain
	}
	return result{answer: z.addresses(owner, qtype, []net.IP{ip})}
}

// ptr answers the reverse name of ip: the Services with that cluster IP
// and the ready endpoints of headless Services with that address. ok is
// false when the address is not the cluster's (the query is forwarded).
func (z *zone) ptr(ip net.IP, owner string) (result, bool) {
	var r result
	key := ip.String()
	svcs, _ := z.serviceIPs.ByIndex(byIP, key)
	for _, obj := range svcs {
		svc := obj.(*corev1.Service)
		r.answer = append(r.answer, &dns.PTR{Hdr: z.hdr(owner, dns.TypePTR), Ptr: svc.Name + "." + svc.Namespace + ".svc." + z.origin})
	}
	objs, _ := z.slices.ByIndex(byIP, key)
	seen := map[string]bool{}
	for _, obj := range objs {
		slice := obj.(*discoveryv1.EndpointSlice)
		svcName := slice.Labels[discoveryv1.LabelServiceName]
		svc, err := z.services.Services(slice.Namespace).Get(svcName)
		if err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			continue
		}
		for _, ep := range sliceEndpoints(svc, slice) {
			target := ep.host + "." + svc.Name + "." + svc.Namespace + ".svc." + z.origin
			if ep.ip.Equal(ip) && !seen[target] {
				seen[target] = true
				r.answer = append(r.answer, &dns.PTR{Hdr: z.hdr(owner, dns.TypePTR), Ptr: target})
			}
		}
	}
	return r, len(r.answer) > 0
}

// endpoint is a ready endpoint of a headless Service: its first address
// (the only one consumers use) and its hostname, the dashed address when
// it has none (as CoreDNS).
type endpoint struct {
	host string
	ip   net.IP
}

type port struct {
	name, proto string
	port        int32
}

// endpoints are a headless Service's ready endpoints (all of them with
// publishNotReadyAddresses) and its slices' ports, deduplicated across
// slices.
func (z *zone) endpoints(svc *corev1.Service) ([]endpoint, []port) {
	objs, _ := z.slices.ByIndex(byService, svc.Namespace+"/"+svc.Name)
	var eps []endpoint
	var ports []port
	seen := map[string]bool{}
	for _, obj := range objs {
		slice := obj.(*discoveryv1.EndpointSlice)
		for _, ep := range sliceEndpoints(svc, slice) {
			if key := ep.host + "/" + ep.ip.String(); !seen[key] {
				seen[key] = true
				eps = append(eps, ep)
			}
		}
		for _, p := range slice.Ports {
			if p.Port == nil {
				continue
			}
			sp := port{port: *p.Port, proto: "tcp"}
			if p.Name != nil {
				sp.name = *p.Name
			}
			if p.Protocol != nil {
				sp.proto = strings.ToLower(string(*p.Protocol))
			}
			if !slices.Contains(ports, sp) {
				ports = append(ports, sp)
			}
		}
	}
	return eps, ports
}

func sliceEndpoints(svc *corev1.Service, slice *discoveryv1.EndpointSlice) []endpoint {
	if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
		return nil
	}
	var eps []endpoint
	for _, ep := range slice.Endpoints {
		ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
		if (!ready && !svc.Spec.PublishNotReadyAddresses) || len(ep.Addresses) == 0 {
			continue
		}
		ip := net.ParseIP(ep.Addresses[0])
		if ip == nil {
			continue
		}
		host := dashed(ip)
		if ep.Hostname != nil && *ep.Hostname != "" {
			host = strings.ToLower(*ep.Hostname)
		}
		eps = append(eps, endpoint{host: host, ip: ip})
	}
	return eps
}

func servicePorts(svc *corev1.Service) []port {
	var ports []port
	for _, p := range svc.Spec.Ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		ports = append(ports, port{name: p.Name, proto: proto, port: p.Port})
	}
	return ports
}

func clusterIPs(svc *corev1.Service) []net.IP {
	list := svc.Spec.ClusterIPs
	if len(list) == 0 && svc.Spec.ClusterIP != "" {
		list = []string{svc.Spec.ClusterIP}
	}
	var ips []net.IP
	for _, s := range list {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}

// addresses are the A (qtype A) or AAAA (qtype AAAA) records of ips, both
// for ANY; none for other types (NODATA).
func (z *zone) addresses(owner string, qtype uint16, ips []net.IP) []dns.RR {
	var rrs []dns.RR
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			if qtype == dns.TypeA || qtype == dns.TypeANY {
				rrs = append(rrs, &dns.A{Hdr: z.hdr(owner, dns.TypeA), A: v4})
			}
		} else if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
			rrs = append(rrs, &dns.AAAA{Hdr: z.hdr(owner, dns.TypeAAAA), AAAA: ip})
		}
	}
	return rrs
}

func (z *zone) hdr(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: z.ttl}
}

// weight spreads SRV records of one priority evenly (as CoreDNS).
func weight(n int) uint16 {
	if n <= 1 {
		return 100
	}
	if w := 100 / n; w > 0 {
		return uint16(w)
	}
	return 1
}

// shuffled answers round-robin, as CoreDNS's loadbalance plugin.
func shuffled(rrs []dns.RR) []dns.RR {
	rand.Shuffle(len(rrs), func(i, j int) { rrs[i], rrs[j] = rrs[j], rrs[i] })
	return rrs
}

// dashed is an address as one DNS label: 10-1-2-3, fd00--1.
func dashed(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return strings.ReplaceAll(v4.String(), ".", "-")
	}
	return strings.ReplaceAll(ip.String(), ":", "-")
}

// dashedIP reads a dashed label back; nil if it is none.
func dashedIP(label string) net.IP {
	if ip := net.ParseIP(strings.ReplaceAll(label, "-", ".")); netutils.IsIPv4(ip) {
		return ip
	}
	if ip := net.ParseIP(strings.ReplaceAll(label, "-", ":")); netutils.IsIPv6(ip) {
		return ip
	}
	return nil
}

// reverseIP reads an in-addr.arpa or ip6.arpa name (lower-case FQDN);
// nil if it is neither a full IPv4 nor a full IPv6 reverse name.
func reverseIP(name string) net.IP {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return nil
		}
		slices.Reverse(labels)
		ip := net.ParseIP(strings.Join(labels, "."))
		if !netutils.IsIPv4(ip) {
			return nil
		}
		return ip
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		nibbles := strings.Split(rest, ".")
		if len(nibbles) != 32 {
			return nil
		}
		slices.Reverse(nibbles)
		var b strings.Builder
		for i, n := range nibbles {
			if len(n) != 1 || !strings.Contains("0123456789abcdef", n) {
				return nil
			}
			if i > 0 && i%4 == 0 {
				b.WriteByte(':')
			}
			b.WriteString(n)
		}
		return net.ParseIP(b.String())
	}
	return nil
}
