package nftables

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/pkg/proxy/metrics"
	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

const (
	// fullSyncPeriod bounds how long partial syncs may go on.
	fullSyncPeriod = time.Hour
	// staleChainDelay: a chain a map element pointed to is deleted this
	// long after it was flushed (kernels before 6.2 notice the element's
	// removal late and refuse the delete).
	staleChainDelay = time.Second
)

// Config is what a Proxier is set up with.
type Config struct {
	// NodeName is this node's: its endpoints are the local ones.
	NodeName string
	// NodeIPs are this node's, for loadBalancerSourceRanges that include it.
	NodeIPs []net.IP
	// ClusterCIDR is the pods' range: traffic to a cluster IP from
	// outside it is masqueraded. Nil: no such rule.
	ClusterCIDR *net.IPNet
	// MasqueradeAll masquerades all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeBit is the mark bit for masquerading (14: 0x4000).
	MasqueradeBit int
	// NodePortAddresses limit NodePorts to these addresses; empty: every
	// local address but loopback (nftables mode never serves NodePorts on
	// 127.0.0.1).
	NodePortAddresses []net.IP
}

// Proxier writes the kube-proxy table. Sync is not concurrent-safe: one
// sync loop calls it.
type Proxier struct {
	nft      knftables.Interface
	cfg      Config
	masqMark string
	masqRule string

	mu           sync.Mutex
	needFullSync bool
	lastFullSync time.Time
	// baseChainsRecreated: the base chains were deleted and made anew once
	// (a table left by another version may have other priorities).
	baseChainsRecreated bool
	// applied is what each Service has in the table now.
	applied map[types.NamespacedName]*serviceRules
	// elements are the table's service elements and who owns each.
	elements map[elementID]ownedElement
	// staleChains were flushed at the time given, to be deleted later.
	staleChains map[string]time.Time
	// contested are elements wanted by a service while another owned
	// them, during one sync.
	contested []contestedElement
	// lastTransaction is the last transaction run, for tests and logs.
	lastTransaction string
	lastWasFull     bool
}

type contestedElement struct {
	element
	by types.NamespacedName
}

type ownedElement struct {
	value string
	owner types.NamespacedName
}

// NewProxier returns a proxier on nft (table kube-proxy, family ip); the
// first Sync is a full one.
func NewProxier(nft knftables.Interface, cfg Config) *Proxier {
	registerMetrics()
	if cfg.MasqueradeBit == 0 {
		cfg.MasqueradeBit = 14
	}
	mark := fmt.Sprintf("%#08x", 1<<uint(cfg.MasqueradeBit))
	return &Proxier{
		nft:          nft,
		cfg:          cfg,
		masqMark:     mark,
		masqRule:     "mark set mark or " + mark,
		needFullSync: true,
		applied:      map[types.NamespacedName]*serviceRules{},
		elements:     map[elementID]ownedElement{},
		staleChains:  map[string]time.Time{},
	}
}

// ForceFullSync makes the next Sync rewrite the whole table.
func (p *Proxier) ForceFullSync() {
	p.mu.Lock()
	p.needFullSync = true
	p.mu.Unlock()
}

// LastTransaction is the last transaction run and whether it was a full sync.
func (p *Proxier) LastTransaction() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastTransaction, p.lastWasFull
}

// Sync writes the rules of services and their endpoints: the first time
// (and after a failure, or hourly) the whole table, else only what
// changed for the services result names.
func (p *Proxier) Sync(services tracker.ServicePortMap, endpoints tracker.EndpointsMap, result tracker.Result) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx := context.TODO()
	start := time.Now()
	p.deleteStaleChains(ctx, start)
	full := p.needFullSync || time.Since(p.lastFullSync) > fullSyncPeriod
	defer func() {
		metrics.SyncProxyRulesLatency.WithLabelValues(string(v1.IPv4Protocol)).Observe(metrics.SinceInSeconds(start))
		if err != nil {
			// The changes are consumed: only a full sync can catch up.
			p.needFullSync = true
			return
		}
		if full {
			p.lastFullSync = time.Now()
		}
		p.needFullSync = false
		klog.V(2).InfoS("SyncProxyRules complete", "elapsed", time.Since(start), "fullSync", full)
	}()

	err = p.write(ctx, services, endpoints, result, full, start)
	if err != nil && !full && knftables.IsNotFound(err) {
		// The table (or part of it) was deleted behind our back (nft
		// flush ruleset, a firewall reload): written whole again.
		klog.InfoS("The kube-proxy nftables table is not as written: writing it whole", "err", err)
		full = true
		err = p.write(ctx, services, endpoints, result, full, start)
	}
	if err != nil {
		return err
	}

	noLocalInternal, noLocalExternal := 0, 0
	for _, r := range p.applied {
		noLocalInternal += r.noLocalInternal
		noLocalExternal += r.noLocalExternal
	}
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("internal", string(v1.IPv4Protocol)).Set(float64(noLocalInternal))
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("external", string(v1.IPv4Protocol)).Set(float64(noLocalExternal))
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

// write runs the one transaction of a sync.
func (p *Proxier) write(ctx context.Context, services tracker.ServicePortMap, endpoints tracker.EndpointsMap, result tracker.Result, full bool, start time.Time) error {
	tx := p.nft.NewTransaction()
	var existingChains, existingSets []string
	if !full {
		// A canary: fails the transaction (not found) when the table is
		// gone, even when nothing else changed.
		tx.Flush(&knftables.Chain{Name: rejectChain})
		tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "reject"})
	}
	if full {
		p.applied = map[types.NamespacedName]*serviceRules{}
		p.elements = map[elementID]ownedElement{}
		p.staleChains = map[string]time.Time{}
		existingChains, existingSets = p.listServiceObjects(ctx)
		p.setupTable(tx)
	}

	byService := map[types.NamespacedName][]tracker.ServicePortName{}
	for name := range services {
		byService[name.NamespacedName] = append(byService[name.NamespacedName], name)
	}
	changed := sets.New[types.NamespacedName]()
	if full {
		for name := range byService {
			changed.Insert(name)
		}
	} else {
		for name := range result.UpdatedServices {
			changed.Insert(name)
		}
	}
	// Sorted: the same state gives the same transaction.
	order := changed.UnsortedList()
	sort.Slice(order, func(i, j int) bool { return order[i].String() < order[j].String() })

	var staleSets []string
	for _, name := range order {
		var next *serviceRules
		if ports := byService[name]; len(ports) > 0 {
			sort.Slice(ports, func(i, j int) bool {
				if ports[i].Port != ports[j].Port {
					return ports[i].Port < ports[j].Port
				}
				return ports[i].Protocol < ports[j].Protocol
			})
			next = &serviceRules{}
			for _, port := range ports {
				p.portRules(next, port, services[port], endpoints[port])
			}
		}
		staleSets = append(staleSets, p.applyService(tx, name, p.applied[name], next, start)...)
		if next == nil {
			delete(p.applied, name)
		} else {
			p.applied[name] = next
		}
	}

	for _, c := range p.contested {
		id := c.id()
		if cur, taken := p.elements[id]; taken {
			klog.V(2).InfoS("Two services want the same nftables element: the first keeps it",
				"container", c.container, "key", id.key, "owner", cur.owner, "service", c.by)
			continue
		}
		tx.Add(c.obj())
		p.elements[id] = ownedElement{value: strings.Join(c.value, " . "), owner: c.by}
	}
	p.contested = nil

	if full {
		// Leftovers of services gone while no proxy ran.
		active, activeSets := sets.New[string](), sets.New[string]()
		for _, r := range p.applied {
			for _, c := range r.chains {
				active.Insert(c.name)
			}
			for _, s := range r.affinitySets {
				activeSets.Insert(s.name)
			}
		}
		for _, c := range existingChains {
			if !active.Has(c) {
				tx.Flush(&knftables.Chain{Name: c})
				p.staleChains[c] = start
			}
		}
		for _, s := range existingSets {
			if !activeSets.Has(s) {
				staleSets = append(staleSets, s)
			}
		}
	}
	// Last: no rule refers to them any more.
	for _, s := range staleSets {
		tx.Delete(&knftables.Set{Name: s})
	}

	if err := p.nft.Run(ctx, tx); err != nil {
		syncFailuresTotal.WithLabelValues(string(v1.IPv4Protocol)).Inc()
		// Nothing of the transaction happened: the state is rebuilt by
		// the full sync that follows.
		p.staleChains = map[string]time.Time{}
		p.contested = nil
		klog.V(4).InfoS("Failed nftables transaction", "transaction", tx.String())
		return fmt.Errorf("nftables transaction (%d operations, full sync %t): %w", tx.NumOperations(), full, err)
	}
	p.lastTransaction, p.lastWasFull = tx.String(), full
	klog.V(2).InfoS("Reloading service nftables data", "numServices", len(services), "servicesWritten", len(order),
		"operations", tx.NumOperations(), "fullSync", full)
	return nil
}

// listServiceObjects lists the table's per-service chains and affinity
// sets (none when there is no table yet).
func (p *Proxier) listServiceObjects(ctx context.Context) (chains, affinitySets []string) {
	all, err := p.nft.ListAll(ctx)
	if err != nil {
		if !knftables.IsNotFound(err) {
			klog.ErrorS(err, "Cannot list the kube-proxy table: stale chains are left for the next full sync")
		}
		return nil, nil
	}
	for _, c := range all["chain"] {
		if isServiceObject(c) {
			chains = append(chains, c)
		}
	}
	for _, s := range all["set"] {
		if isServiceObject(s) {
			affinitySets = append(affinitySets, s)
		}
	}
	sort.Strings(chains)
	sort.Strings(affinitySets)
	return chains, affinitySets
}

// deleteStaleChains deletes, in a transaction of their own, the chains
// flushed long enough ago.
func (p *Proxier) deleteStaleChains(ctx context.Context, now time.Time) {
	var names []string
	for c, at := range p.staleChains {
		if now.Sub(at) >= staleChainDelay {
			names = append(names, c)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	tx := p.nft.NewTransaction()
	for _, c := range names {
		tx.Delete(&knftables.Chain{Name: c})
		delete(p.staleChains, c)
	}
	if err := p.nft.Run(ctx, tx); err != nil {
		// Still there: the next full sync finds them again.
		cleanupFailuresTotal.WithLabelValues(string(v1.IPv4Protocol)).Inc()
		klog.ErrorS(err, "Cannot delete stale nftables chains; retrying with a full sync", "chains", len(names))
		p.needFullSync = true
		return
	}
	klog.V(2).InfoS("Deleted stale nftables chains", "chains", len(names))
}

// applyService puts into tx what turns prev (nil: nothing) into next (nil:
// the service is gone) and returns the affinity sets to delete at the end.
func (p *Proxier) applyService(tx *knftables.Transaction, name types.NamespacedName, prev, next *serviceRules, now time.Time) []string {
	if next == nil {
		next = &serviceRules{}
	}
	if prev == nil {
		prev = &serviceRules{}
	}
	for _, s := range next.affinitySets {
		tx.Add(&knftables.Set{
			Name: s.name,
			Type: "ipv4_addr",
			// dynamic: the kernel would add it itself (the update
			// statement), and a later add without it would conflict.
			Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
			Timeout: ptr(s.timeout),
		})
	}
	// Every chain first (emptied), then the rules: rules jump between them.
	nextChains := sets.New[string]()
	for _, c := range next.chains {
		nextChains.Insert(c.name)
		tx.Add(&knftables.Chain{Name: c.name})
		tx.Flush(&knftables.Chain{Name: c.name})
		delete(p.staleChains, c.name)
	}
	for _, c := range next.chains {
		for _, r := range c.rules {
			kr := &knftables.Rule{Chain: c.name, Rule: r.text}
			if r.comment != "" {
				kr.Comment = ptr(r.comment)
			}
			tx.Add(kr)
		}
	}

	// Elements: the gone ones deleted, the new or changed ones written.
	wanted := map[elementID]element{}
	for _, e := range next.elements {
		wanted[e.id()] = e
	}
	for _, e := range prev.elements {
		id := e.id()
		if _, keep := wanted[id]; keep {
			continue
		}
		if cur, ok := p.elements[id]; ok && cur.owner == name {
			tx.Delete(&knftables.Element{Map: mapName(e), Set: setName(e), Key: e.key})
			delete(p.elements, id)
		}
	}
	written := sets.New[elementID]()
	for _, e := range next.elements {
		id := e.id()
		if written.Has(id) {
			continue // the same cluster IP for several ports
		}
		written.Insert(id)
		value := strings.Join(e.value, " . ")
		cur, exists := p.elements[id]
		switch {
		case exists && cur.owner != name:
			if _, stillOwned := p.applied[cur.owner]; stillOwned {
				// Its owner may give it up later in this sync.
				p.contested = append(p.contested, contestedElement{e, name})
				continue
			}
			fallthrough
		case exists && cur.value != value:
			// A map element's value cannot be changed in place.
			tx.Delete(&knftables.Element{Map: mapName(e), Set: setName(e), Key: e.key})
			tx.Add(e.obj())
		case !exists:
			tx.Add(e.obj())
		}
		p.elements[id] = ownedElement{value: value, owner: name}
	}

	// Chains no longer used: flushed now, deleted later.
	for _, c := range prev.chains {
		if !nextChains.Has(c.name) {
			tx.Flush(&knftables.Chain{Name: c.name})
			p.staleChains[c.name] = now
		}
	}
	nextSets := sets.New[string]()
	for _, s := range next.affinitySets {
		nextSets.Insert(s.name)
	}
	var staleSets []string
	for _, s := range prev.affinitySets {
		if !nextSets.Has(s.name) {
			staleSets = append(staleSets, s.name)
		}
	}
	return staleSets
}

func mapName(e element) string {
	if e.isMap {
		return e.container
	}
	return ""
}

func setName(e element) string {
	if e.isMap {
		return ""
	}
	return e.container
}

// setupTable (full syncs) writes the table's fixed chains, sets and maps
// with their rules, and empties the services' sets and maps, which the
// sync then fills.
func (p *Proxier) setupTable(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{Comment: ptr("rules for kube-proxy")})
	if !p.baseChainsRecreated {
		// Base chains with other properties (a table of another
		// version) could not be changed by an add.
		for _, bc := range baseChains {
			tx.Add(&knftables.Chain{Name: bc.name})
			tx.Delete(&knftables.Chain{Name: bc.name})
		}
		p.baseChainsRecreated = true
	}
	for _, bc := range baseChains {
		c := &knftables.Chain{Name: bc.name, Type: ptr(bc.kind), Hook: ptr(bc.hook), Priority: ptr(bc.priority)}
		tx.Add(c)
		tx.Flush(c)
	}
	ensured := sets.New[string]()
	ensure := func(name string) {
		if ensured.Has(name) {
			return
		}
		ensured.Insert(name)
		tx.Add(&knftables.Chain{Name: name})
		tx.Flush(&knftables.Chain{Name: name})
	}
	for _, j := range jumps {
		ensure(j.to)
		tx.Add(&knftables.Rule{Chain: j.from, Rule: knftables.Concat(j.match, "jump", j.to)})
	}
	ensure(rejectChain)
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "reject"})

	for _, c := range containers {
		if c.kind == "set" {
			tx.Add(&knftables.Set{Name: c.name, Type: c.keyType, Comment: ptr(c.comment)})
			tx.Flush(&knftables.Set{Name: c.name})
		} else {
			tx.Add(&knftables.Map{Name: c.name, Type: c.keyType, Comment: ptr(c.comment)})
			tx.Flush(&knftables.Map{Name: c.name})
		}
	}
	// nodeport-ips exists only when NodePorts are limited to addresses
	// (an add before the delete: a delete of nothing fails).
	tx.Add(&knftables.Set{Name: nodePortIPsSet, Type: "ipv4_addr", Comment: ptr("IPs that accept NodePort traffic")})
	if len(p.cfg.NodePortAddresses) == 0 {
		tx.Delete(&knftables.Set{Name: nodePortIPsSet})
	} else {
		tx.Flush(&knftables.Set{Name: nodePortIPsSet})
		for _, ip := range p.cfg.NodePortAddresses {
			if ip.To4() != nil && !ip.IsLoopback() {
				tx.Add(&knftables.Element{Set: nodePortIPsSet, Key: []string{ip.String()}})
			}
		}
	}
	nodePortDest := "ip daddr != 127.0.0.0/8"
	if len(p.cfg.NodePortAddresses) > 0 {
		nodePortDest = "ip daddr @" + nodePortIPsSet
	}

	// Masquerade what is marked (the mark cleared, so that a packet
	// going through again is not masqueraded twice), and hairpin traffic.
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: knftables.Concat(
		"mark and", p.masqMark, "!= 0", "mark set mark xor", p.masqMark, "masquerade fully-random")})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "ct status dnat ip saddr . ip daddr . meta l4proto . th dport @" + hairpinSet + " masquerade fully-random"})

	// Ports of a cluster IP no service has are refused.
	tx.Add(&knftables.Rule{Chain: clusterIPsCheckChain, Rule: "ip daddr @" + clusterIPsSet + " reject",
		Comment: ptr("Reject traffic to invalid ports of ClusterIPs")})

	tx.Add(&knftables.Rule{Chain: serviceEndpointsCheckChain,
		Rule: "ip daddr . meta l4proto . th dport vmap @" + noEndpointServicesMap})
	tx.Add(&knftables.Rule{Chain: nodePortEndpointsCheckChain,
		Rule: nodePortDest + " meta l4proto . th dport vmap @" + noEndpointNodePortsMap})
	tx.Add(&knftables.Rule{Chain: firewallCheckChain,
		Rule: "ip daddr . meta l4proto . th dport vmap @" + firewallIPsMap})

	switch {
	case p.cfg.MasqueradeAll:
		tx.Add(&knftables.Rule{Chain: servicesChain, Rule: "ip daddr @" + clusterIPsSet + " " + p.masqRule,
			Comment: ptr("masquerade all clusterIP traffic")})
	case p.cfg.ClusterCIDR != nil:
		// Off-cluster traffic to a cluster IP (a route to the service
		// range through this node) may leave the node to the endpoint:
		// masquerade it so the answer comes back.
		tx.Add(&knftables.Rule{Chain: servicesChain,
			Rule:    "ip daddr @" + clusterIPsSet + " ip saddr != " + p.cfg.ClusterCIDR.String() + " " + p.masqRule,
			Comment: ptr("masquerade clusterIP traffic from outside cluster")})
	}
	tx.Add(&knftables.Rule{Chain: servicesChain, Rule: "ip daddr . meta l4proto . th dport vmap @" + serviceIPsMap})
	if len(p.cfg.NodePortAddresses) == 0 {
		tx.Add(&knftables.Rule{Chain: servicesChain,
			Rule: "fib daddr type local " + nodePortDest + " meta l4proto . th dport vmap @" + serviceNodePortsMap})
	} else {
		tx.Add(&knftables.Rule{Chain: servicesChain,
			Rule: nodePortDest + " meta l4proto . th dport vmap @" + serviceNodePortsMap})
	}
}
