package allocator

import (
	"net"
	"testing"
)

func TestIPIndexRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		cidr       string
		first      string
		last       string
		size       int
		outOfRange []string
	}{
		{"10.96.0.0/12", "10.96.0.1", "10.111.255.254", 1<<20 - 2, []string{"10.96.0.0", "10.111.255.255", "10.112.0.1", "bogus"}},
		{"192.168.1.0/29", "192.168.1.1", "192.168.1.6", 6, []string{"192.168.1.0", "192.168.1.7"}},
		{"fd00::/120", "fd00::1", "fd00::ff", 255, []string{"fd00::", "fd00::100"}},
	} {
		_, cidr, err := net.ParseCIDR(tc.cidr)
		if err != nil {
			t.Fatal(err)
		}
		ips, err := NewIPs(nil, "/ranges/test", cidr)
		if err != nil {
			t.Fatal(err)
		}
		if ips.Size() != tc.size {
			t.Errorf("%s: size %d, want %d", tc.cidr, ips.Size(), tc.size)
		}
		if got := ips.IP(0); got != tc.first {
			t.Errorf("%s: item 0 is %s, want %s", tc.cidr, got, tc.first)
		}
		if got := ips.IP(ips.Size() - 1); got != tc.last {
			t.Errorf("%s: last item is %s, want %s", tc.cidr, got, tc.last)
		}
		for i := 0; i < ips.Size(); i += 1 + ips.Size()/7 {
			if back := ips.Index(ips.IP(i)); back != i {
				t.Errorf("%s: Index(IP(%d)) = %d", tc.cidr, i, back)
			}
		}
		for _, ip := range tc.outOfRange {
			if i := ips.Index(ip); i != -1 {
				t.Errorf("%s: %s maps to %d, want out of range", tc.cidr, ip, i)
			}
		}
	}
}

func TestFindFreePrefersTheDynamicBand(t *testing.T) {
	r := &Range{size: 64, staticBand: 16}
	bits := make(bitmap, 8)
	for i := 0; i < 100; i++ {
		got, ok := r.findFree(bits)
		if !ok || got < 16 {
			t.Fatalf("picked %d (ok=%v) while the dynamic band had room", got, ok)
		}
	}
	for i := 16; i < 64; i++ {
		bits.set(i)
	}
	got, ok := r.findFree(bits)
	if !ok || got >= 16 {
		t.Fatalf("picked %d (ok=%v); the static band is the fallback", got, ok)
	}
	for i := 0; i < 16; i++ {
		bits.set(i)
	}
	if _, ok := r.findFree(bits); ok {
		t.Fatal("a full range reported a free item")
	}
}

func TestBitmap(t *testing.T) {
	bits := make(bitmap, 2)
	bits.set(3)
	bits.set(9)
	if !bits.has(3) || !bits.has(9) || bits.has(4) {
		t.Fatalf("set/has broken: %08b", bits)
	}
	bits.clear(3)
	if bits.has(3) || !bits.has(9) {
		t.Fatalf("clear broken: %08b", bits)
	}
}
