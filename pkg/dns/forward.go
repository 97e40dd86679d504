package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Cache bounds, as CoreDNS's cache plugin: answers are kept for their own
// TTL up to these, negative answers for their SOA's minimum.
const (
	maxPositiveTTL = time.Hour
	maxNegativeTTL = 30 * time.Minute
	// DefaultCacheSize is how many forwarded answers are kept.
	DefaultCacheSize = 10000
	upstreamTimeout  = 2 * time.Second
)

// forwarder sends names outside the cluster to the upstream resolvers, one
// after another until one answers, and caches their answers.
type forwarder struct {
	upstreams []string // host:port
	udp, tcp  *dns.Client
	cache     *answerCache
	metrics   *metrics
}

func newForwarder(upstreams []string, cacheSize int, m *metrics) *forwarder {
	return &forwarder{
		upstreams: upstreams,
		udp:       &dns.Client{Net: "udp", Timeout: upstreamTimeout, UDPSize: dns.DefaultMsgSize},
		tcp:       &dns.Client{Net: "tcp", Timeout: upstreamTimeout},
		cache:     newAnswerCache(cacheSize),
		metrics:   m,
	}
}

// forward answers req from the cache or the upstreams; nil, err when none
// answered (the caller answers SERVFAIL).
func (f *forwarder) forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	key := cacheKey(req)
	if resp := f.cache.get(key, time.Now()); resp != nil {
		f.metrics.cacheHits.Inc()
		return resp, nil
	}
	f.metrics.cacheMisses.Inc()
	if len(f.upstreams) == 0 {
		return nil, errors.New("no upstream resolvers")
	}
	out := req.Copy()
	out.Id = dns.Id()
	var errs []error
	for _, up := range f.upstreams {
		f.metrics.forwardRequests.WithLabelValues(up).Inc()
		resp, _, err := f.udp.ExchangeContext(ctx, out, up)
		if err == nil && resp.Truncated {
			// The whole answer over TCP: cached once, truncated per client.
			resp, _, err = f.tcp.ExchangeContext(ctx, out, up)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", up, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		f.metrics.forwardResponses.WithLabelValues(up, dns.RcodeToString[resp.Rcode]).Inc()
		f.cache.put(key, resp, time.Now())
		return resp, nil
	}
	return nil, errors.Join(errs...)
}

// cacheKey tells apart what changes an answer: the name (case-folded),
// type, class and the DNSSEC bits.
func cacheKey(req *dns.Msg) string {
	q := req.Question[0]
	var b strings.Builder
	b.WriteString(strings.ToLower(q.Name))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(int(q.Qtype)))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(int(q.Qclass)))
	if opt := req.IsEdns0(); opt != nil && opt.Do() {
		b.WriteString("/do")
	}
	if req.CheckingDisabled {
		b.WriteString("/cd")
	}
	return b.String()
}

// answerCache holds forwarded answers until their TTL ends.
type answerCache struct {
	mu      sync.Mutex
	size    int
	entries map[string]cached
}

type cached struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

func newAnswerCache(size int) *answerCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &answerCache{size: size, entries: map[string]cached{}}
}

// get is a copy of a live entry, its TTLs lowered by its age; nil if none.
func (c *answerCache) get(key string, now time.Time) *dns.Msg {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && !now.Before(e.expires) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	msg := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, section := range [][]dns.RR{msg.Answer, msg.Ns, msg.Extra} {
		for _, rr := range section {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			if h := rr.Header(); h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return msg
}

// put keeps an answer for its TTL: NOERROR with records for their least
// TTL, NXDOMAIN and NODATA for their SOA's; others (SERVFAIL, REFUSED,
// truncated) are not kept.
func (c *answerCache) put(key string, msg *dns.Msg, now time.Time) {
	ttl, ok := cacheTTL(msg)
	if !ok || ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[key]; !exists && len(c.entries) >= c.size {
		// Full: an arbitrary entry makes room (map order is random).
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cached{msg: msg.Copy(), stored: now, expires: now.Add(ttl)}
}

func cacheTTL(msg *dns.Msg) (time.Duration, bool) {
	if msg.Truncated {
		return 0, false
	}
	negative := msg.Rcode == dns.RcodeNameError || (msg.Rcode == dns.RcodeSuccess && len(msg.Answer) == 0)
	if msg.Rcode != dns.RcodeSuccess && !negative {
		return 0, false
	}
	if negative {
		for _, rr := range msg.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl := min(soa.Hdr.Ttl, soa.Minttl)
				return min(time.Duration(ttl)*time.Second, maxNegativeTTL), true
			}
		}
		return 0, false
	}
	least := uint32(0)
	first := true
	for _, section := range [][]dns.RR{msg.Answer, msg.Ns} {
		for _, rr := range section {
			if first || rr.Header().Ttl < least {
				least, first = rr.Header().Ttl, false
			}
		}
	}
	return min(time.Duration(least)*time.Second, maxPositiveTTL), true
}

// Upstreams are the resolvers of a resolv.conf, or the given servers
// (host or host:port, port 53 by default), without the address this
// server listens on (forwarding to itself would loop).
func Upstreams(servers []string, resolvConf string, self *net.UDPAddr) ([]string, error) {
	if len(servers) == 0 {
		cfg, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("reading the upstream resolvers from %s: %w", resolvConf, err)
		}
		for _, s := range cfg.Servers {
			servers = append(servers, net.JoinHostPort(s, cfg.Port))
		}
	}
	var out []string
	for _, s := range servers {
		hostPort := s
		if _, _, err := net.SplitHostPort(s); err != nil {
			hostPort = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		host, portText, err := net.SplitHostPort(hostPort)
		ip := net.ParseIP(host)
		if err != nil || ip == nil {
			return nil, fmt.Errorf("upstream %q is not an IP address with an optional port", s)
		}
		if self != nil && isSelf(ip, portText, self) {
			continue
		}
		out = append(out, hostPort)
	}
	return out, nil
}

func isSelf(ip net.IP, port string, self *net.UDPAddr) bool {
	if port != strconv.Itoa(self.Port) {
		return false
	}
	if ip.Equal(self.IP) {
		return true
	}
	if !self.IP.IsUnspecified() {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
