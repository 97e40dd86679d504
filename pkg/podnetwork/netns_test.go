package podnetwork

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/test/integration"
	"github.com/skiff-dev/skiff/test/netnstest"
)

// The test's addresses. Each "host" is a network namespace with its own
// routing table, so these collide with nothing outside them.
var (
	clusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.250.0.0/16"), netip.MustParsePrefix("fd50::/48")}
	// outsideIP is outside the cluster CIDR: a server on the LAN router.
	outsideIP = "10.251.9.1"
)

// testHost is one node: a network namespace on the LAN with a pod.
type testHost struct {
	name     string // Node name
	ns       string // the host's network namespace
	ip, ip6  string // InternalIPs
	podCIDRs []netip.Prefix
	podNS    string
	podIPs   []netip.Addr // the pod's IPv4 and IPv6 address
}

func requireRoot(t *testing.T) string {
	t.Helper()
	netnstest.RequireRoot(t, "creates network namespaces, routes, a VXLAN device and iptables rules",
		"iptables", "iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save")
	bin, err := cni.FindBinDir()
	if err != nil {
		t.Skip(err.Error())
	}
	return bin
}

// newLAN makes the LAN: a namespace with a bridge that routes between two
// subnets (10.251.1/24 and 10.251.2/24, fd51:1::/64 and fd51:2::/64) and
// has outsideIP; hosts A and B on the first subnet, C on the second. A
// and B thereby reach each other directly, C only through the router.
func newLAN(t *testing.T, id string) []*testHost {
	lan := "pnlan-" + id
	netnstest.Add(t, lan)
	br := "pnbr" + id
	netnstest.In(t, lan, "ip", "link", "add", br, "type", "bridge")
	netnstest.In(t, lan, "ip", "link", "set", br, "up")
	for _, a := range []string{"10.251.1.254/24", "10.251.2.254/24"} {
		netnstest.In(t, lan, "ip", "addr", "add", a, "dev", br)
	}
	for _, a := range []string{"fd51:1::fe/64", "fd51:2::fe/64"} {
		netnstest.In(t, lan, "ip", "addr", "add", a, "dev", br, "nodad")
	}
	netnstest.In(t, lan, "ip", "addr", "add", outsideIP+"/32", "dev", "lo")
	netnstest.In(t, lan, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

	hosts := []*testHost{
		{name: "pn-a", ip: "10.251.1.1", ip6: "fd51:1::1"},
		{name: "pn-b", ip: "10.251.1.2", ip6: "fd51:1::2"},
		{name: "pn-c", ip: "10.251.2.1", ip6: "fd51:2::1"},
	}
	for i, h := range hosts {
		letter := string(rune('a' + i))
		h.ns = "pn" + letter + "-" + id
		h.podNS = "pnpod" + letter + "-" + id
		h.podCIDRs = []netip.Prefix{
			netip.MustParsePrefix(fmt.Sprintf("10.250.%d.0/24", i+1)),
			netip.MustParsePrefix(fmt.Sprintf("fd50:0:0:%d::/64", i+1)),
		}
		netnstest.Add(t, h.ns)
		netnstest.Add(t, h.podNS)
		hostEnd, lanEnd := "pneth"+letter+id, "pnlan"+letter+id
		netnstest.Run(t, "ip", "link", "add", hostEnd, "netns", h.ns, "type", "veth", "peer", "name", lanEnd, "netns", lan)
		netnstest.In(t, lan, "ip", "link", "set", lanEnd, "master", br, "up")
		netnstest.In(t, h.ns, "ip", "link", "set", hostEnd, "up")
		netnstest.In(t, h.ns, "ip", "addr", "add", h.ip+"/24", "dev", hostEnd)
		netnstest.In(t, h.ns, "ip", "addr", "add", h.ip6+"/64", "dev", hostEnd, "nodad")
		gw, gw6 := "10.251.1.254", "fd51:1::fe"
		if strings.HasPrefix(h.ip, "10.251.2.") {
			gw, gw6 = "10.251.2.254", "fd51:2::fe"
		}
		netnstest.In(t, h.ns, "ip", "route", "add", "default", "via", gw)
		netnstest.In(t, h.ns, "ip", "-6", "route", "add", "default", "via", gw6)
	}
	return hosts
}

// addPod runs the conflist pkg/kubelet/cni writes for h through the real
// plugins, in h's namespace as a container runtime on h would.
func addPod(t *testing.T, binDir string, h *testHost) {
	t.Helper()
	cfg := cni.Config{PodCIDRs: h.podCIDRs, BridgeName: "pncni0", NetworkName: "pn", DataDir: filepath.Join(t.TempDir(), "ipam"), SkipMasquerade: true,
		MTU: 1450} // PodMTU of the hosts' veths
	conflist, err := cni.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &list); err != nil {
		t.Fatal(err)
	}
	var prev map[string]any
	for _, p := range list.Plugins {
		p["cniVersion"], p["name"] = list.CNIVersion, list.Name
		if prev != nil {
			p["prevResult"] = prev
		}
		if caps, _ := p["capabilities"].(map[string]any); caps["portMappings"] == true {
			p["runtimeConfig"] = map[string]any{"portMappings": []any{}}
		}
		stdin, _ := json.Marshal(p)
		cmd := exec.Command("ip", "netns", "exec", h.ns, filepath.Join(binDir, p["type"].(string)))
		cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=pn" + h.name, "CNI_NETNS=/run/netns/" + h.podNS,
			"CNI_IFNAME=eth0", "CNI_PATH=" + binDir, "PATH=" + os.Getenv("PATH")}
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s ADD on %s: %v: %s %s", p["type"], h.name, err, out, stderr.Bytes())
		}
		prev = nil
		if err := json.Unmarshal(out, &prev); err != nil {
			t.Fatalf("%s ADD result: %v: %s", p["type"], err, out)
		}
	}
	ips, _ := prev["ips"].([]any)
	for _, ip := range ips {
		addr, err := netip.ParsePrefix(ip.(map[string]any)["address"].(string))
		if err != nil {
			t.Fatal(err)
		}
		h.podIPs = append(h.podIPs, addr.Addr())
	}
	if len(h.podIPs) != 2 || !h.podIPs[0].Is4() || !h.podIPs[1].Is6() {
		t.Fatalf("pod on %s got %v, want an IPv4 and an IPv6 address", h.name, h.podIPs)
	}
}

// serve listens on addr in ns and answers each connection with the
// client's address as it arrived.
func serve(t *testing.T, ns, addr string) {
	t.Helper()
	netnstest.ServeTCP(t, ns, addr, func(c net.Conn) { fmt.Fprintln(c, c.RemoteAddr().(*net.TCPAddr).IP) })
}

const bulkSize = 4 << 20

// serveBulk listens on addr in ns and sends bulkSize bytes to each client:
// full-size packets.
func serveBulk(t *testing.T, ns, addr string) {
	t.Helper()
	netnstest.ServeTCP(t, ns, addr, func(c net.Conn) { _, _ = c.Write(make([]byte, bulkSize)) })
}

// bulk reads what ns's connection to addr gets, and how long that took.
func bulk(ns string, addr netip.AddrPort) (int, time.Duration, error) {
	var n int64
	start := time.Now()
	err := netnstest.Do(ns, func() error {
		c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		n, err = io.Copy(io.Discard, c)
		return err
	})
	return int(n), time.Since(start), err
}

// whoAmI connects from ns to addr and returns the source address the
// server saw.
func whoAmI(ns string, addr netip.AddrPort) (string, error) {
	return netnstest.ReadTCP(ns, addr.String(), 2*time.Second)
}

// reaches checks that from's pod reaches to's pod at its address of the
// family of v6, and that to's pod sees from's pod address.
func reaches(from, to *testHost, v6 bool) func() error {
	i := 0
	if v6 {
		i = 1
	}
	return func() error {
		seen, err := whoAmI(from.podNS, netip.AddrPortFrom(to.podIPs[i], 8080))
		if err != nil {
			return err
		}
		if seen != from.podIPs[i].String() {
			return fmt.Errorf("pod on %s saw the client as %s, want the pod IP %s (not masqueraded)", to.name, seen, from.podIPs[i])
		}
		return nil
	}
}

// agent is podnetwork.Run for one host, inside its namespace.
type agent struct {
	stop func()
	done chan error
}

// startAgent runs the agent with the identities an agent has: the service
// proxy's (system:kube-proxy, which may watch all Nodes) and the node's
// own (which may patch its Node).
func startAgent(t *testing.T, admin *rest.Config, h *testHost) *agent {
	as := func(user string, groups ...string) kubernetes.Interface {
		cfg := rest.CopyConfig(admin)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
		return kubernetes.NewForConfigOrDie(cfg)
	}
	proxyClient := as("system:kube-proxy")
	opts := Options{NodeName: h.name, ClusterCIDRs: append([]netip.Prefix(nil), clusterCIDRs...), ResyncPeriod: 2 * time.Second,
		NodeClient: as("system:node:"+h.name, "system:nodes")}
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent{stop: cancel, done: make(chan error, 1)}
	go func() {
		a.done <- netnstest.Do(h.ns, func() error { return Run(ctx, proxyClient, opts) })
	}()
	return a
}

func (a *agent) halt(t *testing.T) {
	t.Helper()
	a.stop()
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return after its context ended")
	}
}

func ownRoutesIn(t *testing.T, ns string) string {
	t.Helper()
	return netnstest.In(t, ns, "ip", "route", "show", "proto", fmt.Sprint(RouteProtocol)) +
		netnstest.In(t, ns, "ip", "-6", "route", "show", "proto", fmt.Sprint(RouteProtocol))
}

func TestPodNetworkAcrossNodes(t *testing.T) {
	binDir := requireRoot(t)
	id := fmt.Sprint(os.Getpid() % 10000)
	hosts := newLAN(t, id)
	a, b, c := hosts[0], hosts[1], hosts[2]
	for _, h := range hosts {
		addPod(t, binDir, h)
		for _, ip := range h.podIPs {
			serve(t, h.podNS, netip.AddrPortFrom(ip, 8080).String())
		}
		serveBulk(t, h.podNS, netip.AddrPortFrom(h.podIPs[0], 8081).String())
	}
	serve(t, "pnlan-"+id, outsideIP+":8080")

	// Without the pod network's routes the pods of other nodes are
	// unreachable: the rest of the test can fail.
	for _, to := range []*testHost{b, c} {
		if err := reaches(a, to, false)(); err == nil {
			t.Fatalf("pod on %s reached the pod on %s before any route existed: the test proves nothing", a.name, to.name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := integration.StartAPIServer(t, integration.ServerOptions{})
	client := kubernetes.NewForConfigOrDie(admin)
	for _, h := range hosts {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: h.name}}
		for _, p := range h.podCIDRs {
			n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, p.String())
		}
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
		n, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: h.ip}, {Type: v1.NodeInternalIP, Address: h.ip6}}
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The plugins turned forwarding on; the agents must do it themselves.
	for _, h := range hosts {
		netnstest.In(t, h.ns, "sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")
	}
	agents := map[string]*agent{}
	for _, h := range hosts {
		agents[h.name] = startAgent(t, admin, h)
	}
	t.Cleanup(func() {
		for _, h := range hosts {
			if ag := agents[h.name]; ag != nil {
				ag.halt(t)
			}
			if err := netnstest.Do(h.ns, Cleanup); err != nil {
				t.Errorf("Cleanup on %s: %v", h.name, err)
			}
			// skiff agent --cleanup twice: the second finds nothing to do.
			if err := netnstest.Do(h.ns, Cleanup); err != nil {
				t.Errorf("second Cleanup on %s: %v", h.name, err)
			}
			if routes := ownRoutesIn(t, h.ns); routes != "" {
				t.Errorf("routes left on %s after Cleanup:\n%s", h.name, routes)
			}
			if links := netnstest.In(t, h.ns, "ip", "link", "show"); strings.Contains(links, VXLANDevice) {
				t.Errorf("%s left on %s after Cleanup:\n%s", VXLANDevice, h.name, links)
			}
			for _, save := range []string{"iptables-save", "ip6tables-save"} {
				if rules := netnstest.In(t, h.ns, save); strings.Contains(rules, "SKIFF-") {
					t.Errorf("%s on %s after Cleanup:\n%s", save, h.name, rules)
				}
			}
		}
	})

	t.Run("same subnet: direct route, source IP kept", func(t *testing.T) {
		netnstest.Eventually(t, 30*time.Second, "pod on A reaches pod on B (IPv4)", reaches(a, b, false))
		netnstest.Eventually(t, 10*time.Second, "pod on B reaches pod on A (IPv4)", reaches(b, a, false))
		netnstest.Eventually(t, 10*time.Second, "pod on A reaches pod on B (IPv6)", reaches(a, b, true))
		routes := ownRoutesIn(t, a.ns)
		for _, want := range []string{"10.250.2.0/24 via 10.251.1.2 dev pneth", "fd50:0:0:2::/64 via fd51:1::2 dev pneth"} {
			if !strings.Contains(routes, want) {
				t.Errorf("A's routes lack %q:\n%s", want, routes)
			}
		}
	})

	t.Run("other subnet: through VXLAN, source IP kept", func(t *testing.T) {
		netnstest.Eventually(t, 30*time.Second, "pod on A reaches pod on C (IPv4)", reaches(a, c, false))
		netnstest.Eventually(t, 10*time.Second, "pod on C reaches pod on B (IPv4)", reaches(c, b, false))
		netnstest.Eventually(t, 10*time.Second, "pod on A reaches pod on C (IPv6)", reaches(a, c, true))
		routes := ownRoutesIn(t, a.ns)
		for _, want := range []string{"10.250.3.0/24 via 10.250.3.0 dev " + VXLANDevice, "fd50:0:0:3::/64 via fd50:0:0:3:: dev " + VXLANDevice} {
			if !strings.Contains(routes, want) {
				t.Errorf("A's routes lack %q:\n%s", want, routes)
			}
		}
		for _, pair := range [][2]*testHost{{a, b}, {a, c}} {
			n, took, err := bulk(pair[0].podNS, netip.AddrPortFrom(pair[1].podIPs[0], 8081))
			if err != nil || n != bulkSize {
				t.Errorf("%d of %d bytes from the pod on %s to the pod on %s: %v", n, bulkSize, pair[1].name, pair[0].name, err)
			} else {
				t.Logf("%d MiB from the pod on %s to the pod on %s in %s", bulkSize>>20, pair[1].name, pair[0].name, took.Round(time.Millisecond))
			}
		}
		var mtu int
		if err := netnstest.Do(a.ns, func() (err error) { mtu, err = PodMTU(netip.MustParseAddr(a.ip)); return err }); err != nil || mtu != 1450 {
			t.Errorf("PodMTU on A: %d %v, want 1450 (the veth's 1500 less VXLAN's 50)", mtu, err)
		}
		if dev := netnstest.In(t, a.ns, "ip", "link", "show", VXLANDevice); !strings.Contains(dev, "mtu 1450") {
			t.Errorf("A's VXLAN device has not the MTU 1450:\n%s", dev)
		}
		n, err := client.CoreV1().Nodes().Get(ctx, c.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if mac := n.Annotations[VTEPMACAnnotation]; mac == "" || !strings.Contains(netnstest.In(t, c.ns, "ip", "link", "show", VXLANDevice), mac) {
			t.Errorf("node C's %s annotation %q is not its device's MAC", VTEPMACAnnotation, mac)
		}
	})

	t.Run("leaving the cluster CIDR: masqueraded", func(t *testing.T) {
		for _, h := range []*testHost{a, c} {
			netnstest.Eventually(t, 10*time.Second, "pod on "+h.name+" reaches "+outsideIP+" as its node", func() error {
				seen, err := whoAmI(h.podNS, netip.MustParseAddrPort(outsideIP+":8080"))
				if err != nil {
					return err
				}
				if seen != h.ip {
					return fmt.Errorf("the outside server saw the pod as %s, want the node's IP %s", seen, h.ip)
				}
				return nil
			})
		}
	})

	t.Run("a restarted agent takes over its routes", func(t *testing.T) {
		agents[a.name].halt(t)
		agents[a.name] = nil
		before := ownRoutesIn(t, a.ns)
		// Node C goes while A's agent is down; the restarted one removes
		// the route its predecessor made.
		if err := client.CoreV1().Nodes().Delete(ctx, c.name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		agents[a.name] = startAgent(t, admin, a)
		netnstest.Eventually(t, 20*time.Second, "A's route to C's pods removed", func() error {
			if routes := ownRoutesIn(t, a.ns); strings.Contains(routes, "10.250.3.0/24") {
				return fmt.Errorf("still there:\n%s", routes)
			}
			return nil
		})
		if !strings.Contains(before, "10.250.2.0/24") {
			t.Errorf("A's route to B's pods did not outlive its agent:\n%s", before)
		}
		netnstest.Eventually(t, 10*time.Second, "pod on A reaches pod on B after the restart", reaches(a, b, false))
		if neigh := netnstest.In(t, a.ns, "ip", "neigh", "show", "dev", VXLANDevice); strings.Contains(neigh, "10.250.3.0") {
			t.Errorf("A's neighbour entry for C's pods left:\n%s", neigh)
		}
		if fdb := netnstest.In(t, a.ns, "bridge", "fdb", "show", "dev", VXLANDevice); strings.Contains(fdb, c.ip) {
			t.Errorf("A's forwarding entry for C left:\n%s", fdb)
		}
	})

	t.Run("deleting a node removes the routes to its pods", func(t *testing.T) {
		if routes := ownRoutesIn(t, a.ns); !strings.Contains(routes, "10.250.2.0/24") {
			t.Fatalf("A has no route to B's pods before B goes:\n%s", routes)
		}
		if err := client.CoreV1().Nodes().Delete(ctx, b.name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		netnstest.Eventually(t, 20*time.Second, "A's route to B's pods removed", func() error {
			if routes := ownRoutesIn(t, a.ns); strings.Contains(routes, "10.250.2.0/24") || strings.Contains(routes, "fd50:0:0:2::/64") {
				return fmt.Errorf("still there:\n%s", routes)
			}
			return nil
		})
		if err := reaches(a, b, false)(); err == nil {
			t.Error("pod on A still reaches pod on B without the route")
		}
	})
}
