package app

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	configv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/skiff-dev/skiff/pkg/proxy"
)

// proxyOptions are kube-proxy's flags skiff has.
type proxyOptions struct {
	configFile       string
	kubeconfig       string
	hostnameOverride string
	cleanup          bool
	// config holds the flags' values (upstream's defaults unless given).
	config *configv1alpha1.KubeProxyConfiguration
	flags  *pflag.FlagSet
}

func newProxyOptions() *proxyOptions {
	return &proxyOptions{config: proxy.DefaultConfig()}
}

func (o *proxyOptions) addFlags(fs *pflag.FlagSet) {
	o.flags = fs
	c := o.config
	fs.StringVar(&o.configFile, "config", "", "The path to the configuration file (KubeProxyConfiguration, apiVersion kubeproxy.config.k8s.io/v1alpha1). With it the other flags are ignored, but --hostname-override, --cleanup, -v and --vmodule.")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to kubeconfig file with authorization information (empty: clientConnection.kubeconfig of --config, else the in-cluster config).")
	fs.StringVar(&o.hostnameOverride, "hostname-override", "", "The name of this node (its Node object); empty: the host name.")
	fs.BoolVar(&o.cleanup, "cleanup", false, "Remove every rule and chain the proxy made, then exit.")
	fs.StringVar((*string)(&c.Mode), "mode", string(c.Mode), "Which proxy mode to use: iptables or nftables (ipvs is not implemented yet).")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "The CIDR range of the pods in the cluster (comma-separated for dual-stack): traffic from outside it to a cluster IP is masqueraded.")
	fs.BoolVar(&c.IPTables.MasqueradeAll, "masquerade-all", c.IPTables.MasqueradeAll, "SNAT all traffic sent via Service cluster IPs.")
	fs.Int32Var(c.IPTables.MasqueradeBit, "iptables-masquerade-bit", *c.IPTables.MasqueradeBit, "The bit of the fwmark space to mark packets requiring SNAT with, in [0, 31].")
	fs.BoolVar(c.IPTables.LocalhostNodePorts, "iptables-localhost-nodeports", *c.IPTables.LocalhostNodePorts, "Accept NodePort connections on 127.0.0.1 too (sets net.ipv4.conf.all.route_localnet=1); iptables mode only.")
	fs.DurationVar(&c.IPTables.SyncPeriod.Duration, "iptables-sync-period", c.IPTables.SyncPeriod.Duration, "The longest interval between two syncs of the rules, e.g. '5s', '1m'.")
	fs.DurationVar(&c.IPTables.MinSyncPeriod.Duration, "iptables-min-sync-period", c.IPTables.MinSyncPeriod.Duration, "The shortest interval between two syncs of the rules when Services or EndpointSlices change, e.g. '5s', '1m'.")
	fs.DurationVar(&c.ConfigSyncPeriod.Duration, "config-sync-period", c.ConfigSyncPeriod.Duration, "How often the informers resync. Must be greater than 0.")
	fs.StringVar(&c.HealthzBindAddress, "healthz-bind-address", c.HealthzBindAddress, "The IP:port of /healthz and /livez; empty: not served.")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "The IP:port of /metrics; empty: not served.")
	// Upstream kube-proxy's name of --mode.
	fs.StringVar((*string)(&c.Mode), "proxy-mode", string(c.Mode), "The same as --mode (kube-proxy's name).")
}

// resolve is the configuration to run with: --config's (defaulted) or
// the flags'; --hostname-override applies to both.
func (o *proxyOptions) resolve() (*configv1alpha1.KubeProxyConfiguration, string, error) {
	cfg := o.config
	if o.configFile != "" {
		var err error
		if cfg, err = proxy.LoadConfig(o.configFile); err != nil {
			return nil, "", err
		}
	} else if cfg.Mode == proxy.ModeNFTables {
		// The flags are mode-independent upstream (its internal
		// configuration's); in v1alpha1 they are the nftables section's
		// in this mode.
		cfg.NFTables.MasqueradeAll = cfg.IPTables.MasqueradeAll
		cfg.NFTables.MasqueradeBit = cfg.IPTables.MasqueradeBit
		cfg.NFTables.SyncPeriod = cfg.IPTables.SyncPeriod
		cfg.NFTables.MinSyncPeriod = cfg.IPTables.MinSyncPeriod
	}
	if o.hostnameOverride != "" {
		cfg.HostnameOverride = o.hostnameOverride
	}
	if o.kubeconfig != "" {
		cfg.ClientConnection.Kubeconfig = o.kubeconfig
	}
	if errs := proxy.Validate(cfg); len(errs) > 0 {
		return nil, "", errs.ToAggregate()
	}
	nodeName := strings.ToLower(strings.TrimSpace(cfg.HostnameOverride))
	if nodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, "", fmt.Errorf("no --hostname-override and no host name: %w", err)
		}
		nodeName = strings.ToLower(strings.TrimSpace(host))
	}
	return cfg, nodeName, nil
}

func newProxyCommand() *cobra.Command {
	o := newProxyOptions()
	cmd := &cobra.Command{
		Use:   "proxy [--kubeconfig FILE]",
		Short: "Run skiff's service proxy on this node, as kube-proxy",
		Long: `Keep this node's service rules in step with the API server's Services and
EndpointSlices, as kube-proxy in iptables or nftables mode (--mode): a cluster
IP's connections are spread over its ready endpoints (or serving terminating
ones when none is ready), NodePorts, external IPs and load-balancer IPs answer
too, with sessionAffinity ClientIP, internal/externalTrafficPolicy Local and
REJECT for services without endpoints. iptables mode writes the rules with one
iptables-restore per sync in upstream's chains (KUBE-SERVICES, KUBE-SVC-*,
KUBE-SEP-*, ...); nftables mode writes upstream's table "kube-proxy" (maps
service-ips and service-nodeports, chains service-*, external-*, ...) with one
nft transaction per sync, of only what changed after the first. Syncs happen at
most every --iptables-min-sync-period and at least every --iptables-sync-period
(both modes). /healthz and /livez on --healthz-bind-address, /metrics on
--metrics-bind-address. The rules stay when the proxy stops; --cleanup removes
them (both modes').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.cleanup {
				if err := proxy.Cleanup(); err != nil {
					return fmt.Errorf("cleanup: %w", err)
				}
				klog.InfoS("Removed the proxy's rules")
				return nil
			}
			cfg, nodeName, err := o.resolve()
			if err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			if err := proxy.CheckMode(cfg.Mode); err != nil {
				return err
			}
			rest, err := proxyRESTConfig(cfg)
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(restclient.AddUserAgent(rest, "kube-proxy"))
			if err != nil {
				return err
			}
			ctx := genericapiserver.SetupSignalContext()
			klog.InfoS("Starting skiff proxy", "server", rest.Host, "node", nodeName, "mode", cfg.Mode)
			return proxy.Run(ctx, client, proxy.OptionsFromConfig(cfg, nodeName))
		},
	}
	fs := cmd.Flags()
	o.addFlags(fs)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.AddGoFlag(klogFlags.Lookup(name))
	}
	return cmd
}

// proxyRESTConfig is the client of cfg's clientConnection: its kubeconfig,
// or the in-cluster config without one.
func proxyRESTConfig(cfg *configv1alpha1.KubeProxyConfiguration) (*restclient.Config, error) {
	var rest *restclient.Config
	var err error
	if cfg.ClientConnection.Kubeconfig != "" {
		rest, err = clientcmd.BuildConfigFromFlags("", cfg.ClientConnection.Kubeconfig)
	} else {
		rest, err = restclient.InClusterConfig()
		if errors.Is(err, restclient.ErrNotInCluster) {
			err = errors.New("--kubeconfig is required outside a cluster")
		}
	}
	if err != nil {
		return nil, err
	}
	rest.QPS, rest.Burst = cfg.ClientConnection.QPS, int(cfg.ClientConnection.Burst)
	rest.ContentType = cfg.ClientConnection.ContentType
	rest.AcceptContentTypes = cfg.ClientConnection.AcceptContentTypes
	return rest, nil
}
