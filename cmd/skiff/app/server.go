package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/component"
	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/dns"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins"
)

func newServerCommand() *cobra.Command {
	o := options.NewOptions()
	c := newControllerOptions()
	// As kube-controller-manager in kubeadm clusters.
	c.UseServiceAccountCredentials = true
	sched := newSchedulerOptions(plugins.NewInTreeRegistry())
	var disableScheduler, disableAgent, disableDNS bool
	var dnsUpstreams []string
	node := &nodeOptions{}
	network := &nodeNetworkOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the all-in-one control plane (API server on embedded or external etcd, controllers)",
		Long: `Run the all-in-one control plane. Without --etcd-servers it runs an embedded
etcd with its data in <data-dir>/etcd. On first start it creates a CA, serving
certificates and <data-dir>/admin.kubeconfig; when ready it prints how to use it.
The controllers run in the process while it holds the Lease
kube-system/kube-controller-manager (--leader-elect), so that of several servers
on one etcd, or a server and a skiff controller-manager, one runs them. The
scheduler (upstream's default configuration, as system:kube-scheduler) likewise
runs while holding kube-system/kube-scheduler, unless --disable-scheduler.
Like k3s, it also runs a node on this machine (unless --disable-agent) when a
container runtime is available: its own containerd (data in
<data-dir>/agent/containerd, stopped on exit) or the one of
--container-runtime-endpoint; image archives in <data-dir>/agent/images are
imported at start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logWatchClosings(cmd)
			if errs := c.validate(); len(errs) > 0 {
				return fmt.Errorf("invalid options: %v", errs)
			}
			parts := []component.Component{&serverControllers{controllers: c, apiserver: o}}
			if !disableScheduler {
				parts = append(parts, &serverScheduler{scheduler: sched, apiserver: o})
			}
			if !disableDNS {
				// The local node's pods resolve through it unless
				// --cluster-dns names another.
				if err := node.defaultClusterDNS(o.ServiceClusterIPRange); err != nil {
					return fmt.Errorf("invalid options: %w", err)
				}
				if _, err := dns.Upstreams(dnsUpstreams, "", nil); len(dnsUpstreams) > 0 && err != nil {
					return fmt.Errorf("invalid options: --dns-upstream-servers: %w", err)
				}
				parts = append(parts, &serverDNS{apiserver: o, clusterDomain: node.clusterDomain, nodeName: node.nodeName, upstreams: dnsUpstreams})
			}
			if !disableAgent {
				if why := node.runtimeMissing(); why != "" {
					klog.InfoS("No local node: no container runtime on this machine; serving the control plane alone", "reason", why)
				} else {
					if _, err := node.agentOptions(o.DataDir); err != nil {
						return fmt.Errorf("invalid options: %w", err)
					}
					network.clusterCIDR = c.ClusterCIDR
					if err := network.validate(); err != nil {
						return fmt.Errorf("invalid options: %w", err)
					}
					parts = append(parts, &serverNode{node: node, network: network, dataDir: o.DataDir, adminKubeconfig: o.AdminKubeconfig()})
				}
			}
			return component.Run(genericapiserver.SetupSignalContext(), apiServer(o), func() { announce(cmd, o) }, parts...)
		},
	}
	o.AddFlags(cmd.Flags())
	c.addFlags(cmd.Flags(), "Empty: <data-dir>/pki/ca.crt and ca.key, the cluster CA.")
	// k3s's name: skiff scheduler (or kube-scheduler) may schedule instead.
	cmd.Flags().BoolVar(&disableScheduler, "disable-scheduler", false, "Do not run the scheduler in this process (run skiff scheduler or kube-scheduler against it instead).")
	cmd.Flags().BoolVar(&disableAgent, "disable-agent", false, "Do not run a node on this machine (by default one runs when containerd is installed, or --container-runtime-endpoint is set, and skiff runs as root).")
	cmd.Flags().BoolVar(&disableDNS, "disable-dns", false, "Do not serve the cluster DNS (kube-system/kube-dns at the 10th service IP) from this process (run skiff dns or CoreDNS instead).")
	cmd.Flags().StringSliceVar(&dnsUpstreams, "dns-upstream-servers", nil, "Resolvers (IP[:port]) the cluster DNS forwards names outside the cluster to; empty: the nameservers of this machine's /etc/resolv.conf.")
	node.addFlags(cmd.Flags())
	network.addFlags(cmd.Flags())
	return cmd
}

// serverControllers are the controllers as a component of skiff server:
// they campaign again after losing the Lease and are started again after a
// failure, as a server must not go on serving without them.
type serverControllers struct {
	controllers *controllerOptions
	apiserver   *options.Options
}

func (s *serverControllers) Name() string { return "controller-manager" }

func (s *serverControllers) Run(ctx context.Context, loopback *restclient.Config) error {
	opts, err := s.controllers.serverControllerOptions(s.apiserver)
	if err != nil {
		klog.ErrorS(err, "Reading the cluster CA; kube-root-ca.crt is not published")
	}
	return s.controllers.run(ctx, loopback, opts, true, nil)
}

// serverControllerOptions: the cluster CA is the root CA that pods use to
// verify the apiserver and, unless --cluster-signing-*-file say otherwise,
// the CA that signs CSRs.
func (c *controllerOptions) serverControllerOptions(o *options.Options) (controllers.Options, error) {
	opts := controllers.Options{
		ClusterSigningCertFile: c.ClusterSigningCertFile,
		ClusterSigningKeyFile:  c.ClusterSigningKeyFile,
		// Legacy token Secrets are signed with the server's own key.
		ServiceAccountPrivateKeyFile: o.ServiceAccountSigningKeyFile(),
		// local-path volumes under <data-dir>/storage.
		DataDir: o.DataDir,
	}
	if opts.ClusterSigningCertFile == "" {
		opts.ClusterSigningCertFile = filepath.Join(o.PKIDir(), "ca.crt")
		opts.ClusterSigningKeyFile = filepath.Join(o.PKIDir(), "ca.key")
	}
	rootCA, err := os.ReadFile(filepath.Join(o.PKIDir(), "ca.crt"))
	opts.RootCA = rootCA
	return opts, err
}

// announce prints the line that tells that the server is ready.
func announce(cmd *cobra.Command, o *options.Options) {
	fmt.Fprintf(cmd.OutOrStdout(), "skiff is ready; to use it: export KUBECONFIG=%s\n", o.AdminKubeconfig())
}
