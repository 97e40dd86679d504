package nodeipam

import (
	"net"
	"reflect"
	"strings"
	"testing"
)

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, c, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		cidr          string
		mask, v4, v6  int
		wantCIDRs     string
		wantMasks     []int
		wantErrSubstr string
	}{
		{cidr: "10.244.0.0/16", wantCIDRs: "10.244.0.0/16", wantMasks: []int{24}},
		{cidr: "10.244.0.0/16", mask: 26, wantCIDRs: "10.244.0.0/16", wantMasks: []int{26}},
		{cidr: "10.244.0.0/16", v4: 20, wantCIDRs: "10.244.0.0/16", wantMasks: []int{20}},
		{cidr: " 10.244.1.7/16 ", wantCIDRs: "10.244.0.0/16", wantMasks: []int{24}},
		{cidr: "10.244.0.0/24", wantCIDRs: "10.244.0.0/24", wantMasks: []int{24}},
		{cidr: "fd00:10:244::/48", wantCIDRs: "fd00:10:244::/48", wantMasks: []int{64}},
		{cidr: "10.244.0.0/16,fd00:10:244::/56", wantCIDRs: "10.244.0.0/16,fd00:10:244::/56", wantMasks: []int{24, 64}},
		{cidr: "fd00:10:244::/56,10.244.0.0/16", v4: 25, v6: 60, wantCIDRs: "fd00:10:244::/56,10.244.0.0/16", wantMasks: []int{60, 25}},
		{cidr: "10.8.0.0/8", mask: 30, wantCIDRs: "10.0.0.0/8", wantMasks: []int{30}},

		{cidr: "", wantErrSubstr: "--cluster-cidr must be given"},
		{cidr: "10.244.0.0", wantErrSubstr: "invalid CIDR"},
		{cidr: "10.244.0.0/33", wantErrSubstr: "invalid CIDR"},
		{cidr: "10.244.0.0/16,10.245.0.0/16", wantErrSubstr: "not dual stack"},
		{cidr: "10.244.0.0/16,fd00::/48,10.1.0.0/16", wantErrSubstr: "at most 2"},
		{cidr: "10.244.0.0/16", mask: 8, wantErrSubstr: "must be less than or equal to the node CIDR mask size"},
		{cidr: "10.244.0.0/16", mask: 33, wantErrSubstr: "longer than the address"},
		{cidr: "fd00::/48", v6: 65, wantErrSubstr: "too big"},
		{cidr: "fd00::/48", mask: 129, wantErrSubstr: "longer than the address"},
		{cidr: "10.244.0.0/16,fd00::/48", mask: 24, wantErrSubstr: "not allowed with dual-stack"},
		{cidr: "10.244.0.0/16", mask: 24, v4: 24, wantErrSubstr: "not allowed if --node-cidr-mask-size is set"},
		{cidr: "fd00::/48", v4: 24, wantErrSubstr: "single-stack IPv6"},
		{cidr: "10.244.0.0/16", v6: 64, wantErrSubstr: "single-stack IPv4"},
	} {
		c, err := ParseConfig(tc.cidr, tc.mask, tc.v4, tc.v6)
		if tc.wantErrSubstr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
				t.Errorf("%q %d/%d/%d: error %v, want one with %q", tc.cidr, tc.mask, tc.v4, tc.v6, err, tc.wantErrSubstr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q %d/%d/%d: %v", tc.cidr, tc.mask, tc.v4, tc.v6, err)
			continue
		}
		var got []string
		for _, n := range c.ClusterCIDRs {
			got = append(got, n.String())
		}
		if strings.Join(got, ",") != tc.wantCIDRs || !reflect.DeepEqual(c.NodeMaskSizes, tc.wantMasks) {
			t.Errorf("%q %d/%d/%d: %v %v, want %s %v", tc.cidr, tc.mask, tc.v4, tc.v6, got, c.NodeMaskSizes, tc.wantCIDRs, tc.wantMasks)
		}
	}
}

func TestCIDRSetBlocksAndSpans(t *testing.T) {
	v4 := newCIDRSet(mustCIDR(t, "10.244.0.0/16"), 24)
	if v4.max != 256 {
		t.Fatalf("max %d", v4.max)
	}
	for i, want := range map[uint64]string{0: "10.244.0.0/24", 1: "10.244.1.0/24", 255: "10.244.255.0/24"} {
		if got := v4.block(i).String(); got != want {
			t.Errorf("block %d: %s, want %s", i, got, want)
		}
	}
	v6 := newCIDRSet(mustCIDR(t, "fd00:10:244::/56"), 64)
	for i, want := range map[uint64]string{0: "fd00:10:244::/64", 1: "fd00:10:244:1::/64", 255: "fd00:10:244:ff::/64"} {
		if got := v6.block(i).String(); got != want {
			t.Errorf("v6 block %d: %s, want %s", i, got, want)
		}
	}
	// Across the 64-bit halves of an IPv6 address.
	v6b := newCIDRSet(mustCIDR(t, "fd00:0:0:fff0::/60"), 72)
	if got := v6b.block(0x1ff).String(); got != "fd00:0:0:fff1:ff00::/72" {
		t.Errorf("v6 block 0x1ff: %s", got)
	}
	for _, tc := range []struct {
		set      *cidrSet
		cidr     string
		from, to uint64
		ok       bool
	}{
		{v4, "10.244.3.0/24", 3, 3, true},
		{v4, "10.244.3.128/25", 3, 3, true}, // smaller: the node CIDR it is in
		{v4, "10.244.4.0/23", 4, 5, true},   // larger: all it holds
		{v4, "10.244.0.0/16", 0, 255, true},
		{v4, "10.0.0.0/8", 0, 255, true},
		{v4, "10.245.0.0/24", 0, 0, false},
		{v4, "fd00:10:244::/64", 0, 0, false},
		{v6, "fd00:10:244:7::/64", 7, 7, true},
		{v6, "10.244.7.0/24", 0, 0, false},
		{v6, "fd00:10:245::/64", 0, 0, false},
	} {
		r, ok := tc.set.span(mustCIDR(t, tc.cidr))
		if ok != tc.ok || (ok && (r.from != tc.from || r.to != tc.to)) {
			t.Errorf("span %s in %s: %v %v, want %d-%d %v", tc.cidr, tc.set.cluster, r, ok, tc.from, tc.to, tc.ok)
		}
	}
}

func TestUsedSetNext(t *testing.T) {
	u := usedSet{{5, 6}, {0, 1}, {2, 2}, {9, 9}}.normalize()
	if want := (usedSet{{0, 2}, {5, 6}, {9, 9}}); !reflect.DeepEqual(u, want) {
		t.Fatalf("normalize: %v, want %v", u, want)
	}
	for _, tc := range []struct {
		start, max, want uint64
		ok               bool
	}{
		{0, 10, 3, true},
		{3, 10, 3, true},
		{5, 10, 7, true},
		{8, 10, 8, true},
		{9, 10, 3, true},  // wraps round
		{10, 10, 3, true}, // start past the end
	} {
		got, ok := u.next(tc.start, tc.max)
		if got != tc.want || ok != tc.ok {
			t.Errorf("next(%d, %d): %d %v, want %d %v", tc.start, tc.max, got, ok, tc.want, tc.ok)
		}
	}
	full := usedSet{{0, 3}, {4, 4}}.normalize()
	if _, ok := full.next(2, 5); ok {
		t.Error("a full range gave a CIDR")
	}
	if got, ok := (usedSet{}).next(0, 1); !ok || got != 0 {
		t.Errorf("an empty range of one: %d %v", got, ok)
	}
}
