package ipvs

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/proxy/iptables"
	"github.com/skiff-dev/skiff/pkg/proxy/metrics"
	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

const (
	// DummyDevice is the interface the service addresses are bound to.
	DummyDevice = "kube-ipvs0"
	// DefaultScheduler is round robin, as upstream's.
	DefaultScheduler = "rr"
	// fullSyncPeriod bounds how long partial syncs may go on.
	fullSyncPeriod = time.Hour
)

// Config is what a Proxier is set up with.
type Config struct {
	// NodeName is this node's: its endpoints are the local ones.
	NodeName string
	// NodeIPs are this node's, for loadBalancerSourceRanges that include it.
	NodeIPs []net.IP
	// ClusterCIDR is the pods' range: traffic to a cluster IP from outside
	// it is masqueraded. Nil: traffic whose source is a service address
	// (the node's own, through kube-ipvs0) is.
	ClusterCIDR *net.IPNet
	// MasqueradeAll masquerades all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit of KUBE-MARK-MASQ (14: 0x4000).
	MasqueradeBit int
	// Scheduler is the IPVS scheduler (--ipvs-scheduler); empty: rr.
	Scheduler string
	// ExcludeCIDRs are left alone when stale virtual servers are deleted
	// (--ipvs-exclude-cidrs).
	ExcludeCIDRs []*net.IPNet
	// NodePortAddresses are where node ports listen; empty: every node
	// address (but loopback and kube-ipvs0's).
	NodePortAddresses []net.IP
}

// Proxier keeps the kernel's IPVS table, ipsets, kube-ipvs0 addresses and
// iptables rules in line with the services. Sync is not concurrent-safe:
// one sync loop calls it.
type Proxier struct {
	ipvs     Handle
	ipset    IPSet
	dummy    Dummy
	ipt      iptables.Interface
	cfg      Config
	masqMark string

	mu           sync.Mutex
	needFullSync bool
	lastFullSync time.Time
	// What the last successful sync left, so that a partial sync changes
	// only what differs without listing the kernel's state.
	setEntries map[string]sets.Set[string]
	bound      sets.Set[string]
	// draining are the virtual servers with weight-0 real servers whose
	// connections have not ended: revisited each sync.
	draining sets.Set[string]
	// lastRestore is the last input given to iptables-restore, for tests.
	lastRestore []byte
}

// NewProxier returns a proxier on the kernel parts; the first Sync is a
// full one.
func NewProxier(handle Handle, ipset IPSet, dummy Dummy, ipt iptables.Interface, cfg Config) (*Proxier, error) {
	if handle == nil || ipset == nil || dummy == nil || ipt == nil {
		return nil, errors.New("ipvs proxier: missing kernel interface")
	}
	if cfg.Scheduler == "" {
		cfg.Scheduler = DefaultScheduler
	}
	if err := validScheduler(cfg.Scheduler); err != nil {
		return nil, err
	}
	if cfg.MasqueradeBit == 0 {
		cfg.MasqueradeBit = 14
	}
	if cfg.MasqueradeBit < 0 || cfg.MasqueradeBit > 31 {
		return nil, fmt.Errorf("invalid masquerade bit %d: 0-31", cfg.MasqueradeBit)
	}
	return &Proxier{
		ipvs:         handle,
		ipset:        ipset,
		dummy:        dummy,
		ipt:          ipt,
		cfg:          cfg,
		masqMark:     fmt.Sprintf("%#x", uint32(1)<<uint(cfg.MasqueradeBit)),
		needFullSync: true,
		draining:     sets.New[string](),
	}, nil
}

// ForceFullSync makes the next Sync compare everything with the kernel.
func (p *Proxier) ForceFullSync() {
	p.mu.Lock()
	p.needFullSync = true
	p.mu.Unlock()
}

// LastRestore is the input of the last iptables-restore.
func (p *Proxier) LastRestore() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastRestore
}

// Sync makes the kernel hold services' virtual servers and their
// endpoints, the sets and the rules; result says which services changed
// since the last Sync: a partial sync reads and writes the real servers of
// those only (and of the virtual servers still draining). Errors do not
// stop the sync: what can be done is, and the next Sync is a full one.
func (p *Proxier) Sync(services tracker.ServicePortMap, endpoints tracker.EndpointsMap, result tracker.Result) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	full := p.needFullSync || time.Since(p.lastFullSync) > fullSyncPeriod
	defer func() {
		metrics.SyncProxyRulesLatency.WithLabelValues(string(v1.IPv4Protocol)).Observe(metrics.SinceInSeconds(start))
		if err != nil {
			p.needFullSync = true
			return
		}
		if full {
			p.lastFullSync = time.Now()
		}
		p.needFullSync = false
		klog.V(2).InfoS("SyncProxyRules complete", "elapsed", time.Since(start), "fullSync", full)
	}()

	if full {
		if err := p.ensureJumps(); err != nil {
			return err
		}
	}
	if err := p.dummy.EnsureDevice(DummyDevice); err != nil {
		return fmt.Errorf("creating the dummy interface %s: %w", DummyDevice, err)
	}
	if full || p.setEntries == nil {
		if err := p.ipset.EnsureSets(Sets); err != nil {
			return fmt.Errorf("creating the ipsets: %w", err)
		}
	}

	nodeAddrs, err := p.dummy.NodeAddresses(DummyDevice)
	if err != nil {
		return fmt.Errorf("listing the node's addresses: %w", err)
	}
	nodeAddrSet := sets.New[string]()
	for _, ip := range nodeAddrs {
		nodeAddrSet.Insert(ip.String())
	}
	nodeIPs := p.nodePortIPs(nodeAddrs)
	want := p.desired(services, endpoints, nodeIPs, nodeAddrSet)

	var errs []error
	bound := p.bound
	if full || bound == nil {
		ips, err := p.dummy.Addresses(DummyDevice)
		if err != nil {
			return fmt.Errorf("listing %s's addresses: %w", DummyDevice, err)
		}
		bound = sets.New[string]()
		for _, ip := range ips {
			bound.Insert(ip.String())
		}
	}
	current, err := p.ipvs.VirtualServers()
	if err != nil {
		return fmt.Errorf("listing the IPVS virtual servers: %w", err)
	}
	currentByKey := make(map[string]*VirtualServer, len(current))
	for _, vs := range current {
		currentByKey[vs.String()] = vs
	}

	// Virtual servers and their real servers.
	keys := make([]string, 0, len(want.servers))
	for k := range want.servers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		ds := want.servers[key]
		created := false
		if cur, ok := currentByKey[key]; !ok {
			klog.V(3).InfoS("Adding IPVS virtual server", "service", ds.service, "virtualServer", key)
			if err := p.ipvs.AddVirtualServer(ds.vs); err != nil {
				errs = append(errs, fmt.Errorf("adding virtual server %s: %w", key, err))
				continue
			}
			created = true
		} else if !cur.sameSettings(ds.vs) {
			klog.V(3).InfoS("Updating IPVS virtual server", "service", ds.service, "virtualServer", key)
			if err := p.ipvs.UpdateVirtualServer(ds.vs); err != nil {
				errs = append(errs, fmt.Errorf("updating virtual server %s: %w", key, err))
				continue
			}
		}
		if full || created || result.UpdatedServices.Has(ds.service) || p.draining.Has(key) {
			if err := p.syncRealServers(ds, created); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// Service addresses on the dummy interface.
	for _, ip := range sets.List(want.bind.Difference(bound)) {
		if err := p.dummy.AddAddress(DummyDevice, net.ParseIP(ip)); err != nil {
			errs = append(errs, fmt.Errorf("binding %s to %s: %w", ip, DummyDevice, err))
			continue
		}
		bound.Insert(ip)
	}

	// Set entries.
	if err := p.syncSets(want.sets, full); err != nil {
		errs = append(errs, err)
	}

	// The rules, once the sets they match exist and are filled.
	data := p.rules(want)
	if err := p.ipt.Restore(data); err != nil {
		metrics.IPTablesRestoreFailuresTotal.WithLabelValues(string(v1.IPv4Protocol)).Inc()
		errs = append(errs, err)
	} else {
		p.lastRestore = data
	}

	// What is gone: addresses, then virtual servers (with their real
	// servers).
	for _, ip := range sets.List(bound.Difference(want.bind)) {
		if err := p.dummy.DeleteAddress(DummyDevice, net.ParseIP(ip)); err != nil {
			errs = append(errs, fmt.Errorf("unbinding %s from %s: %w", ip, DummyDevice, err))
			continue
		}
		bound.Delete(ip)
	}
	p.bound = bound
	staleKeys := make([]string, 0)
	for key := range currentByKey {
		if _, ok := want.servers[key]; !ok {
			staleKeys = append(staleKeys, key)
		}
	}
	sort.Strings(staleKeys)
	for _, key := range staleKeys {
		vs := currentByKey[key]
		if vs.Address.To4() == nil || p.excluded(vs.Address) {
			continue
		}
		klog.V(3).InfoS("Deleting IPVS virtual server", "virtualServer", key)
		if err := p.ipvs.DeleteVirtualServer(vs); err != nil {
			errs = append(errs, fmt.Errorf("deleting virtual server %s: %w", key, err))
			continue
		}
		p.draining.Delete(key)
	}

	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("internal", string(v1.IPv4Protocol)).Set(float64(want.noLocalInternal.Len()))
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("external", string(v1.IPv4Protocol)).Set(float64(want.noLocalExternal.Len()))
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	metrics.SyncProxyRulesLastTimestamp.WithLabelValues(string(v1.IPv4Protocol)).SetToCurrentTime()
	for name, times := range result.TriggerTimes {
		for _, at := range times {
			latency := metrics.SinceInSeconds(at)
			metrics.NetworkProgrammingLatency.WithLabelValues(string(v1.IPv4Protocol)).Observe(latency)
			klog.V(4).InfoS("Network programming", "endpoint", klog.KRef(name.Namespace, name.Name), "elapsed", latency)
		}
	}
	return nil
}

// syncRealServers makes ds' real servers the wanted ones. A removed TCP
// real server with connections is drained as upstream's graceful
// termination: weight 0 (no new connections) until its connections end,
// then deleted; UDP and SCTP ones go at once (expire_nodest_conn ends
// their flows).
func (p *Proxier) syncRealServers(ds *desiredServer, created bool) error {
	key := ds.vs.String()
	var current []*RealServer
	if !created {
		var err error
		if current, err = p.ipvs.RealServers(ds.vs); err != nil {
			return fmt.Errorf("listing the real servers of %s: %w", key, err)
		}
	}
	have := make(map[string]*RealServer, len(current))
	for _, rs := range current {
		have[rs.String()] = rs
	}
	var errs []error
	wanted := sets.New[string]()
	for _, rs := range ds.dests {
		wanted.Insert(rs.String())
		cur, ok := have[rs.String()]
		switch {
		case !ok:
			if err := p.ipvs.AddRealServer(ds.vs, rs); err != nil {
				errs = append(errs, fmt.Errorf("adding real server %s to %s: %w", rs, key, err))
			}
		case cur.Weight != rs.Weight:
			// Back from draining, or a weight of an earlier run.
			if err := p.ipvs.UpdateRealServer(ds.vs, rs); err != nil {
				errs = append(errs, fmt.Errorf("updating real server %s of %s: %w", rs, key, err))
			}
		}
	}
	drainingLeft := false
	for _, rs := range current {
		if wanted.Has(rs.String()) {
			continue
		}
		graceful := !strings.EqualFold(ds.vs.Protocol, string(v1.ProtocolUDP)) && !strings.EqualFold(ds.vs.Protocol, string(v1.ProtocolSCTP))
		if graceful && rs.ActiveConn+rs.InactiveConn > 0 {
			drainingLeft = true
			if rs.Weight != 0 {
				klog.V(3).InfoS("Draining IPVS real server", "virtualServer", key, "realServer", rs.String(), "activeConnections", rs.ActiveConn, "inactiveConnections", rs.InactiveConn)
				drained := *rs
				drained.Weight = 0
				if err := p.ipvs.UpdateRealServer(ds.vs, &drained); err != nil {
					errs = append(errs, fmt.Errorf("draining real server %s of %s: %w", rs, key, err))
				}
			}
			continue
		}
		klog.V(3).InfoS("Deleting IPVS real server", "virtualServer", key, "realServer", rs.String())
		if err := p.ipvs.DeleteRealServer(ds.vs, rs); err != nil {
			errs = append(errs, fmt.Errorf("deleting real server %s of %s: %w", rs, key, err))
		}
	}
	if drainingLeft {
		p.draining.Insert(key)
	} else {
		p.draining.Delete(key)
	}
	return errors.Join(errs...)
}

// syncSets gives every set its wanted entries in one batch: compared with
// the kernel's in a full sync, else with the last sync's.
func (p *Proxier) syncSets(want map[string]sets.Set[string], full bool) error {
	have := p.setEntries
	if full || have == nil {
		have = map[string]sets.Set[string]{}
		for _, s := range Sets {
			entries, err := p.ipset.ListEntries(s.Name)
			if err != nil {
				return fmt.Errorf("listing ipset %s: %w", s.Name, err)
			}
			have[s.Name] = sets.New(entries...)
		}
	}
	var changes []SetChange
	for _, s := range Sets {
		for _, e := range sets.List(have[s.Name].Difference(want[s.Name])) {
			changes = append(changes, SetChange{Set: s.Name, Entry: e, Delete: true})
		}
		for _, e := range sets.List(want[s.Name].Difference(have[s.Name])) {
			changes = append(changes, SetChange{Set: s.Name, Entry: e})
		}
	}
	if len(changes) > 0 {
		if err := p.ipset.Apply(changes); err != nil {
			p.setEntries = nil
			return fmt.Errorf("updating the ipsets: %w", err)
		}
	}
	p.setEntries = want
	return nil
}

// nodePortIPs are the addresses node ports listen on.
func (p *Proxier) nodePortIPs(nodeAddrs []net.IP) []net.IP {
	var ips []net.IP
	source := nodeAddrs
	if len(p.cfg.NodePortAddresses) > 0 {
		source = p.cfg.NodePortAddresses
	}
	seen := sets.New[string]()
	for _, ip := range source {
		if ip = ip.To4(); ip == nil || ip.IsLoopback() || seen.Has(ip.String()) {
			continue
		}
		seen.Insert(ip.String())
		ips = append(ips, ip)
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].String() < ips[j].String() })
	return ips
}

func (p *Proxier) excluded(ip net.IP) bool {
	for _, cidr := range p.cfg.ExcludeCIDRs {
		if cidr.Contains(ip) {
			return true
		}
	}
	return false
}
