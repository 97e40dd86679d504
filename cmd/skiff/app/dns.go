package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/dns"
)

// dnsOptions are skiff dns's flags (CoreDNS's defaults where it has them).
type dnsOptions struct {
	kubeconfig                         string
	bindAddress                        string
	port                               int
	clusterDomain                      string
	upstreams                          []string
	resolvConf                         string
	ttl                                int
	cacheSize                          int
	healthPort, readyPort, metricsPort int
}

func newDNSCommand() *cobra.Command {
	o := &dnsOptions{}
	cmd := &cobra.Command{
		Use:   "dns [--kubeconfig FILE]",
		Short: "Run skiff's cluster DNS, as CoreDNS with its kubernetes plugin",
		Long: `Serve the cluster domain from the API server's Services, EndpointSlices and
Namespaces, by the Kubernetes DNS specification: <svc>.<ns>.svc.<domain>
A/AAAA (a headless Service's ready endpoints, and <hostname>.<svc>.<ns>.svc
for each of them), SRV _<port>._<proto>.<svc>.<ns>.svc, PTR of cluster and
headless endpoint IPs, CNAME for ExternalName, dns-version TXT, and
<a-b-c-d>.<ns>.pod A records. Other names are forwarded to --upstream-servers
(default: the nameservers of --resolv-conf) through a cache. UDP and TCP on
--bind-address:--port; /health, /ready (once the records are synced) and
/metrics (CoreDNS's metric names) on their ports (0: not served).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.options()
			if err != nil {
				return err
			}
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(restclient.AddUserAgent(cfg, "skiff-dns"))
			if err != nil {
				return err
			}
			ctx := genericapiserver.SetupSignalContext()
			klog.InfoS("Starting skiff dns", "server", cfg.Host, "domain", opts.ClusterDomain)
			return dns.Run(ctx, client, opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "The API server's kubeconfig; empty: the in-cluster config.")
	fs.StringVar(&o.bindAddress, "bind-address", "0.0.0.0", "The address DNS and the health, ready and metrics servers listen on.")
	fs.IntVar(&o.port, "port", dns.DefaultPort, "The DNS port, UDP and TCP.")
	fs.StringVar(&o.clusterDomain, "cluster-domain", dns.DefaultClusterDomain, "The cluster's DNS domain.")
	fs.StringSliceVar(&o.upstreams, "upstream-servers", nil, "Resolvers (IP[:port]) of names outside the cluster; empty: the nameservers of --resolv-conf.")
	fs.StringVar(&o.resolvConf, "resolv-conf", dns.DefaultResolvConf, "The resolv.conf whose nameservers are the upstream resolvers without --upstream-servers.")
	fs.IntVar(&o.ttl, "ttl", dns.DefaultTTL, "TTL in seconds of the cluster's records (and of their negative answers).")
	fs.IntVar(&o.cacheSize, "cache-size", dns.DefaultCacheSize, "Forwarded answers kept in the cache.")
	fs.IntVar(&o.healthPort, "health-port", dns.DefaultHealthPort, "The port of /health; 0: not served.")
	fs.IntVar(&o.readyPort, "ready-port", dns.DefaultReadyPort, "The port of /ready; 0: not served.")
	fs.IntVar(&o.metricsPort, "metrics-port", dns.DefaultMetricsPort, "The port of /metrics; 0: not served.")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.AddGoFlag(klogFlags.Lookup(name))
	}
	return cmd
}

func (o *dnsOptions) options() (dns.Options, error) {
	var errs []error
	if net.ParseIP(o.bindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address: %q is not an IP address", o.bindAddress))
	}
	if o.port <= 0 || o.port > 65535 {
		errs = append(errs, fmt.Errorf("--port must be a port number, got %d", o.port))
	}
	if o.ttl <= 0 || o.ttl > 3600 {
		errs = append(errs, fmt.Errorf("--ttl must be 1..3600 seconds, got %d", o.ttl))
	}
	if o.cacheSize < 0 {
		errs = append(errs, fmt.Errorf("--cache-size must not be negative, got %d", o.cacheSize))
	}
	opts := dns.Options{BindAddress: o.bindAddress, Port: o.port, ClusterDomain: o.clusterDomain, Upstreams: o.upstreams,
		ResolvConf: o.resolvConf, TTL: uint32(o.ttl), CacheSize: o.cacheSize}
	for _, p := range []struct {
		flag string
		port int
		addr *string
	}{{"--health-port", o.healthPort, &opts.HealthAddress}, {"--ready-port", o.readyPort, &opts.ReadyAddress}, {"--metrics-port", o.metricsPort, &opts.MetricsAddress}} {
		switch {
		case p.port < 0 || p.port > 65535:
			errs = append(errs, fmt.Errorf("%s must be a port number or 0, got %d", p.flag, p.port))
		case p.port > 0:
			*p.addr = net.JoinHostPort(o.bindAddress, strconv.Itoa(p.port))
		}
	}
	if _, err := dns.Upstreams(o.upstreams, o.resolvConf, nil); len(o.upstreams) > 0 && err != nil {
		errs = append(errs, fmt.Errorf("--upstream-servers: %w", err))
	}
	return opts, errors.Join(errs...)
}

func (o *dnsOptions) restConfig() (*restclient.Config, error) {
	if o.kubeconfig == "" {
		cfg, err := restclient.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
		}
		return cfg, nil
	}
	return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
}

// serverDNS is skiff server's cluster DNS, run in the process (k3s runs
// CoreDNS in a pod): it answers on the advertise address's port 53 and,
// once listening, publishes kube-system/kube-dns at the
// 10th service IP with the server's advertise address as its endpoint,
// where kube-proxy's rules send pods' queries.
type serverDNS struct {
	apiserver     *options.Options
	clusterDomain string
	// port: 0 is 53; -1 a free one (tests).
	port     int
	nodeName string
	// started, if set, is called once the DNS listens.
	started func(*dns.Server)
	// upstreams receive names outside the cluster; none: the host's
	// resolv.conf nameservers.
	upstreams []string
}

func (s *serverDNS) Name() string { return "dns" }

func (s *serverDNS) Run(ctx context.Context, loopback *restclient.Config) error {
	clusterIP, err := dns.ClusterDNSIP(s.apiserver.ServiceClusterIPRange, 10)
	if err != nil {
		return err
	}
	advertise, err := s.apiserver.AdvertiseIP()
	if err != nil {
		return fmt.Errorf("the kube-dns endpoint: %w", err)
	}
	client, err := kubernetes.NewForConfig(restclient.AddUserAgent(loopback, "skiff-dns"))
	if err != nil {
		return err
	}
	listening := make(chan *dns.Server, 1)
	done := make(chan error, 1)
	go func() {
		// On the advertise address only, where kube-dns's endpoint is: a
		// host resolver on a loopback port 53 (systemd-resolved's stub)
		// stays, and is an upstream rather than this server itself.
		done <- dns.Run(ctx, client, dns.Options{BindAddress: advertise.String(), Port: s.port, ClusterDomain: s.clusterDomain,
			Upstreams: s.upstreams, Started: func(srv *dns.Server) { listening <- srv }})
	}()
	var srv *dns.Server
	select {
	case srv = <-listening:
	case err := <-done:
		return err
	}
	svc := dns.ServiceOptions{ClusterIP: clusterIP, EndpointIPs: []net.IP{advertise}, Port: int32(srv.UDPAddr().Port), NodeName: s.nodeName}
	// Retried: the Service IP may be taken until its holder is deleted.
	_ = wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := dns.EnsureService(ctx, client, svc); err != nil {
			klog.ErrorS(err, "Publishing the cluster DNS Service", "clusterIP", clusterIP)
			return false, nil
		}
		klog.InfoS("Cluster DNS published", "service", "kube-system/"+dns.ServiceName, "clusterIP", clusterIP, "endpoint", net.JoinHostPort(advertise.String(), strconv.Itoa(srv.UDPAddr().Port)))
		return true, nil
	})
	if s.started != nil {
		s.started(srv)
	}
	return <-done
}

// defaultClusterDNS gives the local node of skiff server the embedded
// DNS's address unless --cluster-dns names another.
func (n *nodeOptions) defaultClusterDNS(serviceCIDR string) error {
	if len(n.clusterDNS) > 0 {
		return nil
	}
	ip, err := dns.ClusterDNSIP(serviceCIDR, 10)
	if err != nil {
		return err
	}
	n.clusterDNS = []string{ip.String()}
	return nil
}
