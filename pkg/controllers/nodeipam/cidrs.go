package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"sort"
	"strings"

	netutils "k8s.io/utils/net"
)

// Upstream's defaults for the node CIDR mask sizes (kube-controller-manager
// --node-cidr-mask-size-ipv4 and -ipv6).
const (
	DefaultNodeMaskIPv4 = 24
	DefaultNodeMaskIPv6 = 64
	// maxMaskDiff is upstream's limit on how many bits longer an IPv6 node
	// mask may be than its cluster CIDR's (its allocator keeps a bitmap).
	maxMaskDiff = 16
)

// ErrNoCIDRsRemaining: every node CIDR of a cluster CIDR is in use.
var ErrNoCIDRsRemaining = errors.New("CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range")

// Config is what the allocator cuts: each cluster CIDR into node CIDRs of
// the mask size at the same index.
type Config struct {
	ClusterCIDRs  []*net.IPNet
	NodeMaskSizes []int
}

// ParseConfig reads kube-controller-manager's --cluster-cidr (one CIDR or
// a dual-stack pair, comma separated) and --node-cidr-mask-size[-ipv4|-ipv6]
// (0: not given) and checks them as upstream does.
func ParseConfig(clusterCIDR string, maskSize, maskSizeIPv4, maskSizeIPv6 int) (Config, error) {
	if strings.TrimSpace(clusterCIDR) == "" {
		return Config{}, errors.New("--cluster-cidr must be given when --allocate-node-cidrs is set")
	}
	var cidrs []*net.IPNet
	for _, s := range strings.Split(strings.TrimSpace(clusterCIDR), ",") {
		_, cidr, err := netutils.ParseCIDRSloppy(strings.TrimSpace(s))
		if err != nil {
			return Config{}, fmt.Errorf("--cluster-cidr: invalid CIDR %q: %v", s, err)
		}
		cidrs = append(cidrs, cidr)
	}
	if len(cidrs) > 2 {
		return Config{}, fmt.Errorf("--cluster-cidr: %d CIDRs given, at most 2 (one of each IP family) are allowed", len(cidrs))
	}
	if len(cidrs) == 2 {
		if dual, _ := netutils.IsDualStackCIDRs(cidrs); !dual {
			return Config{}, fmt.Errorf("--cluster-cidr: %s and %s are not dual stack (one of each IP family)", cidrs[0], cidrs[1])
		}
	}
	masks, err := nodeMaskSizes(cidrs, maskSize, maskSizeIPv4, maskSizeIPv6)
	if err != nil {
		return Config{}, err
	}
	c := Config{ClusterCIDRs: cidrs, NodeMaskSizes: masks}
	return c, c.Validate()
}

// nodeMaskSizes are upstream's rules: --node-cidr-mask-size for one family
// only and not with the per-family flags; what is not given, the default.
func nodeMaskSizes(cidrs []*net.IPNet, maskSize, v4, v6 int) ([]int, error) {
	dual := len(cidrs) > 1
	single6 := !dual && netutils.IsIPv6CIDR(cidrs[0])
	switch {
	case dual && maskSize != 0:
		return nil, errors.New("usage of --node-cidr-mask-size is not allowed with dual-stack clusters")
	case maskSize != 0 && (v4 != 0 || v6 != 0):
		return nil, errors.New("usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not allowed if --node-cidr-mask-size is set. For dual-stack clusters please unset it and use IPFamily specific flags")
	case maskSize != 0:
		v4, v6 = maskSize, maskSize
	case !dual && single6 && v4 != 0:
		return nil, errors.New("usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster")
	case !dual && !single6 && v6 != 0:
		return nil, errors.New("usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster")
	}
	if v4 == 0 {
		v4 = DefaultNodeMaskIPv4
	}
	if v6 == 0 {
		v6 = DefaultNodeMaskIPv6
	}
	masks := make([]int, len(cidrs))
	for i, c := range cidrs {
		masks[i] = v4
		if netutils.IsIPv6CIDR(c) {
			masks[i] = v6
		}
	}
	return masks, nil
}

// Validate: one mask size per cluster CIDR, each no shorter than its
// cluster CIDR's prefix and no longer than the address; for IPv6 at most 16
// bits longer, as upstream.
func (c Config) Validate() error {
	if len(c.ClusterCIDRs) == 0 {
		return errors.New("no cluster CIDR")
	}
	if len(c.NodeMaskSizes) != len(c.ClusterCIDRs) {
		return fmt.Errorf("%d node CIDR mask sizes for %d cluster CIDRs", len(c.NodeMaskSizes), len(c.ClusterCIDRs))
	}
	for i, cidr := range c.ClusterCIDRs {
		prefix, bits := cidr.Mask.Size()
		mask := c.NodeMaskSizes[i]
		switch {
		case bits == 0:
			return fmt.Errorf("cluster CIDR %v has no valid mask", cidr)
		case mask < prefix:
			return fmt.Errorf("invalid --cluster-cidr %v: its mask size /%d must be less than or equal to the node CIDR mask size /%d (--node-cidr-mask-size*)", cidr, prefix, mask)
		case mask > bits:
			return fmt.Errorf("invalid node CIDR mask size /%d (--node-cidr-mask-size*) for cluster CIDR %v: longer than the address (%d bits)", mask, cidr, bits)
		case bits == 128 && mask-prefix > maxMaskDiff:
			return fmt.Errorf("invalid node CIDR mask size /%d (--node-cidr-mask-size*) for cluster CIDR %v: the node CIDR size is too big; for IPv6 it must be at most %d bits longer than the cluster CIDR's /%d", mask, cidr, maxMaskDiff, prefix)
		}
	}
	return nil
}

// cidrSet is one cluster CIDR cut into node CIDRs, numbered from 0.
type cidrSet struct {
	cluster    *net.IPNet
	prefix     int
	nodeMask   int
	bits       int
	max        uint64 // how many node CIDRs
	base       *big.Int
	nodeIPMask net.IPMask
}

func newCIDRSet(cluster *net.IPNet, nodeMask int) *cidrSet {
	prefix, bits := cluster.Mask.Size()
	ip := cluster.IP.Mask(cluster.Mask)
	if bits == 32 {
		ip = ip.To4()
	}
	return &cidrSet{cluster: &net.IPNet{IP: ip, Mask: cluster.Mask}, prefix: prefix, nodeMask: nodeMask, bits: bits,
		max: uint64(1) << uint(nodeMask-prefix), base: new(big.Int).SetBytes(ip), nodeIPMask: net.CIDRMask(nodeMask, bits)}
}

// family tells whether cidr is of this set's IP family.
func (s *cidrSet) family(cidr *net.IPNet) bool {
	return (cidr.IP.To4() != nil) == (s.bits == 32)
}

// block is node CIDR number i.
func (s *cidrSet) block(i uint64) *net.IPNet {
	n := new(big.Int).Lsh(new(big.Int).SetUint64(i), uint(s.bits-s.nodeMask))
	n.Or(n, s.base)
	ip := make(net.IP, s.bits/8)
	n.FillBytes(ip)
	return &net.IPNet{IP: ip, Mask: s.nodeIPMask}
}

// index is the number of the node CIDR holding ip, which is in the cluster
// CIDR.
func (s *cidrSet) index(ip net.IP) uint64 {
	if s.bits == 32 {
		ip = ip.To4()
	} else {
		ip = ip.To16()
	}
	n := new(big.Int).SetBytes(ip)
	n.Xor(n, s.base)
	n.Rsh(n, uint(s.bits-s.nodeMask))
	return n.Uint64()
}

// span is the node CIDRs that cidr covers, as upstream's allocator
// occupies them: a larger CIDR all it holds (the whole range if it holds
// the cluster CIDR), a smaller one the node CIDR it lies in. ok false: cidr
// does not overlap the cluster CIDR.
func (s *cidrSet) span(cidr *net.IPNet) (r interval, ok bool) {
	if !s.family(cidr) {
		return interval{}, false
	}
	prefix, _ := cidr.Mask.Size()
	if !s.cluster.Contains(cidr.IP) && !cidr.Contains(s.cluster.IP) {
		return interval{}, false
	}
	if prefix <= s.prefix {
		return interval{0, s.max - 1}, true
	}
	first := cidr.IP.Mask(cidr.Mask)
	if first == nil {
		return interval{}, false
	}
	last := make(net.IP, len(first))
	for i := range first {
		last[i] = first[i] | ^cidr.Mask[i]
	}
	return interval{s.index(first), s.index(last)}, true
}

// interval is node CIDRs from..to, both included.
type interval struct{ from, to uint64 }

// usedSet is the node CIDRs in use, as sorted disjoint intervals.
type usedSet []interval

func (u usedSet) normalize() usedSet {
	sort.Slice(u, func(i, j int) bool { return u[i].from < u[j].from })
	var out usedSet
	for _, r := range u {
		if n := len(out); n > 0 && r.from <= out[n-1].to+1 {
			out[n-1].to = max(out[n-1].to, r.to)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (u usedSet) count() uint64 {
	var n uint64
	for _, r := range u {
		n += r.to - r.from + 1
	}
	return n
}

// next is the first node CIDR at or after start, wrapping around, that u
// (normalized) does not hold. ok false: none is free.
func (u usedSet) next(start, max uint64) (uint64, bool) {
	if u.count() >= max {
		return 0, false
	}
	start %= max
	c := start
	for _, r := range u {
		if r.to < c {
			continue
		}
		if r.from > c {
			return c, true
		}
		c = r.to + 1
	}
	if c < max {
		return c, true
	}
	// Past the end: the first free one from the start of the range.
	c = 0
	for _, r := range u {
		if r.from > c {
			break
		}
		c = r.to + 1
	}
	return c, true
}
