package podnetwork

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, cidrs []string, ips ...string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}, Spec: v1.NodeSpec{PodCIDRs: cidrs}}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
	return n
}

func TestPlan(t *testing.T) {
	self := node("a", []string{"10.1.1.0/24", "fd00:1::/64"}, "192.168.1.1", "fd99::1")
	same := node("b", []string{"10.1.2.0/24", "fd00:2::/64"}, "192.168.1.2", "fd99::2")
	far := node("c", []string{"10.1.3.0/24", "fd00:3::/64"}, "172.16.0.3")
	far.Annotations[VTEPMACAnnotation] = "0a:00:00:00:00:03"
	farNoMAC := node("d", []string{"10.1.4.0/24"}, "172.16.0.4")
	overlap := node("e", []string{"10.1.1.128/25"}, "192.168.1.5")
	dup := node("f", []string{"10.1.2.0/24"}, "192.168.1.6")
	gone := node("g", []string{"10.1.7.0/24"}, "192.168.1.7")
	gone.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	legacy := node("h", nil, "192.168.1.8")
	legacy.Spec.PodCIDR = "10.1.8.0/24"

	connected := func(ip netip.Addr) (int, bool) {
		if netip.MustParsePrefix("192.168.1.0/24").Contains(ip) || netip.MustParsePrefix("fd99::/64").Contains(ip) {
			return 2, true
		}
		return 0, false
	}
	vtep := &vtepDevice{index: 9, mac: net.HardwareAddr{0x0a, 0, 0, 0, 0, 1}, underlay: netip.MustParseAddr("192.168.1.1")}
	p := planFor(self, []*v1.Node{self, same, far, farNoMAC, overlap, dup, gone, legacy}, connected, vtep)

	var got []string
	for _, r := range p.routes {
		got = append(got, r.dst.String()+" via "+r.gw.String()+" dev "+map[int]string{2: "eth", 9: "vxlan"}[r.link]+map[bool]string{true: " onlink"}[r.onlink])
	}
	want := []string{
		"10.1.2.0/24 via 192.168.1.2 dev eth",
		"fd00:2::/64 via fd99::2 dev eth",
		"10.1.3.0/24 via 10.1.3.0 dev vxlan onlink",
		// c has no IPv6 InternalIP: its IPv6 pods go through the IPv4 underlay.
		"fd00:3::/64 via fd00:3:: dev vxlan onlink",
		"10.1.8.0/24 via 192.168.1.8 dev eth",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(p.peers) != 2 || p.peers[0].underlay.String() != "172.16.0.3" || p.peers[0].mac.String() != "0a:00:00:00:00:03" {
		t.Errorf("peers %+v, want c's MAC behind 172.16.0.3 (twice: IPv4 and IPv6 gateways)", p.peers)
	}
	skipped := map[string]string{}
	for _, s := range p.skipped {
		skipped[s.node] = s.reason
	}
	for name, want := range map[string]string{"d": "annotation", "e": "overlaps", "f": "also the podCIDR of node b"} {
		if !strings.Contains(skipped[name], want) {
			t.Errorf("node %s skipped for %q, want a reason with %q", name, skipped[name], want)
		}
	}
	if _, ok := skipped["g"]; ok || len(p.skipped) != 3 {
		t.Errorf("skipped %v, want d, e and f only (g is being deleted)", skipped)
	}

	// Without VXLAN, the far nodes are skipped.
	p = planFor(self, []*v1.Node{self, same, far}, connected, nil)
	if len(p.routes) != 2 || len(p.peers) != 0 || len(p.skipped) != 2 {
		t.Errorf("host-gw only: %d routes, %d peers, %d skipped; want 2, 0, 2", len(p.routes), len(p.peers), len(p.skipped))
	}
}

func TestVTEPMACIsStableLocalUnicast(t *testing.T) {
	m := vtepMAC("node-1")
	if m.String() != vtepMAC("node-1").String() || m.String() == vtepMAC("node-2").String() {
		t.Errorf("vtepMAC not a function of the node name: %s", m)
	}
	if m[0]&0x02 == 0 || m[0]&0x01 != 0 {
		t.Errorf("%s is not a locally administered unicast address", m)
	}
}

func TestOptionsRejects(t *testing.T) {
	for name, o := range map[string]Options{
		"no node":           {ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		"no cluster CIDR":   {NodeName: "a"},
		"two IPv4 CIDRs":    {NodeName: "a", ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12")}},
		"VNI out of range":  {NodeName: "a", ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, VNI: 1 << 24},
		"port out of range": {NodeName: "a", ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, VXLANPort: 70000},
		"invalid CIDR":      {NodeName: "a", ClusterCIDRs: []netip.Prefix{{}}},
		"negative resync":   {NodeName: "a", ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ResyncPeriod: -1},
	} {
		if err := o.complete(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	given := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16"), netip.MustParsePrefix("fd00::/48")}
	o := Options{NodeName: "a", ClusterCIDRs: given}
	if err := o.complete(); err != nil || o.VNI != DefaultVNI || o.VXLANPort != DefaultVXLANPort || o.ClusterCIDRs[0].String() != "10.1.0.0/16" {
		t.Errorf("defaults: %+v %v", o, err)
	}
	if given[0].String() != "10.1.2.3/16" {
		t.Errorf("complete changed the caller's slice: %v", given)
	}
}

func TestRulesScript(t *testing.T) {
	got := rulesScript(netip.MustParsePrefix("10.244.0.0/16"))
	for _, want := range []string{
		":SKIFF-POSTROUTING - [0:0]",
		"-A SKIFF-POSTROUTING -d 10.244.0.0/16 -m comment --comment \"pod to pod: keep the source IP\" -j RETURN",
		"-A SKIFF-POSTROUTING -s 10.244.0.0/16 -m comment --comment \"pod to outside the cluster\" -j MASQUERADE --random-fully",
		"-A SKIFF-FORWARD -d 10.244.0.0/16 -j ACCEPT",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(rulesScript(netip.MustParsePrefix("fd00::/48")), "-d ff00::/8 -j RETURN") {
		t.Error("IPv6 script does not exempt multicast")
	}
}
