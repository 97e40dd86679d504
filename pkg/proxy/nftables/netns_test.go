package nftables

import (
	"github.com/skiff-dev/skiff/test/netnstest"

	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

// realNFT is the kube-proxy table of a network namespace of the test's
// own: nft on PATH is a wrapper running the real one there.
func realNFT(t *testing.T) (knftables.Interface, func(args ...string) string) {
	netnstest.RequireRoot(t, "creates a network namespace", "nft")
	ns := fmt.Sprintf("nft-unit-%d", os.Getpid()%100000)
	netnstest.Add(t, ns)
	netnstest.ToolWrappers(t, ns, "nft")
	real, _ := exec.LookPath("nft")
	nft, err := New()
	if err != nil {
		t.Fatal(err)
	}
	list := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, real}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	return nft, list
}

// The kernel takes every kind of rule the proxier writes (the Fake does
// not parse rules), the partial syncs too, and stale chains go.
func TestRealKernelTakesTheRules(t *testing.T) {
	nft, list := realNFT(t)
	p := testProxier(nft)
	tr := newTracker(overall()...)
	syncAll(t, p, tr)
	table := list("list", "table", "ip", TableName)
	for _, want := range []string{"firewall-HVFWP5L3-ns5/svc5/tcp/p80", "affinity-QR2OSYWX-ns5/svc5/tcp/p80__10.180.0.5/80", "192.168.99.33 . tcp . 80"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %s:\n%s", want, table)
		}
	}
	feed(tr, eps("ns5", "svc5", ready("10.180.0.7")), eps("ns1", "svc1"))
	tr.ServiceUpdate(svc("ns3", "svc3", "172.30.0.43", nil), nil)
	syncAll(t, p, tr)
	if _, full := p.LastTransaction(); full {
		t.Error("second sync was a full one")
	}
	if len(p.staleChains) == 0 {
		t.Fatal("no stale chains after removing endpoints and a service")
	}
	for c := range p.staleChains {
		p.staleChains[c] = time.Now().Add(-2 * staleChainDelay)
	}
	syncAll(t, p, tr)
	table = list("list", "table", "ip", TableName)
	for _, gone := range []string{"ns3/svc3", "10.180.0.5", "service-ULMVA6XW-ns1/svc1"} {
		if strings.Contains(table, gone) {
			t.Errorf("table still has %s:\n%s", gone, table)
		}
	}
	// A restarted proxy takes the table over (its base chains made anew)
	// and drops what the state no longer has.
	tr.ServiceUpdate(svc("ns5", "svc5", "172.30.0.45", nil), nil)
	tr.Apply()
	restarted := testProxier(nft)
	syncAll(t, restarted, tr)
	table = list("list", "table", "ip", TableName)
	if strings.Contains(table, "affinity-") || !strings.Contains(table, "ns2/svc2") {
		t.Errorf("after a restart:\n%s", table)
	}
	if err := Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tables := list("list", "tables"); strings.Contains(tables, TableName) {
		t.Errorf("Cleanup left %s", tables)
	}
}

// Many services: the first sync writes them all, a later one-endpoint
// change is a transaction of a few operations. Logs the times.
func TestRealKernelScale(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	nft, list := realNFT(t)
	p := testProxier(nft)
	tr := tracker.New(v1.IPv4Protocol, testNode)
	const services, perService = 2000, 5
	for i := range services {
		name := fmt.Sprintf("svc%d", i)
		ip := fmt.Sprintf("172.30.%d.%d", i/250, i%250+1)
		var addrs []addr
		for j := range perService {
			addrs = append(addrs, ready(fmt.Sprintf("10.%d.%d.%d", 100+j, i/250, i%250+1)))
		}
		feed(tr, svc("ns", name, ip, nil), eps("ns", name, addrs...))
	}
	start := time.Now()
	syncAll(t, p, tr)
	fullTime := time.Since(start)

	feed(tr, eps("ns", "svc7", ready("10.200.0.1"), ready("10.200.0.2")))
	start = time.Now()
	syncAll(t, p, tr)
	partialTime := time.Since(start)
	tx, full := p.LastTransaction()
	ops := strings.Count(tx, "\n")
	if full || ops > 10 {
		t.Errorf("one service's change: full %t, %d operations:\n%s", full, ops, tx)
	}
	if !strings.Contains(list("list", "chain", "ip", TableName, "service-"+servicePortBase(tracker.ServicePortName{NamespacedName: nsName("ns", "svc7"), Port: "p80"}, "tcp")), "10.200.0.2") {
		t.Error("the change is not in the kernel")
	}
	t.Logf("%d services x %d endpoints: full sync %s, one service's change %s (%d operations)", services, perService, fullTime, partialTime, ops)
}

func nsName(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
