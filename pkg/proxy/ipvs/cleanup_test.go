package ipvs

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/proxy/proxytest"
)

// cleanupIPT is fakeIPT with chains to list and the deleted jumps.
type cleanupIPT struct {
	fakeIPT
	chains  map[string][]string
	deleted []string
}

func (c *cleanupIPT) ListChains(table string) ([]string, error) { return c.chains[table], nil }
func (c *cleanupIPT) DeleteRule(table, chain string, rule ...string) error {
	c.deleted = append(c.deleted, table+" "+chain+" "+strings.Join(rule, " "))
	return nil
}

func TestCleanupRemovesEverything(t *testing.T) {
	e := newEnv(t, nil)
	e.sync(lbService(nil), eps("ns", "lb", v1.ProtocolTCP, ready("10.1.0.1")))
	ipt := &cleanupIPT{chains: map[string][]string{
		tableNAT:    {"PREROUTING", chainServices, chainMarkMasq, "KUBE-SVC-OTHER"},
		tableFilter: {"INPUT", chainIPVSFilter},
	}}
	if err := Cleanup(e.ipvs, e.ipset, e.dummy, ipt); err != nil {
		t.Fatal(err)
	}
	e.wantServers()
	if e.dummy.exists {
		t.Error("kube-ipvs0 left")
	}
	if len(e.ipset.sets) != 0 {
		t.Errorf("ipsets left: %v", e.ipset.sets)
	}
	if len(ipt.deleted) != len(jumps) {
		t.Errorf("deleted jumps %v, want %d", ipt.deleted, len(jumps))
	}
	want := []string{
		"*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\nCOMMIT\n",
		"*nat\n-X KUBE-SERVICES\n-X KUBE-MARK-MASQ\nCOMMIT\n",
		"*filter\n:KUBE-IPVS-FILTER - [0:0]\nCOMMIT\n",
		"*filter\n-X KUBE-IPVS-FILTER\nCOMMIT\n",
	}
	if diff := cmp.Diff(want, ipt.restores); diff != "" {
		t.Errorf("restores (-want +got):\n%s", diff)
	}
	// Without IPVS in the kernel, the rest is still cleaned.
	if err := Cleanup(nil, e.ipset, e.dummy, ipt); err != nil {
		t.Errorf("cleanup without IPVS: %v", err)
	}
}

type fakeSysctl map[string]string

func (f fakeSysctl) Get(name string) (string, error) {
	v, ok := f[name]
	if !ok {
		return "", fmt.Errorf("no such sysctl %s", name)
	}
	return v, nil
}
func (f fakeSysctl) Set(name, value string) error { f[name] = value; return nil }

func TestSetupKernel(t *testing.T) {
	s := fakeSysctl{"net/ipv4/ip_forward": "0", "net/ipv4/vs/conntrack": "1"}
	if err := SetupKernel(s, true); err != nil {
		t.Fatal(err)
	}
	want := fakeSysctl{
		"net/ipv4/vs/conntrack": "1", "net/ipv4/vs/expire_nodest_conn": "1", "net/ipv4/vs/expire_quiescent_template": "1",
		"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/all/arp_announce": "2",
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("sysctls (-want +got):\n%s", diff)
	}
}

// BenchmarkSync measures a full sync and an endpoint-change sync of 10 000
// ClusterIP services with 3 endpoints each, on the fakes (the computation
// and reconciliation, not the kernel).
func BenchmarkSync(b *testing.B) {
	e := newEnv(&testing.T{}, nil)
	var objs []any
	for i := 0; i < 10000; i++ {
		name := fmt.Sprintf("s%d", i)
		ip := net.IPv4(10, 96, byte(i/256), byte(i%256)).String()
		objs = append(objs, proxytest.Service("ns", name, ip, nil),
			eps("ns", name, v1.ProtocolTCP, ready(fmt.Sprintf("10.1.%d.%d", i/256, i%256)), ready("10.2.0.1"), ready("10.2.0.2")))
	}
	e.t = &testing.T{}
	if err := e.trySync(objs...); err != nil {
		b.Fatal(err)
	}
	b.Run("full", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			e.p.ForceFullSync()
			if err := e.trySync(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-endpoint-change", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := e.trySync(eps("ns", "s7", v1.ProtocolTCP, ready(fmt.Sprintf("10.3.0.%d", i%200)))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
