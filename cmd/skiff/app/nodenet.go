package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	configv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	netutils "k8s.io/utils/net"

	"github.com/skiff-dev/skiff/pkg/kubelet/agent"
	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/pkg/kubelet/machine"
	"github.com/skiff-dev/skiff/pkg/networkpolicy"
	"github.com/skiff-dev/skiff/pkg/podnetwork"
	"github.com/skiff-dev/skiff/pkg/proxy"
)

// nodeNetworkOptions are the flags of a real node's networking beside its
// kubelet: the service proxy, the routes to other nodes' pods and
// NetworkPolicy enforcement (k3s's names where it has them).
type nodeNetworkOptions struct {
	disableKubeProxy     bool
	proxyMode            string
	disableNetworkPolicy bool
	podNetworkBackend    string
	// clusterCIDR is the pods' range; skiff server takes its controllers'
	// --cluster-cidr instead of a flag of its own.
	clusterCIDR string
}

func (n *nodeNetworkOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&n.disableKubeProxy, "disable-kube-proxy", false, "Do not run the service proxy on this node (run skiff proxy or kube-proxy instead).")
	fs.StringVar(&n.proxyMode, "proxy-mode", string(proxy.ModeIPTables), "The node's service proxy mode: iptables, nftables or ipvs (as kube-proxy's --proxy-mode).")
	fs.BoolVar(&n.disableNetworkPolicy, "disable-network-policy", false, "Do not enforce NetworkPolicies on this node's pods.")
	fs.StringVar(&n.podNetworkBackend, "pod-network-backend", backendAuto, "How pods reach other nodes' pods: auto (a route via the node where it is on a connected subnet, host-gw style, else VXLAN), host-gw (routes only), none (another network plugin's job; pods then masquerade through the bridge plugin).")
}

// The --pod-network-backend values.
const (
	backendAuto   = "auto"
	backendHostGW = "host-gw"
	backendNone   = "none"
)

// addClusterCIDRFlag is skiff agent's --cluster-cidr; skiff server has the
// controllers' flag of that name.
func (n *nodeNetworkOptions) addClusterCIDRFlag(fs *pflag.FlagSet) {
	fs.StringVar(&n.clusterCIDR, "cluster-cidr", defaultClusterCIDR, "The pods' CIDR range in the cluster (comma-separated for dual-stack): the service proxy masquerades traffic from outside it to cluster IPs.")
}

func (n *nodeNetworkOptions) validate() error {
	var errs []error
	if !n.disableKubeProxy {
		if err := proxy.CheckMode(configv1alpha1.ProxyMode(n.proxyMode)); err != nil {
			errs = append(errs, fmt.Errorf("--proxy-mode: %w", err))
		}
	}
	switch n.podNetworkBackend {
	case backendAuto, backendHostGW:
		if n.clusterCIDR == "" {
			errs = append(errs, fmt.Errorf("--pod-network-backend %s needs --cluster-cidr (to tell pod-to-pod traffic from traffic leaving the cluster)", n.podNetworkBackend))
		}
	case backendNone:
	default:
		errs = append(errs, fmt.Errorf("--pod-network-backend: %q is not auto, host-gw or none", n.podNetworkBackend))
	}
	if n.clusterCIDR != "" {
		if _, err := n.clusterCIDRs(); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (n *nodeNetworkOptions) clusterCIDRs() ([]netip.Prefix, error) {
	if _, err := netutils.ParseCIDRs(strings.Split(n.clusterCIDR, ",")); err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, c := range strings.Split(n.clusterCIDR, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// podNetworkRuns: the node keeps routes to other nodes' pods itself.
func (n *nodeNetworkOptions) podNetworkRuns() bool {
	return n.podNetworkBackend == backendAuto || n.podNetworkBackend == backendHostGW
}

// cleanup removes what the node's networking left on this machine (rules,
// routes, devices; the bridge of cniBridge), for skiff agent --cleanup.
func cleanupNodeNetwork(cniBridge string) error {
	var errs []error
	if err := proxy.Cleanup(); err != nil {
		errs = append(errs, fmt.Errorf("service proxy: %w", err))
	}
	if err := networkpolicy.Cleanup(); err != nil {
		errs = append(errs, fmt.Errorf("network policy: %w", err))
	}
	if err := podnetwork.Cleanup(); err != nil {
		errs = append(errs, fmt.Errorf("pod network: %w", err))
	}
	if err := cni.Cleanup(cni.Config{BridgeName: cniBridge}); err != nil {
		errs = append(errs, fmt.Errorf("pod bridge: %w", err))
	}
	return errors.Join(errs...)
}

// nodeNetwork runs the node's networking parts until ctx ends or one of
// them fails.
type nodeNetwork struct {
	opts     *nodeNetworkOptions
	nodeName string
	nodeIPs  []net.IP
	// config is the networking parts' client config: an identity that
	// reads Services, EndpointSlices, all Nodes, Pods, Namespaces and
	// NetworkPolicies (bootstrap.NodeNetworkUser); nodeClient is the
	// node's own (it patches its Node).
	config     *restclient.Config
	nodeClient kubernetes.Interface
}

// run starts the parts and returns at once; stopped reports the first
// part's failure, or nil once all stopped after ctx ended.
func (n *nodeNetwork) run(ctx context.Context) (stopped <-chan error, err error) {
	type part struct {
		name string
		run  func(context.Context) error
	}
	var parts []part
	if !n.opts.disableKubeProxy {
		cfg := restclient.AddUserAgent(restclient.CopyConfig(n.config), "kube-proxy")
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		o := proxy.DefaultOptions(n.nodeName)
		o.Mode = configv1alpha1.ProxyMode(n.opts.proxyMode)
		o.NodeIPs = n.nodeIPs
		o.ClusterCIDR = n.opts.clusterCIDR
		parts = append(parts, part{"proxy", func(ctx context.Context) error { return proxy.Run(ctx, client, o) }})
	}
	if n.opts.podNetworkRuns() {
		client, err := kubernetes.NewForConfig(restclient.AddUserAgent(restclient.CopyConfig(n.config), "skiff-pod-network"))
		if err != nil {
			return nil, err
		}
		cidrs, err := n.opts.clusterCIDRs()
		if err != nil {
			return nil, err
		}
		o := podnetwork.Options{NodeName: n.nodeName, ClusterCIDRs: cidrs, NodeClient: n.nodeClient,
			DisableVXLAN: n.opts.podNetworkBackend == backendHostGW}
		parts = append(parts, part{"pod network", func(ctx context.Context) error { return podnetwork.Run(ctx, client, o) }})
	}
	if !n.opts.disableNetworkPolicy {
		client, err := kubernetes.NewForConfig(restclient.AddUserAgent(restclient.CopyConfig(n.config), "skiff-network-policy"))
		if err != nil {
			return nil, err
		}
		o := networkpolicy.Options{NodeName: n.nodeName}
		parts = append(parts, part{"network policy", func(ctx context.Context) error { return networkpolicy.Run(ctx, client, o) }})
	}
	done := make(chan error, 1)
	var wg sync.WaitGroup
	var once sync.Once
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			klog.InfoS("Starting the node's "+p.name, "node", n.nodeName)
			err := p.run(ctx)
			if err != nil && ctx.Err() == nil {
				once.Do(func() { done <- fmt.Errorf("the node's %s: %w", p.name, err) })
			}
		}()
	}
	go func() {
		wg.Wait()
		once.Do(func() { done <- nil })
	}()
	return done, nil
}

// runNodeWithNetwork runs the node's kubelet (agent.Run) and its
// networking together: when either fails, the other is stopped.
func runNodeWithNetwork(ctx context.Context, client kubernetes.Interface, o agent.Options, network *nodeNetwork) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	network.nodeName, network.nodeIPs = o.NodeName, o.NodeIPs
	if network.nodeClient == nil {
		network.nodeClient = client
	}
	if network.opts.podNetworkRuns() {
		// Pod-to-pod traffic keeps its source IPs; the pod network
		// masquerades what leaves the cluster. The pods' MTU leaves room
		// for VXLAN.
		o.CNISkipMasquerade = true
		if network.opts.podNetworkBackend == backendAuto {
			o.CNIMTU = podMTU(o.NodeIPs)
		}
	}
	stopped, err := network.run(ctx)
	if err != nil {
		return err
	}
	kubelet := make(chan error, 1)
	go func() { kubelet <- agent.Run(ctx, client, o, nil) }()
	select {
	case err = <-kubelet:
		cancel()
		if netErr := <-stopped; err == nil {
			err = netErr
		}
	case err = <-stopped:
		// The network failed (or had no parts and returned nil).
		if err == nil {
			return <-kubelet
		}
		cancel()
		<-kubelet
	}
	return err
}

// podMTU is the pods' MTU with room for VXLAN on the interface of the
// node's InternalIP; 0 (the plugin's default) when it cannot tell.
func podMTU(nodeIPs []net.IP) int {
	hostname, _ := os.Hostname()
	addrs, err := machine.Addresses(hostname, nodeIPs)
	if err != nil {
		return 0
	}
	for _, a := range addrs {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if mtu, err := podnetwork.PodMTU(ip); err == nil {
			return mtu
		}
	}
	return 0
}
