package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	configv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	netutils "k8s.io/utils/net"

	"github.com/skiff-dev/skiff/pkg/kubelet/agent"
	"github.com/skiff-dev/skiff/pkg/proxy"
)

// nodeNetworkOptions are the flags of a real node's networking beside its
// kubelet: the service proxy (k3s's names where it has them).
type nodeNetworkOptions struct {
	disableKubeProxy bool
	proxyMode        string
	// clusterCIDR is the pods' range; skiff server takes its controllers'
	// --cluster-cidr instead of a flag of its own.
	clusterCIDR string
}

func (n *nodeNetworkOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&n.disableKubeProxy, "disable-kube-proxy", false, "Do not run the service proxy on this node (run skiff proxy or kube-proxy instead).")
	fs.StringVar(&n.proxyMode, "proxy-mode", string(proxy.ModeIPTables), "The node's service proxy mode: iptables, nftables or ipvs (as kube-proxy's --proxy-mode).")
}

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
	if n.clusterCIDR != "" {
		if _, err := netutils.ParseCIDRs(strings.Split(n.clusterCIDR, ",")); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
		}
	}
	return errors.Join(errs...)
}

// nodeNetwork runs the node's networking parts until ctx ends or one of
// them fails.
type nodeNetwork struct {
	opts     *nodeNetworkOptions
	nodeName string
	nodeIPs  []net.IP
	// proxyConfig is the service proxy's client config (kube-proxy's
	// identity where the caller has one).
	proxyConfig *restclient.Config
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
		cfg := restclient.AddUserAgent(restclient.CopyConfig(n.proxyConfig), "kube-proxy")
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
