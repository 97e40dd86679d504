package service

// The allocation repair loop, as upstream's ClusterIP and NodePort repair
// controllers: every few minutes the stored bitmaps are made to agree with
// the Services. An item a Service holds but the bitmap lacks is taken again;
// an item no Service holds is released once it stayed unheld for several
// rounds (a fresh allocation's Service may not be written yet); an item two
// Services hold, or one outside the range, cannot be mended here and is
// reported on the Services, as upstream does.

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

const (
	// RepairInterval is how often upstream's repair controllers run.
	RepairInterval = 3 * time.Minute
	// leakRounds: an unheld item is released on the round that sees it
	// unheld for the leakRounds-th time in a row (upstream's
	// numRepairsBeforeLeakCleanup).
	leakRounds = 3
)

var (
	ipRepairErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "apiserver", Name: "clusterip_repair_ip_errors_total",
		Help:           "Number of errors detected on clusterips by the repair loop broken down by type of error: leak, repair, full, outOfRange, duplicate, unknown, invalid",
		StabilityLevel: metrics.ALPHA,
	}, []string{"type"})
	portRepairErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "apiserver", Name: "nodeport_repair_port_errors_total",
		Help:           "Number of errors detected on ports by the repair loop broken down by type of error: leak, repair, full, outOfRange, duplicate, unknown",
		StabilityLevel: metrics.ALPHA,
	}, []string{"type"})
)

func init() { legacyregistry.MustRegister(ipRepairErrors, portRepairErrors) }

// EventRecorder records a Warning event on a Service (client-go's
// events.EventRecorder fits).
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Repairer runs the repair rounds of one API server. Several API servers
// may repair at once: each round is one compare-and-swap per bitmap.
type Repairer struct {
	Allocators *Allocators
	// List returns every Service.
	List func(ctx context.Context) ([]corev1.Service, error)
	// IPEvents and PortEvents record the warnings on Services, as
	// upstream's ipallocator- and portallocator-repair-controller.
	IPEvents, PortEvents EventRecorder

	// How many rounds in a row an item was seen unheld, per range.
	ipLeaks, portLeaks map[int]int
}

// Run repairs every interval until ctx ends (the first round after one
// interval: the caller repairs once at start, before serving).
func (r *Repairer) Run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Repairing the Service allocations failed; retrying next round", "interval", interval)
		}
	}
}

// RunOnce is one repair round.
func (r *Repairer) RunOnce(ctx context.Context) error {
	if r.ipLeaks == nil {
		r.ipLeaks, r.portLeaks = map[int]int{}, map[int]int{}
	}
	services, err := r.List(ctx)
	if err != nil {
		return err
	}
	heldIPs, heldPorts := r.held(services)
	ips, ports := r.Allocators.IPs, r.Allocators.Ports

	missing, unheld, released, err := ips.Reconcile(ctx, keys(heldIPs), r.releasable(r.ipLeaks))
	if err != nil {
		return fmt.Errorf("ClusterIPs: %w", err)
	}
	r.count(r.ipLeaks, unheld, released)
	for _, i := range missing {
		ipRepairErrors.WithLabelValues("repair").Inc()
		ip := ips.IP(i)
		r.warn(r.IPEvents, heldIPs[i][0], "ClusterIPNotAllocated", "ClusterIPAllocation", "Cluster IP [%s]:%s is not allocated; repairing", family(ip), ip)
	}
	for _, i := range released {
		ipRepairErrors.WithLabelValues("leak").Inc()
		klog.InfoS("Released a ClusterIP that no Service holds", "ip", ips.IP(i))
	}

	missing, unheld, released, err = ports.Reconcile(ctx, keys(heldPorts), r.releasable(r.portLeaks))
	if err != nil {
		return fmt.Errorf("NodePorts: %w", err)
	}
	r.count(r.portLeaks, unheld, released)
	for _, i := range missing {
		portRepairErrors.WithLabelValues("repair").Inc()
		r.warn(r.PortEvents, heldPorts[i][0], "PortNotAllocated", "PortAllocation", "Port %d is not allocated; repairing", ports.Port(i))
	}
	for _, i := range released {
		portRepairErrors.WithLabelValues("leak").Inc()
		klog.InfoS("Released a NodePort that no Service holds", "port", ports.Port(i))
	}
	return nil
}

// held maps each in-range item to the Services holding it, and reports the
// items held twice and those outside the ranges.
func (r *Repairer) held(services []corev1.Service) (ips, ports map[int][]*corev1.Service) {
	ips, ports = map[int][]*corev1.Service{}, map[int][]*corev1.Service{}
	for i := range services {
		svc := &services[i]
		for _, ip := range clusterIPs(svc) {
			if ip == corev1.ClusterIPNone {
				continue
			}
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				ipRepairErrors.WithLabelValues("invalid").Inc()
				continue
			}
			if addr.Is6() != r.Allocators.IPs.IPv6() {
				continue // another family's range, not served here
			}
			item := r.Allocators.IPs.Index(ip)
			switch {
			case item < 0:
				ipRepairErrors.WithLabelValues("outOfRange").Inc()
				r.warn(r.IPEvents, svc, "ClusterIPOutOfRange", "ClusterIPAllocation", "Cluster IP [%s]:%s is not within the service CIDR %s; please recreate service",
					family(ip), ip, r.Allocators.IPs.CIDR())
			case len(ips[item]) > 0:
				ipRepairErrors.WithLabelValues("duplicate").Inc()
				r.warn(r.IPEvents, svc, "ClusterIPAlreadyAllocated", "ClusterIPAllocation", "Cluster IP [%s]:%s was assigned to multiple services; please recreate service", family(ip), ip)
				ips[item] = append(ips[item], svc)
			default:
				ips[item] = append(ips[item], svc)
			}
		}
		seen := map[int]bool{} // one port may serve TCP and UDP of one Service
		for _, port := range nodePorts(svc) {
			item := r.Allocators.Ports.Index(port)
			switch {
			case seen[port]:
			case item < 0:
				portRepairErrors.WithLabelValues("outOfRange").Inc()
				r.warn(r.PortEvents, svc, "PortOutOfRange", "PortAllocation", "Port %d is not within the port range %s; please recreate service", port, r.Allocators.Ports.PortRange().String())
			case len(ports[item]) > 0:
				portRepairErrors.WithLabelValues("duplicate").Inc()
				r.warn(r.PortEvents, svc, "PortAlreadyAllocated", "PortAllocation", "Port %d was assigned to multiple services; please recreate service", port)
				ports[item] = append(ports[item], svc)
			default:
				ports[item] = append(ports[item], svc)
			}
			seen[port] = true
		}
	}
	return ips, ports
}

// releasable: an item is released on its leakRounds-th unheld round.
func (r *Repairer) releasable(leaks map[int]int) func(int) bool {
	return func(i int) bool { return leaks[i]+1 >= leakRounds }
}

// count records the round's unheld items; items held again start over.
func (r *Repairer) count(leaks map[int]int, unheld, released []int) {
	now := map[int]bool{}
	for _, i := range unheld {
		now[i] = true
	}
	for i := range leaks {
		if !now[i] {
			delete(leaks, i)
		}
	}
	for _, i := range unheld {
		leaks[i]++
	}
	for _, i := range released {
		delete(leaks, i)
	}
}

func (r *Repairer) warn(events EventRecorder, svc *corev1.Service, reason, action, note string, args ...interface{}) {
	klog.InfoS("Service allocation problem", "service", klog.KObj(svc), "reason", reason, "message", fmt.Sprintf(note, args...))
	if events != nil {
		events.Eventf(svc, nil, corev1.EventTypeWarning, reason, action, note, args...)
	}
}

func family(ip string) corev1.IPFamily {
	if addr, err := netip.ParseAddr(ip); err == nil && addr.Is6() {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

func keys(m map[int][]*corev1.Service) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
