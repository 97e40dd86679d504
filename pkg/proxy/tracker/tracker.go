package tracker

import (
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"
)

// LabelServiceProxyName on a Service hands it to another proxy: kube-proxy
// (and so skiff's) leaves it alone.
const LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// ServicePortMap is every proxied service port.
type ServicePortMap map[ServicePortName]*ServicePort

// EndpointsMap is every service port's endpoints, sorted by "ip:port".
type EndpointsMap map[ServicePortName][]*Endpoint

// Result tells what one Apply changed.
type Result struct {
	// UpdatedServices had their Service or EndpointSlices changed.
	UpdatedServices sets.Set[types.NamespacedName]
	// TriggerTimes are the EndpointSlices' endpoints.kubernetes.io/last-change-trigger-time
	// annotations since the last Apply: when the change that led to them
	// happened, for the network programming latency.
	TriggerTimes map[types.NamespacedName][]time.Time
	// UDPChanged: a UDP port's endpoints changed, so conntrack entries to
	// removed endpoints may be stale.
	UDPChanged bool
}

// Tracker accumulates Service and EndpointSlice events of one IP family
// between syncs. Its Update methods may be called from informer handlers
// while the sync loop owns Services and Endpoints, which only Apply changes.
type Tracker struct {
	family      v1.IPFamily
	addressType discovery.AddressType
	nodeName    string
	startTime   time.Time

	mu           sync.Mutex
	services     map[types.NamespacedName]*serviceChange
	slices       map[types.NamespacedName]*sliceTracker
	triggerTimes map[types.NamespacedName][]time.Time

	// Services and Endpoints are the state as of the last Apply.
	Services  ServicePortMap
	Endpoints EndpointsMap
}

type serviceChange struct {
	previous, current ServicePortMap
}

// sliceTracker holds one Service's slices as applied and as pending.
type sliceTracker struct {
	applied map[string]*discovery.EndpointSlice
	// pending maps a slice name to its new state; nil: being removed.
	pending map[string]*discovery.EndpointSlice
}

// New returns a tracker for family on node nodeName (whose endpoints are
// local).
func New(family v1.IPFamily, nodeName string) *Tracker {
	addressType := discovery.AddressTypeIPv4
	if family == v1.IPv6Protocol {
		addressType = discovery.AddressTypeIPv6
	}
	return &Tracker{
		family:       family,
		addressType:  addressType,
		nodeName:     nodeName,
		startTime:    time.Now(),
		services:     map[types.NamespacedName]*serviceChange{},
		slices:       map[types.NamespacedName]*sliceTracker{},
		triggerTimes: map[types.NamespacedName][]time.Time{},
		Services:     ServicePortMap{},
		Endpoints:    EndpointsMap{},
	}
}

// ServiceUpdate records a Service's change (previous nil: added; current
// nil: deleted) and tells whether changes are pending.
func (t *Tracker) ServiceUpdate(previous, current *v1.Service) bool {
	svc := current
	if svc == nil {
		svc = previous
	}
	if svc == nil {
		return false
	}
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	change, ok := t.services[name]
	if !ok {
		change = &serviceChange{previous: t.servicePorts(previous)}
		t.services[name] = change
	}
	change.current = t.servicePorts(current)
	if reflect.DeepEqual(change.previous, change.current) {
		delete(t.services, name)
	}
	return len(t.services) > 0
}

// EndpointSliceUpdate records a slice's change (remove: deleted) and
// tells whether it changed anything.
func (t *Tracker) EndpointSliceUpdate(slice *discovery.EndpointSlice, remove bool) bool {
	if slice.AddressType != t.addressType {
		return false
	}
	if _, headless := slice.Labels[v1.IsHeadlessService]; headless {
		return false
	}
	service, ok := slice.Labels[discovery.LabelServiceName]
	if !ok || service == "" {
		klog.V(4).InfoS("Ignoring EndpointSlice without a service name label", "endpointSlice", klog.KObj(slice))
		return false
	}
	name := types.NamespacedName{Namespace: slice.Namespace, Name: service}
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.slices[name]
	if !ok {
		st = &sliceTracker{applied: map[string]*discovery.EndpointSlice{}, pending: map[string]*discovery.EndpointSlice{}}
		t.slices[name] = st
	}
	var next *discovery.EndpointSlice
	if !remove {
		next = slice
	}
	last, pending := st.pending[slice.Name]
	if !pending {
		last = st.applied[slice.Name]
	}
	if reflect.DeepEqual(last, next) {
		return false
	}
	st.pending[slice.Name] = next
	if !remove {
		if at := lastChangeTriggerTime(slice); !at.IsZero() && at.After(t.startTime) {
			t.triggerTimes[name] = append(t.triggerTimes[name], at)
		}
	} else {
		delete(t.triggerTimes, name)
	}
	return true
}

// Apply moves the pending changes into Services and Endpoints.
func (t *Tracker) Apply() Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	result := Result{UpdatedServices: sets.New[types.NamespacedName](), TriggerTimes: t.triggerTimes}
	t.triggerTimes = map[types.NamespacedName][]time.Time{}
	for name, change := range t.services {
		result.UpdatedServices.Insert(name)
		for port := range change.previous {
			delete(t.Services, port)
		}
		for port, info := range change.current {
			t.Services[port] = info
		}
	}
	t.services = map[types.NamespacedName]*serviceChange{}
	for name, st := range t.slices {
		if len(st.pending) == 0 {
			continue
		}
		previous := t.endpoints(name, st.applied)
		for slice, next := range st.pending {
			if next == nil {
				delete(st.applied, slice)
			} else {
				st.applied[slice] = next
			}
		}
		st.pending = map[string]*discovery.EndpointSlice{}
		if len(st.applied) == 0 {
			delete(t.slices, name)
		}
		current := t.endpoints(name, st.applied)
		result.UpdatedServices.Insert(name)
		for port := range previous {
			delete(t.Endpoints, port)
			result.UDPChanged = result.UDPChanged || port.Protocol == v1.ProtocolUDP
		}
		for port, eps := range current {
			t.Endpoints[port] = eps
			result.UDPChanged = result.UDPChanged || port.Protocol == v1.ProtocolUDP
		}
	}
	return result
}

// servicePorts is svc's ports in the tracker's family; nil for what the
// proxy skips: no cluster IP (headless) or none of this family,
// ExternalName, another proxy's.
func (t *Tracker) servicePorts(svc *v1.Service) ServicePortMap {
	if svc == nil || svc.Spec.Type == v1.ServiceTypeExternalName {
		return nil
	}
	if _, other := svc.Labels[LabelServiceProxyName]; other {
		return nil
	}
	clusterIP := t.clusterIP(svc)
	if clusterIP == nil {
		return nil
	}
	externallyAccessible := svc.Spec.Type == v1.ServiceTypeLoadBalancer || svc.Spec.Type == v1.ServiceTypeNodePort ||
		(svc.Spec.Type == v1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) > 0)
	externalLocal := externallyAccessible && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	sticky := 0
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		sticky = int(v1.DefaultClientIPServiceAffinitySeconds)
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			sticky = int(*c.ClientIP.TimeoutSeconds)
		}
	}
	var externalIPs, lbIPs []net.IP
	for _, s := range svc.Spec.ExternalIPs {
		if ip := netutils.ParseIPSloppy(s); ip != nil && t.ofFamily(ip) {
			externalIPs = append(externalIPs, ip)
		} else if ip == nil && strings.TrimSpace(s) != "" {
			klog.ErrorS(nil, "Skipping invalid external IP", "service", klog.KObj(svc), "ip", s)
		}
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != v1.LoadBalancerIPModeVIP) {
			continue
		}
		if ip := netutils.ParseIPSloppy(ing.IP); ip != nil && t.ofFamily(ip) {
			lbIPs = append(lbIPs, ip)
		}
	}
	var sourceRanges []*net.IPNet
	for _, s := range svc.Spec.LoadBalancerSourceRanges {
		_, cidr, err := netutils.ParseCIDRSloppy(strings.TrimSpace(s))
		if err != nil || !t.ofFamily(cidr.IP) {
			continue
		}
		if ones, _ := cidr.Mask.Size(); ones == 0 {
			// Open to all: no firewall.
			sourceRanges = nil
			break
		}
		sourceRanges = append(sourceRanges, cidr)
	}
	healthCheckNodePort := 0
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer && externalLocal {
		healthCheckNodePort = int(svc.Spec.HealthCheckNodePort)
	}
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	ports := ServicePortMap{}
	for _, p := range svc.Spec.Ports {
		protocol := p.Protocol
		if protocol == "" {
			protocol = v1.ProtocolTCP
		}
		ports[ServicePortName{NamespacedName: name, Port: p.Name, Protocol: protocol}] = &ServicePort{
			ClusterIP:                clusterIP,
			Port:                     int(p.Port),
			Protocol:                 protocol,
			NodePort:                 int(p.NodePort),
			ExternalIPs:              externalIPs,
			LoadBalancerVIPs:         lbIPs,
			LoadBalancerSourceRanges: sourceRanges,
			SessionAffinity:          svc.Spec.SessionAffinity,
			StickyMaxAgeSeconds:      sticky,
			HealthCheckNodePort:      healthCheckNodePort,
			ExternalPolicyLocal:      externalLocal,
			InternalPolicyLocal:      internalLocal,
		}
	}
	return ports
}

// clusterIP is svc's cluster IP of the tracker's family, nil if none.
func (t *Tracker) clusterIP(svc *v1.Service) net.IP {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if s == v1.ClusterIPNone {
			return nil
		}
		if ip := netutils.ParseIPSloppy(s); ip != nil && t.ofFamily(ip) {
			return ip
		}
	}
	return nil
}

func (t *Tracker) ofFamily(ip net.IP) bool {
	return (ip.To4() != nil) == (t.family == v1.IPv4Protocol)
}

// endpoints is the endpoints of service name's slices per service port.
// An address in several slices counts once, its non-terminating entry
// winning (as upstream's during a rollout).
func (t *Tracker) endpoints(name types.NamespacedName, slices map[string]*discovery.EndpointSlice) EndpointsMap {
	byPort := map[ServicePortName]map[string]*Endpoint{}
	for _, slice := range slices {
		for _, port := range slice.Ports {
			if port.Name == nil || port.Port == nil || *port.Port == 0 {
				continue
			}
			protocol := v1.ProtocolTCP
			if port.Protocol != nil {
				protocol = *port.Protocol
			}
			spn := ServicePortName{NamespacedName: name, Port: *port.Name, Protocol: protocol}
			set := byPort[spn]
			if set == nil {
				set = map[string]*Endpoint{}
				byPort[spn] = set
			}
			for _, ep := range slice.Endpoints {
				if len(ep.Addresses) == 0 {
					continue
				}
				ip := netutils.ParseIPSloppy(ep.Addresses[0])
				if ip == nil {
					continue
				}
				e := &Endpoint{
					IP:          ip.String(),
					Port:        int(*port.Port),
					Ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
					Serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
					Terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
				}
				if ep.NodeName != nil {
					e.NodeName = *ep.NodeName
					e.Local = t.nodeName != "" && e.NodeName == t.nodeName
				}
				if ep.Zone != nil {
					e.Zone = *ep.Zone
				}
				if _, seen := set[e.String()]; !seen || !e.Terminating {
					set[e.String()] = e
				}
			}
		}
	}
	m := EndpointsMap{}
	for spn, set := range byPort {
		if len(set) == 0 {
			continue
		}
		eps := make([]*Endpoint, 0, len(set))
		for _, e := range set {
			eps = append(eps, e)
		}
		sort.Slice(eps, func(i, j int) bool { return eps[i].String() < eps[j].String() })
		m[spn] = eps
	}
	return m
}

func lastChangeTriggerTime(slice *discovery.EndpointSlice) time.Time {
	v, ok := slice.Annotations[v1.EndpointsLastChangeTriggerTime]
	if !ok {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		klog.ErrorS(err, "Ignoring an unparsable last-change-trigger-time", "endpointSlice", klog.KObj(slice), "value", v)
	}
	return at
}

// Categorize splits a service port's endpoints as upstream's
// CategorizeEndpoints (without topology hints): cluster are the ready
// ones, or the serving terminating ones when none is ready; local the same
// among this node's; reachable every endpoint some rule may send to; any:
// whether any usable endpoint exists on any node.
func Categorize(endpoints []*Endpoint, svc *ServicePort) (cluster, local, reachable []*Endpoint, any bool) {
	if len(endpoints) == 0 {
		return nil, nil, nil, false
	}
	if svc.UsesClusterEndpoints() {
		cluster = filter(endpoints, func(e *Endpoint) bool { return e.Ready })
		if len(cluster) == 0 {
			cluster = filter(endpoints, func(e *Endpoint) bool { return e.Serving && e.Terminating })
		}
		any = len(cluster) > 0
	}
	if !svc.UsesLocalEndpoints() {
		return cluster, nil, cluster, any
	}
	var localReady, localServingTerminating bool
	for _, e := range endpoints {
		switch {
		case e.Ready:
			any = true
			localReady = localReady || e.Local
		case e.Serving && e.Terminating:
			any = true
			localServingTerminating = localServingTerminating || e.Local
		}
	}
	servingTerminating := false
	if localReady {
		local = filter(endpoints, func(e *Endpoint) bool { return e.Local && e.Ready })
	} else if localServingTerminating {
		servingTerminating = true
		local = filter(endpoints, func(e *Endpoint) bool { return e.Local && e.Serving && e.Terminating })
	}
	if !svc.UsesClusterEndpoints() {
		return nil, local, local, any
	}
	if !servingTerminating {
		// local ⊆ cluster: both are the ready ones.
		return cluster, local, cluster, any
	}
	seen := map[string]bool{}
	for _, e := range append(append([]*Endpoint{}, cluster...), local...) {
		if !seen[e.String()] {
			seen[e.String()] = true
			reachable = append(reachable, e)
		}
	}
	return cluster, local, reachable, any
}

func filter(endpoints []*Endpoint, keep func(*Endpoint) bool) []*Endpoint {
	var out []*Endpoint
	for _, e := range endpoints {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// LocalReadyEndpoints counts each service's ready endpoint IPs on this
// node, for health-check node ports.
func (m EndpointsMap) LocalReadyEndpoints() map[types.NamespacedName]int {
	ips := map[types.NamespacedName]sets.Set[string]{}
	for spn, eps := range m {
		for _, e := range eps {
			if e.Ready && e.Local {
				if ips[spn.NamespacedName] == nil {
					ips[spn.NamespacedName] = sets.New[string]()
				}
				ips[spn.NamespacedName].Insert(e.IP)
			}
		}
	}
	counts := map[types.NamespacedName]int{}
	for name, s := range ips {
		counts[name] = s.Len()
	}
	return counts
}

// String is for logs.
func (r Result) String() string {
	return fmt.Sprintf("%d services updated", r.UpdatedServices.Len())
}

// HealthCheckNodePorts maps each service with a health-check node port
// to it.
func (m ServicePortMap) HealthCheckNodePorts() map[types.NamespacedName]uint16 {
	ports := map[types.NamespacedName]uint16{}
	for name, p := range m {
		if p.HealthCheckNodePort != 0 {
			ports[name.NamespacedName] = uint16(p.HealthCheckNodePort)
		}
	}
	return ports
}
