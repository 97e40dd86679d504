package simulated

import (
	"errors"
	"fmt"
	"net/netip"
)

// defaultPodRange is where a simulated node's pod IPs come from when it
// does not take them from its spec.podCIDRs: node i gets the i-th /24 of
// 10.88.0.0/13 (10.88.0.0/24, 10.88.1.0/24, ...; podman's 10.88.0.0/16
// extended to 2048 nodes, then again from the start).
var defaultPodRange = netip.MustParsePrefix("10.88.0.0/13")

// defaultPodCIDR is node i's /24 of defaultPodRange.
func defaultPodCIDR(i int) netip.Prefix {
	blocks := 1 << (24 - defaultPodRange.Bits())
	b := defaultPodRange.Addr().As4()
	n := i % blocks
	b[1] += byte(n >> 8)
	b[2] = byte(n)
	return netip.PrefixFrom(netip.AddrFrom4(b), 24)
}

// errRangeFull: every address of a range is taken.
var errRangeFull = errors.New("no free pod IP")

// ipRange hands out a CIDR's addresses round-robin, as the host-local
// CNI plugin does, so an address just freed is not reused at once. The
// network address and the first host (the gateway) are never handed out,
// nor an IPv4 broadcast address.
type ipRange struct {
	prefix      netip.Prefix
	first, last netip.Addr
	next        netip.Addr
	used        map[netip.Addr]bool
}

func newIPRange(p netip.Prefix) (*ipRange, error) {
	p = p.Masked()
	first := p.Addr().Next().Next()
	last := lastAddr(p)
	if p.Addr().Is4() {
		last = last.Prev()
	}
	if !first.IsValid() || !p.Contains(first) || !last.IsValid() || last.Less(first) {
		return nil, fmt.Errorf("pod CIDR %s is too small", p)
	}
	return &ipRange{prefix: p, first: first, last: last, next: first, used: map[netip.Addr]bool{}}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		hostBits := len(b)*8 - p.Bits() - (len(b)-1-i)*8
		switch {
		case hostBits >= 8:
			b[i] = 0xff
		case hostBits > 0:
			b[i] |= byte(1<<hostBits - 1)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (r *ipRange) allocate() (netip.Addr, error) {
	start := r.next
	for a := start; ; {
		if !r.used[a] {
			r.used[a] = true
			r.next = r.step(a)
			return a, nil
		}
		if a = r.step(a); a == start {
			return netip.Addr{}, fmt.Errorf("%w in %s", errRangeFull, r.prefix)
		}
	}
}

func (r *ipRange) step(a netip.Addr) netip.Addr {
	if a == r.last {
		return r.first
	}
	return a.Next()
}

// reserve takes a known address (a pod the agent finds running after a
// restart); false if it is outside the range or taken.
func (r *ipRange) reserve(a netip.Addr) bool {
	if !r.prefix.Contains(a) || a.Less(r.first) || r.last.Less(a) || r.used[a] {
		return false
	}
	r.used[a] = true
	return true
}

func (r *ipRange) release(a netip.Addr) { delete(r.used, a) }

// allocator gives a pod one address of each of the node's CIDRs (one per
// IP family: dual stack).
type allocator struct {
	ranges []*ipRange
}

func newAllocator(cidrs []netip.Prefix) (*allocator, error) {
	a := &allocator{}
	for _, c := range cidrs {
		r, err := newIPRange(c)
		if err != nil {
			return nil, err
		}
		a.ranges = append(a.ranges, r)
	}
	if len(a.ranges) == 0 {
		return nil, errors.New("no pod CIDR")
	}
	return a, nil
}

// allocate hands out the pod's addresses; want are addresses the pod had
// (after a restart), kept when still free.
func (a *allocator) allocate(want []netip.Addr) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, r := range a.ranges {
		var got netip.Addr
		for _, w := range want {
			if w.Is4() == r.prefix.Addr().Is4() && r.reserve(w) {
				got = w
				break
			}
		}
		if !got.IsValid() {
			var err error
			if got, err = r.allocate(); err != nil {
				a.release(out)
				return nil, err
			}
		}
		out = append(out, got)
	}
	return out, nil
}

// reserve marks addr taken in the range holding it, if any.
func (a *allocator) reserve(addr netip.Addr) {
	for _, r := range a.ranges {
		r.reserve(addr)
	}
}

func (a *allocator) release(addrs []netip.Addr) {
	for _, addr := range addrs {
		for _, r := range a.ranges {
			if r.prefix.Contains(addr) {
				r.release(addr)
			}
		}
	}
}
