package scraper

import (
	"fmt"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// The kubelet's /metrics/resource series metrics-server reads.
const (
	nodeCPUMetric            = "node_cpu_usage_seconds_total"
	nodeMemoryMetric         = "node_memory_working_set_bytes"
	containerCPUMetric       = "container_cpu_usage_seconds_total"
	containerMemoryMetric    = "container_memory_working_set_bytes"
	containerStartTimeMetric = "container_start_time_seconds"
)

// Point is one measurement of a node or a container.
type Point struct {
	// StartTime is when the container started (zero for nodes): its
	// cumulative CPU was 0 then.
	StartTime time.Time
	// Timestamp is when CPU was measured.
	Timestamp time.Time
	// CumulativeCPU is the CPU used since StartTime, in core-nanoseconds.
	CumulativeCPU uint64
	// Memory is the working set in bytes.
	Memory uint64
}

// Batch is what one scrape of a node's kubelet reported.
type Batch struct {
	// Node is nil when the kubelet reported no complete node point.
	Node *Point
	// Pods are the containers' points of each pod, by container name.
	Pods map[types.NamespacedName]map[string]Point
}

// Decode reads /metrics/resource in Prometheus' text format; series
// without a timestamp were measured at scrapedAt. As metrics-server, a
// node point missing its CPU or memory is left out, and so is a pod any
// of whose containers misses either.
func Decode(in io.Reader, scrapedAt time.Time, node string) (*Batch, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(in)
	if err != nil {
		return nil, fmt.Errorf("parsing the resource metrics of node %q: %w", node, err)
	}
	at := func(m *dto.Metric) time.Time {
		if m.TimestampMs != nil {
			return time.UnixMilli(m.GetTimestampMs())
		}
		return scrapedAt
	}
	var n Point
	for _, m := range families[nodeCPUMetric].GetMetric() {
		n.CumulativeCPU, n.Timestamp = nanos(value(m)), at(m)
	}
	for _, m := range families[nodeMemoryMetric].GetMetric() {
		n.Memory = uint64(value(m))
		if n.Timestamp.IsZero() {
			n.Timestamp = at(m)
		}
	}

	pods := map[types.NamespacedName]map[string]Point{}
	each := func(metric string, set func(p *Point, m *dto.Metric)) {
		for _, m := range families[metric].GetMetric() {
			pod, container, ok := containerOf(m)
			if !ok {
				continue
			}
			if pods[pod] == nil {
				pods[pod] = map[string]Point{}
			}
			p := pods[pod][container]
			set(&p, m)
			pods[pod][container] = p
		}
	}
	each(containerCPUMetric, func(p *Point, m *dto.Metric) { p.CumulativeCPU, p.Timestamp = nanos(value(m)), at(m) })
	each(containerMemoryMetric, func(p *Point, m *dto.Metric) {
		p.Memory = uint64(value(m))
		if p.Timestamp.IsZero() {
			p.Timestamp = at(m)
		}
	})
	each(containerStartTimeMetric, func(p *Point, m *dto.Metric) {
		p.StartTime = time.Unix(0, int64(value(m)*float64(time.Second)))
	})

	b := &Batch{Pods: map[types.NamespacedName]map[string]Point{}}
	if n.CumulativeCPU != 0 && n.Memory != 0 {
		b.Node = &n
	} else {
		klog.V(1).InfoS("Failed getting complete node metric", "node", node, "metric", n)
	}
	for pod, containers := range pods {
		if complete(containers) {
			b.Pods[pod] = containers
		} else {
			klog.V(1).InfoS("Failed getting complete Pod metric", "pod", klog.KRef(pod.Namespace, pod.Name), "node", node)
		}
	}
	return b, nil
}

// complete: every container has both CPU and memory.
func complete(containers map[string]Point) bool {
	for _, p := range containers {
		if p.CumulativeCPU == 0 || p.Memory == 0 {
			return false
		}
	}
	return len(containers) > 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

// nanos are core-seconds as core-nanoseconds; negative values are 0.
func nanos(seconds float64) uint64 {
	if seconds <= 0 {
		return 0
	}
	return uint64(seconds * float64(time.Second))
}

func containerOf(m *dto.Metric) (types.NamespacedName, string, bool) {
	var pod types.NamespacedName
	var container string
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "namespace":
			pod.Namespace = l.GetValue()
		case "pod":
			pod.Name = l.GetValue()
		case "container":
			container = l.GetValue()
		}
	}
	return pod, container, pod.Name != "" && container != ""
}
