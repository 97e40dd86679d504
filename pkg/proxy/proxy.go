// Package proxy is skiff's kube-proxy: it follows Services and
// EndpointSlices through informers and keeps this node's service rules
// (iptables or nftables mode) in sync with them, in one loop bounded by minSyncPeriod
// and syncPeriod as upstream's, with upstream's /healthz, /livez and
// /metrics. Run is the entry point for `skiff proxy` and the node agent.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	configv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	netutils "k8s.io/utils/net"

	"github.com/skiff-dev/skiff/pkg/proxy/conntrack"
	"github.com/skiff-dev/skiff/pkg/proxy/healthcheck"
	"github.com/skiff-dev/skiff/pkg/proxy/iptables"
	"github.com/skiff-dev/skiff/pkg/proxy/ipvs"
	"github.com/skiff-dev/skiff/pkg/proxy/metrics"
	"github.com/skiff-dev/skiff/pkg/proxy/nftables"
	"github.com/skiff-dev/skiff/pkg/proxy/runner"
	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

// The proxy modes (KubeProxyConfiguration's mode).
const (
	ModeIPTables configv1alpha1.ProxyMode = "iptables"
	ModeNFTables configv1alpha1.ProxyMode = "nftables"
	ModeIPVS     configv1alpha1.ProxyMode = "ipvs"
)

// Options configure Run.
type Options struct {
	// Mode is the proxy mode: iptables (the default), nftables or ipvs.
	Mode configv1alpha1.ProxyMode
	// NodeName is this node's name: its endpoints are local for the Local
	// traffic policies, and /healthz follows its Node.
	NodeName string
	// NodeIPs are this node's addresses (optional: for load-balancer
	// source ranges that include the node).
	NodeIPs []net.IP
	// ClusterCIDR is the pods' range(s), comma-separated: traffic from
	// outside to a cluster IP is masqueraded. Empty: no such rule.
	ClusterCIDR string
	// MasqueradeAll masquerades all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit for masquerading (upstream: 14).
	MasqueradeBit int32
	// LocalhostNodePorts makes NodePorts answer on 127.0.0.1 too (sets
	// net.ipv4.conf.all.route_localnet=1, as upstream); iptables mode
	// only, as upstream.
	LocalhostNodePorts bool
	// MinSyncPeriod and SyncPeriod bound the syncs: not more often than
	// MinSyncPeriod, at least every SyncPeriod.
	MinSyncPeriod, SyncPeriod time.Duration
	// ConfigSyncPeriod is the informers' resync period.
	ConfigSyncPeriod time.Duration
	// HealthzBindAddress and MetricsBindAddress are where /healthz,/livez
	// and /metrics are served; empty: not served.
	HealthzBindAddress, MetricsBindAddress string
	// IPVS are the ipvs mode's settings (KubeProxyConfiguration's ipvs).
	IPVS IPVSOptions
}

// IPVSOptions are the ipvs mode's own settings.
type IPVSOptions struct {
	// Scheduler is the virtual servers' scheduler; empty: rr.
	Scheduler string
	// ExcludeCIDRs are left alone when stale virtual servers are removed.
	ExcludeCIDRs []string
	// StrictARP sets arp_ignore/arp_announce for kube-ipvs0's addresses.
	StrictARP bool
	// TCPTimeout, TCPFinTimeout, UDPTimeout: IPVS's timeouts; 0 keeps it.
	TCPTimeout, TCPFinTimeout, UDPTimeout time.Duration
}

// OptionsFromConfig is the Options of a (defaulted) KubeProxyConfiguration
// for node nodeName (empty: the configuration's hostnameOverride).
func OptionsFromConfig(cfg *configv1alpha1.KubeProxyConfiguration, nodeName string) Options {
	o := Options{
		Mode:               cfg.Mode,
		NodeName:           nodeName,
		ClusterCIDR:        cfg.ClusterCIDR,
		MasqueradeAll:      cfg.IPTables.MasqueradeAll,
		MinSyncPeriod:      cfg.IPTables.MinSyncPeriod.Duration,
		SyncPeriod:         cfg.IPTables.SyncPeriod.Duration,
		ConfigSyncPeriod:   cfg.ConfigSyncPeriod.Duration,
		HealthzBindAddress: cfg.HealthzBindAddress,
		MetricsBindAddress: cfg.MetricsBindAddress,
	}
	if cfg.IPTables.MasqueradeBit != nil {
		o.MasqueradeBit = *cfg.IPTables.MasqueradeBit
	}
	if cfg.IPTables.LocalhostNodePorts != nil {
		o.LocalhostNodePorts = *cfg.IPTables.LocalhostNodePorts
	}
	if cfg.Mode == ModeNFTables {
		// Upstream's conversion: the nftables section's values.
		o.MasqueradeAll = cfg.NFTables.MasqueradeAll
		o.MinSyncPeriod = cfg.NFTables.MinSyncPeriod.Duration
		o.SyncPeriod = cfg.NFTables.SyncPeriod.Duration
		o.LocalhostNodePorts = false
		if cfg.NFTables.MasqueradeBit != nil {
			o.MasqueradeBit = *cfg.NFTables.MasqueradeBit
		}
	}
	if cfg.Mode == ModeIPVS {
		// Upstream's conversion: the ipvs section's sync periods; the
		// masquerade settings stay the iptables section's.
		o.MinSyncPeriod = cfg.IPVS.MinSyncPeriod.Duration
		o.SyncPeriod = cfg.IPVS.SyncPeriod.Duration
		o.LocalhostNodePorts = false
		o.IPVS = IPVSOptions{Scheduler: cfg.IPVS.Scheduler, ExcludeCIDRs: cfg.IPVS.ExcludeCIDRs, StrictARP: cfg.IPVS.StrictARP,
			TCPTimeout: cfg.IPVS.TCPTimeout.Duration, TCPFinTimeout: cfg.IPVS.TCPFinTimeout.Duration, UDPTimeout: cfg.IPVS.UDPTimeout.Duration}
	}
	if o.NodeName == "" {
		o.NodeName = strings.ToLower(strings.TrimSpace(cfg.HostnameOverride))
	}
	return o
}

// DefaultOptions are upstream's defaults for node nodeName.
func DefaultOptions(nodeName string) Options {
	return OptionsFromConfig(DefaultConfig(), nodeName)
}

// CheckMode tells whether mode can run here.
func CheckMode(mode configv1alpha1.ProxyMode) error {
	switch mode {
	case ModeIPTables, "":
		return nil
	case ModeNFTables:
		return nftables.Check()
	case ModeIPVS:
		return ipvs.Supported()
	default:
		return fmt.Errorf("unknown proxy mode %q: iptables, nftables or ipvs", mode)
	}
}

// Cleanup removes every rule and chain the proxy makes, in all modes (a
// mode whose tool is missing here has left nothing).
func Cleanup() error {
	var errs []error
	if _, err := exec.LookPath("iptables-restore"); err == nil {
		ipt, err := iptables.New()
		if err != nil {
			errs = append(errs, fmt.Errorf("iptables: %w", err))
		} else if err := iptables.Cleanup(ipt); err != nil {
			errs = append(errs, err)
		}
	}
	if err := nftables.Cleanup(context.Background()); err != nil {
		errs = append(errs, fmt.Errorf("nftables: %w", err))
	}
	// After iptables: its chains are gone, so the sets are unreferenced.
	if err := ipvs.CleanupHost(); err != nil {
		errs = append(errs, fmt.Errorf("ipvs: %w", err))
	}
	return errors.Join(errs...)
}

// proxier writes the rules of one mode.
type proxier interface {
	// Sync writes services and endpoints; result names what changed
	// since the last Sync.
	Sync(services tracker.ServicePortMap, endpoints tracker.EndpointsMap, result tracker.Result) error
	// ForceFullSync makes the next Sync rewrite every rule.
	ForceFullSync()
}

// proxyServer is one running proxy.
type proxyServer struct {
	opts      Options
	tracker   *tracker.Tracker
	proxier   proxier
	health    *healthcheck.ProxyHealthServer
	svcHealth *healthcheck.ServiceHealthServer
	runner    *runner.Runner
	// synced: the informers have listed; before, no rules are written
	// (partial data would drop services).
	synced atomic.Bool
	// noConntrack: the conntrack command is missing (said once).
	noConntrack bool
}

// Run proxies services on this node until ctx ends; the rules stay (a
// restarted proxy takes them over; Cleanup removes them).
func Run(ctx context.Context, client kubernetes.Interface, opts Options) error {
	if err := CheckMode(opts.Mode); err != nil {
		return err
	}
	if opts.MinSyncPeriod < 0 || opts.SyncPeriod <= 0 {
		return fmt.Errorf("invalid sync periods: min %s, sync %s", opts.MinSyncPeriod, opts.SyncPeriod)
	}
	if opts.ConfigSyncPeriod <= 0 {
		opts.ConfigSyncPeriod = 15 * time.Minute
	}
	if opts.Mode == "" {
		opts.Mode = ModeIPTables
	}
	metrics.Register()
	cfg := iptables.Config{
		NodeName:           opts.NodeName,
		NodeIPs:            opts.NodeIPs,
		MasqueradeAll:      opts.MasqueradeAll,
		MasqueradeBit:      int(opts.MasqueradeBit),
		LocalhostNodePorts: opts.LocalhostNodePorts,
	}
	for _, c := range splitCIDRs(opts.ClusterCIDR) {
		_, cidr, err := netutils.ParseCIDRSloppy(c)
		if err != nil {
			return fmt.Errorf("invalid cluster CIDR %q: %w", c, err)
		}
		if cidr.IP.To4() != nil && cfg.ClusterCIDR == nil {
			cfg.ClusterCIDR = cidr
		}
	}
	if opts.Mode == ModeNFTables || opts.Mode == ModeIPVS {
		cfg.LocalhostNodePorts = false // iptables mode only (as upstream)
	}
	if cfg.LocalhostNodePorts {
		// NodePorts on 127.0.0.1 need routing of the loopback range
		// (upstream's issue 90259; KUBE-FIREWALL closes it to others).
		if err := writeSysctl("net/ipv4/conf/all/route_localnet", "1"); err != nil {
			return fmt.Errorf("localhost NodePorts need route_localnet=1: %w", err)
		}
	}
	if v, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"); err == nil && strings.TrimSpace(string(v)) != "0" {
		cfg.ConntrackTCPLiberal = true
	}
	s := &proxyServer{opts: opts, tracker: tracker.New(v1.IPv4Protocol, opts.NodeName)}
	s.runner = runner.New("sync-runner", s.sync, opts.MinSyncPeriod, opts.SyncPeriod, opts.SyncPeriod)
	switch opts.Mode {
	case ModeNFTables:
		nft, err := nftables.New()
		if err != nil {
			return err
		}
		// The other modes' rules would answer in this mode's place
		// (upstream's platformCleanup).
		if _, err := exec.LookPath("iptables-restore"); err == nil {
			if ipt, err := iptables.New(); err == nil {
				if err := iptables.Cleanup(ipt); err != nil {
					klog.ErrorS(err, "Removing the iptables mode's rules before nftables mode")
				}
			}
			if err := ipvs.CleanupHost(); err != nil {
				klog.ErrorS(err, "Removing the ipvs mode's rules before nftables mode")
			}
		}
		// A deleted table is noticed by the next sync (at least every
		// SyncPeriod), which writes it whole.
		s.proxier = nftables.NewProxier(nft, nftables.Config{
			NodeName:      cfg.NodeName,
			NodeIPs:       cfg.NodeIPs,
			ClusterCIDR:   cfg.ClusterCIDR,
			MasqueradeAll: cfg.MasqueradeAll,
			MasqueradeBit: cfg.MasqueradeBit,
		})
	case ModeIPVS:
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		if s.proxier, err = newIPVSProxier(ipt, cfg, opts.IPVS); err != nil {
			return err
		}
		monitorDone := make(chan struct{})
		go func() {
			defer close(monitorDone)
			iptables.Monitor(ctx, ipt, opts.SyncPeriod, func() {
				s.proxier.ForceFullSync()
				s.runner.Run()
			})
		}()
		defer func() { <-monitorDone }()
	default:
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		if err := nftables.Cleanup(ctx); err != nil {
			klog.ErrorS(err, "Removing the nftables mode's rules before iptables mode")
		}
		s.proxier = iptables.NewProxier(ipt, cfg)
		// Flushed tables (a firewall reload) are rewritten whole.
		monitorDone := make(chan struct{})
		go func() {
			defer close(monitorDone)
			iptables.Monitor(ctx, ipt, opts.SyncPeriod, func() {
				s.proxier.ForceFullSync()
				s.runner.Run()
			})
		}()
		// Returning, the monitor has removed its canaries.
		defer func() { <-monitorDone }()
	}

	trim := informers.WithTransform(func(obj any) (any, error) {
		// The proxy never needs managed fields.
		if a, err := meta.Accessor(obj); err == nil {
			a.SetManagedFields(nil)
		}
		return obj, nil
	})
	noProxyName, _ := labels.NewRequirement(tracker.LabelServiceProxyName, selection.DoesNotExist, nil)
	noHeadless, _ := labels.NewRequirement(v1.IsHeadlessService, selection.DoesNotExist, nil)
	svcFactory := informers.NewSharedInformerFactoryWithOptions(client, opts.ConfigSyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = labels.NewSelector().Add(*noProxyName).String() }))
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(client, opts.ConfigSyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = labels.NewSelector().Add(*noHeadless).String() }))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(client, opts.ConfigSyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.NodeName).String()
		}))

	svcInformer := svcFactory.Core().V1().Services().Informer()
	if _, err := svcInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.serviceChanged(nil, obj) },
		UpdateFunc: func(old, obj any) { s.serviceChanged(old, obj) },
		DeleteFunc: func(obj any) { s.serviceChanged(obj, nil) },
	}); err != nil {
		return err
	}
	sliceInformer := sliceFactory.Discovery().V1().EndpointSlices().Informer()
	if _, err := sliceInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.sliceChanged(obj, false) },
		UpdateFunc: func(_, obj any) { s.sliceChanged(obj, false) },
		DeleteFunc: func(obj any) { s.sliceChanged(obj, true) },
	}); err != nil {
		return err
	}
	nodeLister := nodeFactory.Core().V1().Nodes().Lister()
	nodeInformer := nodeFactory.Core().V1().Nodes().Informer()

	if opts.HealthzBindAddress != "" {
		s.health = healthcheck.NewProxyHealthServer(opts.HealthzBindAddress, 2*opts.SyncPeriod, nodeGetter(nodeLister, opts.NodeName))
		go func() {
			if err := s.health.Run(ctx); err != nil {
				klog.ErrorS(err, "Proxy health server failed", "address", opts.HealthzBindAddress)
			}
		}()
		s.health.Updated(v1.IPv4Protocol)
	}
	s.svcHealth = healthcheck.NewServiceHealthServer("", s.health)
	go s.svcHealth.Run(ctx)
	if opts.MetricsBindAddress != "" {
		go serveMetrics(ctx, opts.MetricsBindAddress, opts.Mode)
	}

	svcFactory.Start(ctx.Done())
	sliceFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	defer svcFactory.Shutdown()
	defer sliceFactory.Shutdown()
	defer nodeFactory.Shutdown()
	klog.InfoS("Starting skiff proxy", "mode", opts.Mode, "node", opts.NodeName, "clusterCIDR", opts.ClusterCIDR,
		"minSyncPeriod", opts.MinSyncPeriod, "syncPeriod", opts.SyncPeriod)
	if !cache.WaitForCacheSync(ctx.Done(), svcInformer.HasSynced, sliceInformer.HasSynced, nodeInformer.HasSynced) {
		return nil // ctx ended
	}
	s.synced.Store(true)
	metrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(string(v1.IPv4Protocol)).SetToCurrentTime()
	s.runner.Run()
	s.runner.Loop(ctx)
	klog.InfoS("Skiff proxy stopped", "node", opts.NodeName)
	return nil
}

func nodeGetter(lister corelisters.NodeLister, name string) func() *v1.Node {
	return func() *v1.Node {
		node, err := lister.Get(name)
		if err != nil {
			return nil
		}
		return node
	}
}

func (s *proxyServer) serviceChanged(old, obj any) {
	if s.tracker.ServiceUpdate(asService(old), asService(obj)) {
		s.queueSync()
	}
}

func (s *proxyServer) sliceChanged(obj any, remove bool) {
	slice, ok := obj.(*discovery.EndpointSlice)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if slice, ok = tomb.Obj.(*discovery.EndpointSlice); !ok {
			return
		}
	}
	if s.tracker.EndpointSliceUpdate(slice, remove) {
		s.queueSync()
	}
}

func asService(obj any) *v1.Service {
	switch o := obj.(type) {
	case *v1.Service:
		return o
	case cache.DeletedFinalStateUnknown:
		svc, _ := o.Obj.(*v1.Service)
		return svc
	}
	return nil
}

// queueSync asks for a sync once the informers have synced (their first
// sync writes everything).
func (s *proxyServer) queueSync() {
	if !s.synced.Load() {
		return
	}
	if s.health != nil {
		s.health.QueuedUpdate(v1.IPv4Protocol)
	}
	metrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(string(v1.IPv4Protocol)).SetToCurrentTime()
	s.runner.Run()
}

// sync is syncProxyRules: the tracker's changes applied, then written.
func (s *proxyServer) sync() error {
	if !s.synced.Load() {
		return nil
	}
	result := s.tracker.Apply()
	if err := s.proxier.Sync(s.tracker.Services, s.tracker.Endpoints, result); err != nil {
		klog.ErrorS(err, "Failed to sync proxy rules; retrying", "retryIn", s.opts.SyncPeriod)
		return err
	}
	if s.health != nil {
		s.health.Updated(v1.IPv4Protocol)
	}
	s.svcHealth.SyncServices(s.tracker.Services.HealthCheckNodePorts())
	s.svcHealth.SyncEndpoints(s.tracker.Endpoints.LocalReadyEndpoints())
	if result.UDPChanged {
		s.cleanConntrack()
	}
	return nil
}

// cleanConntrack deletes UDP conntrack entries to endpoints that are gone
// (with the conntrack tool; without it, said once).
func (s *proxyServer) cleanConntrack() {
	if _, err := exec.LookPath("conntrack"); err != nil {
		if !s.noConntrack {
			klog.InfoS("No conntrack command: stale UDP conntrack entries are not cleaned up", "err", err)
			s.noConntrack = true
		}
		return
	}
	n, err := conntrack.CleanStaleEntries(conntrack.CLI{}, s.tracker.Services, s.tracker.Endpoints)
	if err != nil {
		klog.ErrorS(err, "Failed to clean up stale UDP conntrack entries", "deleted", n)
		return
	}
	klog.V(4).InfoS("Cleaned up stale UDP conntrack entries", "deleted", n)
}

// serveMetrics serves /metrics, /healthz and /proxyMode on addr, as
// upstream's metrics server; a failure to listen is logged (upstream's
// default, bindAddressHardFail false).
func serveMetrics(ctx context.Context, addr string, mode configv1alpha1.ProxyMode) {
	if mode == "" {
		mode = ModeIPTables
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/proxyMode", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fmt.Fprint(w, mode)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		klog.ErrorS(err, "Failed to start the metrics server", "address", addr)
		return
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.ErrorS(err, "Metrics server failed", "address", addr)
	}
}

func writeSysctl(name, value string) error {
	path := "/proc/sys/" + name
	if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	return os.WriteFile(path, []byte(value), 0o644)
}

// newIPVSProxier is the ipvs mode's proxier on this kernel's IPVS, ipsets
// and kube-ipvs0, after the kernel settings it needs.
func newIPVSProxier(ipt iptables.Interface, cfg iptables.Config, o IPVSOptions) (*ipvs.Proxier, error) {
	var exclude []*net.IPNet
	for _, c := range o.ExcludeCIDRs {
		_, n, err := netutils.ParseCIDRSloppy(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("invalid IPVS exclude CIDR %q: %w", c, err)
		}
		exclude = append(exclude, n)
	}
	h, err := ipvs.NewHandle()
	if err != nil {
		return nil, err
	}
	sets, err := ipvs.NewIPSet()
	if err != nil {
		return nil, err
	}
	dummy, err := ipvs.NewDummy()
	if err != nil {
		return nil, err
	}
	if err := ipvs.SetupKernel(ipvs.ProcSysctl{}, o.StrictARP); err != nil {
		return nil, err
	}
	if o.TCPTimeout > 0 || o.TCPFinTimeout > 0 || o.UDPTimeout > 0 {
		if err := h.ConfigureTimeouts(o.TCPTimeout, o.TCPFinTimeout, o.UDPTimeout); err != nil {
			klog.ErrorS(err, "Configuring IPVS timeouts")
		}
	}
	// What iptables mode left (its KUBE-SVC-*/KUBE-SEP-* chains and
	// REJECT rules) would shadow the ipvs rules.
	if err := iptables.Cleanup(ipt); err != nil {
		klog.ErrorS(err, "Removing the iptables mode's rules before ipvs mode")
	}
	return ipvs.NewProxier(h, sets, dummy, ipt, ipvs.Config{NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs,
		ClusterCIDR: cfg.ClusterCIDR, MasqueradeAll: cfg.MasqueradeAll, MasqueradeBit: cfg.MasqueradeBit,
		Scheduler: o.Scheduler, ExcludeCIDRs: exclude})
}
