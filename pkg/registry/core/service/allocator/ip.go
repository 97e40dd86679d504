package allocator

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"net/netip"

	"k8s.io/apiserver/pkg/storage"
)

// IPs allocates the addresses of a service CIDR. The network address (and,
// for IPv4, the broadcast address) are never handed out.
type IPs struct {
	*Range
	cidr  netip.Prefix
	first netip.Addr
}

// NewIPs allocates from cidr, with its state under key in store.
func NewIPs(store storage.Interface, key string, cidr *net.IPNet) (*IPs, error) {
	prefix, err := netip.ParsePrefix(cidr.String())
	if err != nil {
		return nil, err
	}
	prefix = prefix.Masked()
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	size := new(big.Int).Lsh(big.NewInt(1), uint(hostBits))
	size.Sub(size, big.NewInt(1)) // the network address
	if prefix.Addr().Is4() {
		size.Sub(size, big.NewInt(1)) // the broadcast address
	}
	// Bound the bitmap for huge IPv6 ranges, as upstream does.
	if size.Cmp(big.NewInt(1<<16)) > 0 && prefix.Addr().Is6() {
		size = big.NewInt(1 << 16)
	}
	if size.Sign() <= 0 {
		return nil, fmt.Errorf("service CIDR %s has no usable addresses", cidr)
	}
	n := int(size.Int64())
	static := min(max(16, n/16), 256)
	if n < 16 {
		static = 0
	}
	return &IPs{Range: New(store, key, prefix.String(), n, static), cidr: prefix, first: prefix.Addr().Next()}, nil
}

// CIDR is the range allocated from.
func (a *IPs) CIDR() netip.Prefix { return a.cidr }

// IPv6 reports the family of the range.
func (a *IPs) IPv6() bool { return a.cidr.Addr().Is6() }

// Index maps ip to its item, or -1 when it is outside the range.
func (a *IPs) Index(ip string) int {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !a.cidr.Contains(addr) {
		return -1
	}
	offset := new(big.Int).Sub(new(big.Int).SetBytes(addr.AsSlice()), new(big.Int).SetBytes(a.first.AsSlice()))
	if offset.Sign() < 0 || offset.Cmp(big.NewInt(int64(a.Size()))) >= 0 {
		return -1
	}
	return int(offset.Int64())
}

// IP maps an item back to its address.
func (a *IPs) IP(i int) string {
	v := new(big.Int).Add(new(big.Int).SetBytes(a.first.AsSlice()), big.NewInt(int64(i)))
	b := v.FillBytes(make([]byte, len(a.first.AsSlice())))
	addr, _ := netip.AddrFromSlice(b)
	return addr.String()
}

// AllocateIP takes ip, with upstream's error messages.
func (a *IPs) AllocateIP(ctx context.Context, ip string) error {
	i := a.Index(ip)
	if i < 0 {
		return fmt.Errorf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, a.cidr)
	}
	if err := a.Allocate(ctx, i); err != nil {
		if err == ErrAllocated {
			return fmt.Errorf("provided IP is already allocated")
		}
		return err
	}
	return nil
}

// AllocateNextIP takes a free address.
func (a *IPs) AllocateNextIP(ctx context.Context) (string, error) {
	i, err := a.AllocateNext(ctx)
	if err == ErrFull {
		return "", fmt.Errorf("range is full")
	}
	return a.IP(i), err
}

// ReleaseIP frees ip if it belongs to the range.
func (a *IPs) ReleaseIP(ctx context.Context, ip string) error {
	if i := a.Index(ip); i >= 0 {
		return a.Release(ctx, i)
	}
	return nil
}

// MarkIPsUsed takes every address of ips that is in the range.
func (a *IPs) MarkIPsUsed(ctx context.Context, ips []string) error {
	var items []int
	for _, ip := range ips {
		if i := a.Index(ip); i >= 0 {
			items = append(items, i)
		}
	}
	return a.MarkUsed(ctx, items)
}
