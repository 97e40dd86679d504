package scraper

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

var t0 = time.Unix(1_700_000_000, 0)

// resourceText is a kubelet's /metrics/resource: node CPU seconds and
// memory, and per container CPU seconds, memory and start time, all
// measured at "at".
func resourceText(at time.Time, nodeCPU float64, nodeMem uint64, containers ...string) string {
	ms := at.UnixMilli()
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP node_cpu_usage_seconds_total x\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %g %d\n", nodeCPU, ms)
	fmt.Fprintf(&b, "# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes %d %d\n", nodeMem, ms)
	// containers: "ns/pod/container cpu mem start"
	for _, c := range containers {
		var ref string
		var cpu float64
		var mem uint64
		var start int64
		fmt.Sscanf(c, "%s %g %d %d", &ref, &cpu, &mem, &start)
		p := strings.Split(ref, "/")
		labels := fmt.Sprintf(`{container=%q,namespace=%q,pod=%q}`, p[2], p[0], p[1])
		fmt.Fprintf(&b, "container_cpu_usage_seconds_total%s %g %d\n", labels, cpu, ms)
		fmt.Fprintf(&b, "container_memory_working_set_bytes%s %d %d\n", labels, mem, ms)
		fmt.Fprintf(&b, "container_start_time_seconds%s %d\n", labels, start)
	}
	b.WriteString("# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n")
	return b.String()
}

func TestDecode(t *testing.T) {
	text := resourceText(t0, 12.5, 1<<30, fmt.Sprintf("ns/web/app 1.5 1000 %d", t0.Unix()-100), fmt.Sprintf("ns/web/side 0.25 2000 %d", t0.Unix()-50))
	b, err := Decode(strings.NewReader(text), time.Time{}, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if b.Node == nil || b.Node.CumulativeCPU != 12_500_000_000 || b.Node.Memory != 1<<30 || !b.Node.Timestamp.Equal(t0) {
		t.Errorf("node: %+v", b.Node)
	}
	web := b.Pods[types.NamespacedName{Namespace: "ns", Name: "web"}]
	if app := web["app"]; len(web) != 2 || app.CumulativeCPU != 1_500_000_000 || app.Memory != 1000 || !app.Timestamp.Equal(t0) || !app.StartTime.Equal(t0.Add(-100*time.Second)) {
		t.Errorf("pod: %+v", web)
	}

	// Without timestamps: the scrape's time.
	b, err = Decode(strings.NewReader("node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 2\n"), t0, "n1")
	if err != nil || b.Node == nil || !b.Node.Timestamp.Equal(t0) {
		t.Errorf("no timestamps: %+v %v", b, err)
	}
	// Incomplete node (no memory), a pod one of whose containers has no
	// CPU: left out.
	b, err = Decode(strings.NewReader(`node_cpu_usage_seconds_total 1
container_cpu_usage_seconds_total{container="a",namespace="ns",pod="p"} 1
container_memory_working_set_bytes{container="a",namespace="ns",pod="p"} 1
container_memory_working_set_bytes{container="b",namespace="ns",pod="p"} 1
container_cpu_usage_seconds_total{container="a",namespace="ns",pod="q"} 1
container_memory_working_set_bytes{container="a",namespace="ns",pod="q"} 1
`), t0, "n1")
	if err != nil || b.Node != nil || len(b.Pods) != 1 || b.Pods[types.NamespacedName{Namespace: "ns", Name: "q"}] == nil {
		t.Errorf("incomplete: %+v %v", b, err)
	}
	if _, err := Decode(strings.NewReader("node_cpu_usage_seconds_total{ 1\n"), t0, "n1"); err == nil || !strings.Contains(err.Error(), `node "n1"`) {
		t.Errorf("bad text: %v", err)
	}
}

// fakeNodes lists nodes.
type fakeNodes struct{ nodes []corev1.Node }

var _ rest.Lister = fakeNodes{}

func (f fakeNodes) List(ctx context.Context, _ *metainternalversion.ListOptions) (runtime.Object, error) {
	if ns := genericapirequest.NamespaceValue(ctx); ns != "" {
		return nil, fmt.Errorf("nodes listed in namespace %q", ns)
	}
	return &corev1.NodeList{Items: f.nodes}, nil
}
func (fakeNodes) NewList() runtime.Object { return &corev1.NodeList{} }
func (fakeNodes) ConvertToTable(context.Context, runtime.Object, runtime.Object) (*metav1.Table, error) {
	return nil, nil
}

// fakeClient answers each node with the next of its texts (or error).
type fakeClient struct {
	mu      sync.Mutex
	texts   map[string][]string
	scraped []string
}

func (f *fakeClient) Scrape(_ context.Context, node *corev1.Node) (*Batch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scraped = append(f.scraped, node.Name)
	texts := f.texts[node.Name]
	if len(texts) == 0 {
		return nil, errors.New("kubelet unreachable")
	}
	f.texts[node.Name] = texts[1:]
	if texts[0] == "" {
		return nil, errors.New("kubelet unreachable")
	}
	return Decode(strings.NewReader(texts[0]), t0, node.Name)
}

func node(name string, ready corev1.ConditionStatus, runtime string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.NodeInfo.ContainerRuntimeVersion = runtime
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	return n
}

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func quantities(l corev1.ResourceList) string {
	cpu, mem := l[corev1.ResourceCPU], l[corev1.ResourceMemory]
	return cpu.String() + " " + mem.String()
}

// Two scrapes give CPU as the rate between them, memory as the last value,
// the window between the points; one scrape gives nothing; only Ready
// nodes that are not simulated are scraped; a node that fails to answer
// loses its metrics.
func TestScraperRates(t *testing.T) {
	n1 := node("n1", corev1.ConditionTrue, "containerd://1.6.20")
	start := t0.Add(-time.Hour).Unix()
	client := &fakeClient{texts: map[string][]string{"n1": {
		resourceText(t0, 100, 1<<30, fmt.Sprintf("ns/web/app 10 1000 %d", start)),
		resourceText(t0.Add(15*time.Second), 103, 2<<30, fmt.Sprintf("ns/web/app 10.75 3000 %d", start)),
		"",
	}}}
	nodes := fakeNodes{nodes: []corev1.Node{n1,
		node("down", corev1.ConditionUnknown, "containerd://1.6.20"),
		node("sim", corev1.ConditionTrue, "skiff-simulated://1.0.0")}}
	s := New(nodes, client, 15*time.Second)
	ctx := context.Background()

	s.ScrapeOnce(ctx)
	if _, _, ok := s.NodeUsage(&n1, nil); ok {
		t.Error("node usage after one scrape")
	}
	if _, _, ok := s.PodUsage(&n1, pod("ns", "web")); ok {
		t.Error("pod usage after one scrape")
	}
	s.ScrapeOnce(ctx)
	if got := strings.Join(client.scraped, ","); got != "n1,n1" {
		t.Errorf("scraped %s, want only the Ready real node", got)
	}
	usage, at, ok := s.NodeUsage(&n1, nil)
	// 3 core-seconds over 15 s: 200m.
	if !ok || quantities(usage) != "200m 2Gi" || at.Window != 15*time.Second || !at.Timestamp.Equal(t0.Add(15*time.Second)) {
		t.Errorf("node usage %s %+v %v", quantities(usage), at, ok)
	}
	containers, at, ok := s.PodUsage(&n1, pod("ns", "web"))
	// 0.75 core-seconds over 15 s: 50m.
	if !ok || len(containers) != 1 || containers[0].Name != "app" || quantities(containers[0].Usage) != "50m 3000" || at.Window != 15*time.Second {
		t.Errorf("pod usage %+v %+v %v", containers, at, ok)
	}
	if _, _, ok := s.PodUsage(&n1, pod("other", "web")); ok {
		t.Error("usage of a pod the kubelet did not report")
	}
	// The kubelet stops answering: its node and pods are gone.
	s.ScrapeOnce(ctx)
	if _, _, ok := s.NodeUsage(&n1, nil); ok {
		t.Error("node usage kept after a failed scrape")
	}
	if _, _, ok := s.PodUsage(&n1, pod("ns", "web")); ok {
		t.Error("pod usage kept after a failed scrape")
	}
}

func storeOf(batches ...map[string]*Batch) *store {
	s := newStore(15 * time.Second)
	for _, b := range batches {
		s.put(b)
	}
	return s
}

func batch(node *Point, pods map[types.NamespacedName]map[string]Point) map[string]*Batch {
	return map[string]*Batch{"n1": {Node: node, Pods: pods}}
}

var web = types.NamespacedName{Namespace: "ns", Name: "web"}

func TestStore(t *testing.T) {
	start := t0.Add(-time.Hour)
	at := func(sec int, cpu float64, mem uint64) Point {
		return Point{StartTime: start, Timestamp: t0.Add(time.Duration(sec) * time.Second), CumulativeCPU: uint64(cpu * 1e9), Memory: mem}
	}
	pods := func(containers map[string]Point) map[types.NamespacedName]map[string]Point {
		return map[types.NamespacedName]map[string]Point{web: containers}
	}

	t.Run("same timestamp keeps the previous point", func(t *testing.T) {
		p1, p2 := at(0, 1, 1), at(10, 2, 1)
		s := storeOf(batch(&p1, nil), batch(&p2, nil), batch(&p2, nil))
		if u, ti, ok := s.node("n1"); !ok || quantities(u) != "100m 1" || ti.Window != 10*time.Second {
			t.Errorf("%s %+v %v", quantities(u), ti, ok)
		}
	})
	t.Run("CPU going down is no usage", func(t *testing.T) {
		p1, p2 := at(0, 5, 1), at(10, 2, 1)
		if _, _, ok := storeOf(batch(&p1, nil), batch(&p2, nil)).node("n1"); ok {
			t.Error("usage from a decreasing counter")
		}
	})
	t.Run("nanocores", func(t *testing.T) {
		p1, p2 := at(0, 1, 1), at(3, 1.000001, 1)
		if u, _, ok := storeOf(batch(&p1, nil), batch(&p2, nil)).node("n1"); !ok || quantities(u) != "333n 1" {
			t.Errorf("%s", quantities(u))
		}
	})
	t.Run("a restarted container starts over", func(t *testing.T) {
		c1 := at(0, 5, 1)
		c2 := at(15, 0.1, 1)
		c2.StartTime = t0.Add(10 * time.Second)
		s := storeOf(batch(nil, pods(map[string]Point{"app": c1})), batch(nil, pods(map[string]Point{"app": c2})))
		if _, _, ok := s.pod(web); ok {
			t.Error("usage across a restart")
		}
	})
	t.Run("a fresh container is rated from its start", func(t *testing.T) {
		c := at(0, 1.2, 7)
		c.StartTime = t0.Add(-12 * time.Second)
		s := storeOf(batch(nil, pods(map[string]Point{"app": c})))
		cs, ti, ok := s.pod(web)
		if !ok || quantities(cs[0].Usage) != "100m 7" || ti.Window != 12*time.Second {
			t.Errorf("%+v %+v %v", cs, ti, ok)
		}
		// Younger than 10 s: not yet.
		c.StartTime = t0.Add(-5 * time.Second)
		if _, _, ok := storeOf(batch(nil, pods(map[string]Point{"app": c}))).pod(web); ok {
			t.Error("usage of a 5 s old container after one scrape")
		}
	})
	t.Run("a pod with a container new since the last scrape has none", func(t *testing.T) {
		s := storeOf(batch(nil, pods(map[string]Point{"app": at(0, 1, 1)})),
			batch(nil, pods(map[string]Point{"app": at(15, 2, 1), "side": at(15, 1, 1)})))
		if _, _, ok := s.pod(web); ok {
			t.Error("usage with a container missing its previous point")
		}
	})
	t.Run("the earliest container's time", func(t *testing.T) {
		s := storeOf(batch(nil, pods(map[string]Point{"a": at(0, 1, 1), "b": at(1, 1, 1)})),
			batch(nil, pods(map[string]Point{"a": at(15, 2, 1), "b": at(11, 2, 1)})))
		cs, ti, ok := s.pod(web)
		if !ok || len(cs) != 2 || cs[0].Name != "a" || cs[1].Name != "b" || !ti.Timestamp.Equal(t0.Add(11*time.Second)) || ti.Window != 10*time.Second {
			t.Errorf("%+v %+v %v", cs, ti, ok)
		}
	})
}
