package nftables

import (
	"github.com/skiff-dev/skiff/test/netnstest"

	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

// benchServices feeds n services of perService endpoints each.
func benchServices(n, perService int) *tracker.Tracker {
	tr := tracker.New(v1.IPv4Protocol, testNode)
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		ip := fmt.Sprintf("172.30.%d.%d", i/250, i%250+1)
		var addrs []addr
		for j := range perService {
			addrs = append(addrs, ready(fmt.Sprintf("10.%d.%d.%d", 100+j, i/250, i%250+1)))
		}
		feed(tr, svc("ns", name, ip, nil), eps("ns", name, addrs...))
	}
	return tr
}

// benchOneChange times one endpoint change (each to another service)
// after a full sync of 10 000 services x 5 endpoints.
func benchOneChange(b *testing.B, nft knftables.Interface) {
	p := testProxier(nft)
	tr := benchServices(10000, 5)
	start, cpu := time.Now(), childCPU()
	if err := p.Sync(tr.Services, tr.Endpoints, tr.Apply()); err != nil {
		b.Fatal(err)
	}
	b.Logf("full sync %s, nft CPU %s", time.Since(start), childCPU()-cpu)
	cpu = childCPU()
	defer func() { b.Logf("nft CPU per change %s", (childCPU()-cpu)/time.Duration(b.N)) }()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := i % 10000
		b.StopTimer()
		feed(tr, eps("ns", fmt.Sprintf("svc%d", n), ready(fmt.Sprintf("10.200.%d.%d", i/250%250, i%250+1)), ready("10.201.0.1")))
		result := tr.Apply()
		b.StartTimer()
		if err := p.Sync(tr.Services, tr.Endpoints, result); err != nil {
			b.Fatal(err)
		}
		if _, full := p.LastTransaction(); full {
			b.Fatal("a full sync")
		}
	}
}

func BenchmarkOneChangeFake(b *testing.B) {
	benchOneChange(b, knftables.NewFake(knftables.IPv4Family, TableName))
}

// BenchmarkOneChangeRealNFT runs nft in a network namespace of its own.
func BenchmarkOneChangeRealNFT(b *testing.B) {
	netnstest.RequireRoot(b, "creates a network namespace", "nft")
	ns := fmt.Sprintf("nfp-bench-%d", os.Getpid()%100000)
	netnstest.Add(b, ns)
	netnstest.ToolWrappers(b, ns, "nft")
	nft, err := New()
	if err != nil {
		b.Fatal(err)
	}
	benchOneChange(b, nft)
}

// childCPU is the CPU time of the finished child processes (nft).
func childCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readCounter counts the calls that read the table back (each one an
// nft listing of the whole table: ~3 s at 10 000 services).
type readCounter struct {
	knftables.Interface
	reads int
}

func (r *readCounter) Check(ctx context.Context, tx *knftables.Transaction) error {
	r.reads++
	return r.Interface.Check(ctx, tx)
}

func (r *readCounter) ListAll(ctx context.Context) (map[string][]string, error) {
	r.reads++
	return r.Interface.ListAll(ctx)
}

func (r *readCounter) List(ctx context.Context, objectType string) ([]string, error) {
	r.reads++
	return r.Interface.List(ctx, objectType)
}

func (r *readCounter) ListRules(ctx context.Context, chain string) ([]*knftables.Rule, error) {
	r.reads++
	return r.Interface.ListRules(ctx, chain)
}

func (r *readCounter) ListElements(ctx context.Context, objectType, name string) ([]*knftables.Element, error) {
	r.reads++
	return r.Interface.ListElements(ctx, objectType, name)
}

func (r *readCounter) ListCounters(ctx context.Context) ([]*knftables.Counter, error) {
	r.reads++
	return r.Interface.ListCounters(ctx)
}

// A partial sync neither reads the table (nft's listing of it is
// O(table)) nor writes more than the changed service's few operations,
// however many services there are.
func TestPartialSyncIsSmallAtScale(t *testing.T) {
	nft := &readCounter{Interface: knftables.NewFake(knftables.IPv4Family, TableName)}
	p := testProxier(nft)
	tr := benchServices(3000, 5)
	syncAll(t, p, tr)
	for i := range 3 {
		nft.reads = 0
		feed(tr, eps("ns", fmt.Sprintf("svc%d", 100*i), ready("10.200.0.1"), ready(fmt.Sprintf("10.200.0.%d", i+2))))
		syncAll(t, p, tr)
		tx, full := p.LastTransaction()
		if ops := strings.Count(tx, "\n"); full || ops > 10 || nft.reads > 0 {
			t.Fatalf("one service's change: full %t, %d table reads, %d operations:\n%s", full, nft.reads, ops, tx)
		}
	}
	// A periodic sync with nothing changed is as small.
	nft.reads = 0
	syncAll(t, p, tr)
	if tx, _ := p.LastTransaction(); nft.reads > 0 || strings.Count(tx, "\n") > 3 {
		t.Fatalf("sync without changes: %d table reads:\n%s", nft.reads, tx)
	}
}
