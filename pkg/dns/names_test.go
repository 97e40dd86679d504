package dns

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestReverseIP(t *testing.T) {
	for name, want := range map[string]string{
		"1.0.96.10.in-addr.arpa.": "10.96.0.1",
		"9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.": "fd00::9",
		"0.96.10.in-addr.arpa.":     "",
		"1.0.96.300.in-addr.arpa.":  "",
		"x.0.96.10.in-addr.arpa.":   "",
		"1.2.ip6.arpa.":             "",
		"example.org.":              "",
		"1.0.96.10.in-addr.arpa.x.": "",
	} {
		got := reverseIP(name)
		if (got == nil && want != "") || (got != nil && got.String() != want) {
			t.Errorf("reverseIP(%q) = %v, want %q", name, got, want)
		}
	}
}

func TestDashed(t *testing.T) {
	for _, s := range []string{"10.244.1.5", "fd00::9", "2001:db8::1:2"} {
		ip := net.ParseIP(s)
		label := dashed(ip)
		if back := dashedIP(label); !back.Equal(ip) {
			t.Errorf("dashed(%s) = %q reads back as %v", s, label, back)
		}
	}
	for _, label := range []string{"web", "10-244-1", "10-244-1-5-6", "a-b-c-d"} {
		if ip := dashedIP(label); ip != nil {
			t.Errorf("dashedIP(%q) = %v, want none", label, ip)
		}
	}
}

func TestUpstreams(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nnameserver 192.0.2.1\nnameserver 127.0.0.1\nnameserver fd00::53\nsearch example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Upstreams(nil, conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.1:53", "127.0.0.1:53", "[fd00::53]:53"}; !slices.Equal(got, want) {
		t.Errorf("from resolv.conf: %v, want %v", got, want)
	}
	// Listening on 0.0.0.0:53, the loopback resolver would be this server.
	got, _ = Upstreams(nil, conf, &net.UDPAddr{IP: net.IPv4zero, Port: 53})
	if want := []string{"192.0.2.1:53", "[fd00::53]:53"}; !slices.Equal(got, want) {
		t.Errorf("without itself: %v, want %v", got, want)
	}
	got, _ = Upstreams([]string{"192.0.2.7", "192.0.2.8:5353", "[fd00::1]"}, conf, nil)
	if want := []string{"192.0.2.7:53", "192.0.2.8:5353", "[fd00::1]:53"}; !slices.Equal(got, want) {
		t.Errorf("given: %v, want %v", got, want)
	}
	if _, err := Upstreams([]string{"dns.example.org"}, conf, nil); err == nil {
		t.Error("a host name upstream: no error")
	}
	if _, err := Upstreams(nil, filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("a missing resolv.conf: no error")
	}
}

func TestAnswerCache(t *testing.T) {
	c := newAnswerCache(2)
	now := time.Now()
	q := new(dns.Msg)
	q.SetQuestion("Example.org.", dns.TypeA)
	ok := new(dns.Msg)
	ok.SetReply(q)
	ok.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.1")}}
	c.put(cacheKey(q), ok, now)
	got := c.get(cacheKey(q), now.Add(20*time.Second))
	if got == nil || got.Answer[0].Header().Ttl != 40 {
		t.Fatalf("after 20s: %v, want the answer with TTL 40", got)
	}
	if c.get(cacheKey(q), now.Add(60*time.Second)) != nil {
		t.Error("after its TTL: still cached")
	}

	// Negative answers live for their SOA's minimum; SERVFAIL not at all.
	neg := new(dns.Msg)
	neg.SetRcode(q, dns.RcodeNameError)
	neg.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "org.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 900}, Minttl: 10}}
	if ttl, ok := cacheTTL(neg); !ok || ttl != 10*time.Second {
		t.Errorf("NXDOMAIN: %v %v, want 10s", ttl, ok)
	}
	neg.Ns = nil
	if _, ok := cacheTTL(neg); ok {
		t.Error("NXDOMAIN without SOA: cached")
	}
	fail := new(dns.Msg)
	fail.SetRcode(q, dns.RcodeServerFailure)
	if _, ok := cacheTTL(fail); ok {
		t.Error("SERVFAIL: cached")
	}

	// Bounded: a third name evicts one.
	for _, name := range []string{"a.org.", "b.org.", "c.org."} {
		k := new(dns.Msg)
		k.SetQuestion(name, dns.TypeA)
		c.put(cacheKey(k), ok, now)
	}
	if n := len(c.entries); n != 2 {
		t.Errorf("%d entries, want at most 2", n)
	}
}
