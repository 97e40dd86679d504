package scraper

import (
	"errors"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/pkg/registry/metrics"
)

// freshContainerMinAge: a container younger than the resolution but at
// least this old gets its start (CPU 0) as previous point, so it has
// usage after one scrape; younger ones are too imprecise (metrics-server's
// freshContainerMinMetricsResolution).
const freshContainerMinAge = 10 * time.Second

// store keeps the last two points of every node and container, as
// metrics-server's storage: each scrape's points replace the last ones,
// which become the previous ones if older; what a scrape did not report
// is gone.
type store struct {
	resolution time.Duration

	mu         sync.RWMutex
	last, prev map[string]Point
	lastPods   map[types.NamespacedName]map[string]Point
	prevPods   map[types.NamespacedName]map[string]Point
}

func newStore(resolution time.Duration) *store {
	return &store{resolution: resolution}
}

// put stores the batches of one scrape round, by node name.
func (s *store) put(batches map[string]*Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, prev := map[string]Point{}, map[string]Point{}
	lastPods, prevPods := map[types.NamespacedName]map[string]Point{}, map[types.NamespacedName]map[string]Point{}
	for name, b := range batches {
		if b.Node != nil {
			last[name] = *b.Node
			if p, ok := s.previous(s.last[name], s.prev[name], *b.Node); ok {
				prev[name] = p
			}
		}
		for pod, containers := range b.Pods {
			if _, dup := lastPods[pod]; dup {
				klog.ErrorS(nil, "Got duplicate pod point", "pod", klog.KRef(pod.Namespace, pod.Name), "node", name)
				continue
			}
			lastPods[pod] = containers
			prevContainers := map[string]Point{}
			for c, p := range containers {
				if pp, ok := s.containerPrevious(pod, c, p); ok {
					prevContainers[c] = pp
				}
			}
			if len(prevContainers) > 0 {
				prevPods[pod] = prevContainers
			}
		}
	}
	s.last, s.prev, s.lastPods, s.prevPods = last, prev, lastPods, prevPods
}

// previous is the point to rate p against: the stored last one if p is
// newer, else the stored previous one if still older than p.
func (s *store) previous(last, prev, p Point) (Point, bool) {
	switch {
	case !last.Timestamp.IsZero() && p.Timestamp.After(last.Timestamp):
		return last, true
	case !prev.Timestamp.IsZero() && prev.Timestamp.Before(p.Timestamp):
		return prev, true
	}
	return Point{}, false
}

func (s *store) containerPrevious(pod types.NamespacedName, container string, p Point) (Point, bool) {
	age := p.Timestamp.Sub(p.StartTime)
	if !p.StartTime.IsZero() && p.StartTime.Before(p.Timestamp) && age < s.resolution && age >= freshContainerMinAge {
		return Point{StartTime: p.StartTime, Timestamp: p.StartTime, Memory: p.Memory}, true
	}
	last, ok := s.lastPods[pod][container]
	// A container that started after its last point restarted: its
	// counters began again.
	if !ok || !p.StartTime.Before(last.Timestamp) {
		return Point{}, false
	}
	return s.previous(last, s.prevPods[pod][container], p)
}

var errDecrease = errors.New("unexpected decrease in cumulative CPU usage value")

// usage is the CPU rate between prev and last and the last memory.
func usage(last, prev Point) (corev1.ResourceList, metrics.TimeInfo, error) {
	if last.StartTime.Before(prev.StartTime) {
		return nil, metrics.TimeInfo{}, errors.New("unexpected decrease in startTime of node/container")
	}
	if last.CumulativeCPU < prev.CumulativeCPU {
		return nil, metrics.TimeInfo{}, errDecrease
	}
	window := last.Timestamp.Sub(prev.Timestamp)
	if window <= 0 {
		return nil, metrics.TimeInfo{}, errors.New("no time between the points")
	}
	nanoCores := float64(last.CumulativeCPU-prev.CumulativeCPU) / window.Seconds()
	return corev1.ResourceList{
		corev1.ResourceCPU:    quantity(uint64(nanoCores), resource.DecimalSI, -9),
		corev1.ResourceMemory: quantity(last.Memory, resource.BinarySI, 0),
	}, metrics.TimeInfo{Timestamp: last.Timestamp, Window: window}, nil
}

// quantity is val×10^scale; values past int64 lose a digit.
func quantity(val uint64, format resource.Format, scale resource.Scale) resource.Quantity {
	q := *resource.NewScaledQuantity(int64(val), scale)
	if val > math.MaxInt64 {
		q = *resource.NewScaledQuantity(int64(val/10), scale+1)
	}
	q.Format = format
	return q
}

// node is the node's usage; ok false without two points.
func (s *store) node(name string) (corev1.ResourceList, metrics.TimeInfo, bool) {
	s.mu.RLock()
	last, okLast := s.last[name]
	prev, okPrev := s.prev[name]
	s.mu.RUnlock()
	if !okLast || !okPrev {
		return nil, metrics.TimeInfo{}, false
	}
	u, at, err := usage(last, prev)
	if err != nil {
		klog.ErrorS(err, "Skipping node usage metric", "node", name)
		return nil, metrics.TimeInfo{}, false
	}
	return u, at, true
}

// pod is the usage of the pod's containers (sorted by name) at the
// earliest of their timestamps; ok false unless every container has two
// points.
func (s *store) pod(pod types.NamespacedName) ([]metricsv1beta1.ContainerMetrics, metrics.TimeInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	last, okLast := s.lastPods[pod]
	prev, okPrev := s.prevPods[pod]
	if !okLast || !okPrev {
		return nil, metrics.TimeInfo{}, false
	}
	var (
		out      = make([]metricsv1beta1.ContainerMetrics, 0, len(last))
		earliest metrics.TimeInfo
	)
	for _, name := range sortedKeys(last) {
		p, ok := prev[name]
		if !ok {
			return nil, metrics.TimeInfo{}, false
		}
		u, at, err := usage(last[name], p)
		if err != nil {
			klog.ErrorS(err, "Skipping container usage metric", "container", name, "pod", klog.KRef(pod.Namespace, pod.Name))
			continue
		}
		out = append(out, metricsv1beta1.ContainerMetrics{Name: name, Usage: u})
		if earliest.Timestamp.IsZero() || at.Timestamp.Before(earliest.Timestamp) {
			earliest = at
		}
	}
	return out, earliest, true
}
