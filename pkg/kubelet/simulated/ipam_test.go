package simulated

import (
	"errors"
	"net/netip"
	"testing"
)

func TestDefaultPodCIDR(t *testing.T) {
	for i, want := range map[int]string{0: "10.88.0.0/24", 1: "10.88.1.0/24", 256: "10.89.0.0/24", 2047: "10.95.255.0/24", 2048: "10.88.0.0/24"} {
		if got := defaultPodCIDR(i).String(); got != want {
			t.Errorf("node %d: %s, want %s", i, got, want)
		}
	}
}

func TestAllocatorRoundRobinNeverTwice(t *testing.T) {
	a, err := newAllocator([]netip.Prefix{netip.MustParsePrefix("10.244.1.0/29")})
	if err != nil {
		t.Fatal(err)
	}
	// .0 network, .1 gateway, .7 broadcast: .2 to .6.
	var got []netip.Addr
	for range 5 {
		ips, err := a.allocate(nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ips[0])
	}
	if got[0].String() != "10.244.1.2" || got[4].String() != "10.244.1.6" {
		t.Errorf("allocated %v, want .2 to .6", got)
	}
	if _, err := a.allocate(nil); !errors.Is(err, errRangeFull) {
		t.Errorf("full range: %v", err)
	}
	a.release([]netip.Addr{got[1]})
	ips, err := a.allocate(nil)
	if err != nil || ips[0] != got[1] {
		t.Errorf("after releasing %s got %v %v", got[1], ips, err)
	}
	// Round robin: .4 freed after .3 was handed out again comes next
	// only after the others.
	a.release([]netip.Addr{got[2], got[0]})
	ips, _ = a.allocate(nil)
	if ips[0] != got[2] {
		t.Errorf("round robin: got %v, want %s", ips, got[2])
	}
}

func TestAllocatorDualStackAndReserve(t *testing.T) {
	a, err := newAllocator([]netip.Prefix{netip.MustParsePrefix("10.244.0.0/24"), netip.MustParsePrefix("fd00:10:244::/64")})
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddr("10.244.0.77")
	ips, err := a.allocate([]netip.Addr{want})
	if err != nil || len(ips) != 2 || ips[0] != want || ips[1].String() != "fd00:10:244::2" {
		t.Fatalf("dual stack: %v %v", ips, err)
	}
	// Taken: another pod wanting it gets another address.
	other, _ := a.allocate([]netip.Addr{want})
	if other[0] == want {
		t.Errorf("%s handed out twice", want)
	}
	if _, err := newAllocator([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/31")}); err == nil {
		t.Error("a /31 accepted")
	}
}
