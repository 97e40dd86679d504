package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/componentserver"
	"github.com/skiff-dev/skiff/pkg/kubelet"
	"github.com/skiff-dev/skiff/pkg/kubelet/simulated"
)

type agentOptions struct {
	kubeconfig string
	serving    *componentserver.Options
	// Per node, as the kubelet's --kube-api-qps and --kube-api-burst.
	qps   float32
	burst int

	simulate int
	prefix   string
	capacity string
	labels   string
	taints   string

	startDelay      time.Duration
	podCIDRFromNode bool
	podWorkers      int

	// The real node's, without --simulate.
	node              nodeOptions
	network           nodeNetworkOptions
	dataDir           string
	rotateServerCerts bool
	cleanup           bool
	networkKubeconfig string
}

func newAgentCommand() *cobra.Command {
	o := &agentOptions{serving: componentserver.NewOptions(kubelet.KubeletPort, "kubelet"), qps: 50, burst: 100,
		prefix: "sim-", capacity: simulated.DefaultCapacity,
		podWorkers: simulated.DefaultPodWorkers, dataDir: options.DefaultDataDir(), rotateServerCerts: true}
	cmd := &cobra.Command{
		Use:   "agent --kubeconfig FILE --simulate N",
		Short: "Run a node agent; with --simulate, N simulated nodes in one process",
		Long: `Run the node agent against the API server of --kubeconfig. With --simulate N
it runs N simulated nodes (<prefix>0 ... <prefix>N-1, like kwok or kubemark's
hollow nodes): each registers its Node, renews its Lease in kube-node-lease
every 10s and reports its status, sharing one client and one informer. Pods
bound to them (one watch of all bound pods for all nodes) are admitted
against the node's allocatable, go Pending -> Running with every container
ready after --simulate-start-delay, get an IP of the node's pod range, and
are confirmed deleted once their containers stopped. Pod annotations steer
the simulation: skiff.dev/sim-ready: "false" (Running, not Ready),
skiff.dev/sim-exit-after: "5s" with skiff.dev/sim-exit-code: "0" (the
containers exit; restarted with back-off as the restartPolicy says), and
skiff.dev/sim-usage: "cpu=250m,memory=64Mi".
Without --simulate it runs this machine as a node (kubelet on containerd
over CRI): skiff's own containerd with its data in <data-dir>/agent/containerd
(stopped on exit; a kill -9 leaves it and the containers running, and the next
start adopts them), or the runtime of --container-runtime-endpoint; image
archives in <data-dir>/agent/images are imported at start. Its kubelet server
verifies client certificates (the API server's) against --client-ca-file, by
default the CA of --kubeconfig, as k3s's agent does.
/healthz, /livez, /readyz (open to all) and /metrics (authenticated and
authorized through the API server) are served over HTTPS on
--bind-address:--secure-port.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.cleanup {
				if err := cleanupNodeNetwork(o.node.cniBridge); err != nil {
					return fmt.Errorf("cleanup: %w", err)
				}
				klog.InfoS("Removed the node's network rules, routes and devices")
				return nil
			}
			return o.run(genericapiserver.SetupSignalContext())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "Path to the kubeconfig file with the API server's address and the credentials to use (required).")
	fs.Float32Var(&o.qps, "kube-api-qps", o.qps, "QPS of each node's requests to the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", o.burst, "Burst of each node's requests to the API server.")
	fs.IntVar(&o.simulate, "simulate", o.simulate, "Run this many simulated nodes.")
	fs.StringVar(&o.prefix, "simulate-prefix", o.prefix, "Name prefix of the simulated nodes.")
	fs.StringVar(&o.capacity, "simulate-capacity", o.capacity, "Capacity (and allocatable) of each simulated node, name=quantity pairs; extended resources too (example.com/gpu=4).")
	fs.StringVar(&o.labels, "simulate-labels", o.labels, "Labels of each simulated node, key=value pairs.")
	fs.StringVar(&o.taints, "simulate-taints", o.taints, "Taints each simulated node registers with, key[=value]:effect entries.")
	fs.DurationVar(&o.startDelay, "simulate-start-delay", o.startDelay, "Time from a pod's bind to its containers running.")
	fs.BoolVar(&o.podCIDRFromNode, "simulate-pod-cidr-from-node", o.podCIDRFromNode, "Take pod IPs from the Node's spec.podCIDRs (set by node IPAM); without it, or before the Node has one, node i's pods get IPs of the i-th /24 of 10.88.0.0/13.")
	fs.IntVar(&o.podWorkers, "simulate-pod-workers", o.podWorkers, "Pods synced at once, for all simulated nodes.")
	fs.StringVar(&o.dataDir, "data-dir", o.dataDir, "Directory of the node's data (containerd, kubelet root dir, images to import), without --simulate.")
	fs.BoolVar(&o.rotateServerCerts, "rotate-server-certificates", o.rotateServerCerts, "Without --simulate: request the kubelet's serving certificate with a kubernetes.io/kubelet-serving CSR and renew it as it nears expiry; a self-signed one is served until it is issued (and without this).")
	o.node.addFlags(fs)
	o.network.addFlags(fs)
	o.network.addClusterCIDRFlag(fs)
	fs.StringVar(&o.networkKubeconfig, "network-kubeconfig", "", "Kubeconfig of the node's service proxy, pod network and NetworkPolicy enforcement: an identity that may read Services, EndpointSlices, Nodes, Pods, Namespaces and NetworkPolicies (user system:skiff:node-network has that ClusterRole); empty: --kubeconfig's.")
	fs.BoolVar(&o.cleanup, "cleanup", false, "Remove what the node's networking made on this machine (service proxy rules in every mode, pod network routes, VXLAN device and masquerade rules, NetworkPolicy chains, the pod bridge of --cni-bridge), then exit.")
	o.serving.AddFlags(fs)
	return cmd
}

func (o *agentOptions) simulatedOptions() (simulated.Options, []error) {
	var errs []error
	opts := simulated.Options{Count: o.simulate, Prefix: o.prefix, StartDelay: o.startDelay,
		PodCIDRFromNode: o.podCIDRFromNode, Workers: o.podWorkers}
	var err error
	if opts.Capacity, err = simulated.ParseCapacity(o.capacity); err != nil {
		errs = append(errs, fmt.Errorf("--simulate-capacity: %w", err))
	}
	if opts.Labels, err = simulated.ParseLabels(o.labels); err != nil {
		errs = append(errs, fmt.Errorf("--simulate-labels: %w", err))
	}
	if opts.Taints, err = simulated.ParseTaints(o.taints); err != nil {
		errs = append(errs, fmt.Errorf("--simulate-taints: %w", err))
	}
	return opts, errs
}

func (o *agentOptions) validate() (simulated.Options, []error) {
	opts, errs := o.simulatedOptions()
	if o.kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required"))
	}
	if o.simulate < 0 {
		errs = append(errs, errors.New("--simulate must not be negative"))
	}
	if o.simulate == 0 {
		if _, err := o.node.agentOptions(o.dataDir); err != nil {
			errs = append(errs, err)
		}
		if err := o.network.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.startDelay < 0 {
		errs = append(errs, errors.New("--simulate-start-delay must not be negative"))
	}
	if o.podWorkers <= 0 {
		errs = append(errs, errors.New("--simulate-pod-workers must be positive"))
	}
	if o.qps <= 0 || o.burst <= 0 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must be positive"))
	}
	return opts, append(errs, o.serving.Validate()...)
}

func (o *agentOptions) run(ctx context.Context) error {
	opts, errs := o.validate()
	if len(errs) > 0 {
		return fmt.Errorf("invalid options: %v", errs)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	// The service proxy, pod network and NetworkPolicy enforcement:
	// their own identity where given (the node's may read only its own
	// Node and pods).
	networkCfg := restclient.CopyConfig(cfg)
	if o.networkKubeconfig != "" {
		if networkCfg, err = clientcmd.BuildConfigFromFlags("", o.networkKubeconfig); err != nil {
			return fmt.Errorf("--network-kubeconfig: %w", err)
		}
	}
	cfg = restclient.AddUserAgent(cfg, "kubelet")
	if o.simulate == 0 {
		return o.runNode(ctx, cfg, networkCfg)
	}
	// One client for every simulated node: their limits add up.
	cfg.QPS, cfg.Burst = o.qps*float32(o.simulate), o.burst*o.simulate
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	stopped, err := o.serving.Serve(ctx, "kubelet", o.kubeconfig, nil)
	if err != nil {
		return err
	}
	klog.InfoS("Starting skiff agent", "server", cfg.Host, "simulate", o.simulate)
	err = simulated.Run(ctx, client, opts)
	<-stopped
	klog.InfoS("skiff agent stopped")
	return err
}

// runNode runs this machine as a node.
func (o *agentOptions) runNode(ctx context.Context, cfg, networkCfg *restclient.Config) error {
	opts, err := o.node.agentOptions(o.dataDir)
	if err != nil {
		return fmt.Errorf("invalid options: %w", err)
	}
	if why := o.node.runtimeMissing(); why != "" {
		return fmt.Errorf("cannot run a node here: %s", why)
	}
	opts.RotateServerCertificates = o.rotateServerCerts
	// The kubelet server's, as upstream kubelet's --client-ca-file (a
	// real node serves no component server of its own).
	opts.ClientCAFile = o.serving.Authentication.ClientCert.ClientCA
	if opts.ClientCAFile == "" {
		if opts.ClientCAFile, err = kubeconfigCA(cfg, filepath.Join(o.dataDir, "agent")); err != nil {
			return err
		}
	}
	cfg.QPS, cfg.Burst = o.qps, o.burst
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if opts.NodeName == "" {
		if opts.NodeName, err = os.Hostname(); err != nil {
			return err
		}
	}
	klog.InfoS("Starting skiff agent", "server", cfg.Host, "dataDir", o.dataDir)
	err = runNodeWithNetwork(ctx, client, opts, &nodeNetwork{opts: &o.network, config: networkCfg})
	klog.InfoS("skiff agent stopped")
	return err
}

// kubeconfigCA is a file with the CA the kubeconfig trusts the API server
// with (written under dir when the kubeconfig holds it inline): the
// cluster CA, which also signed the API server's kubelet client
// certificate. "" when the kubeconfig names none.
func kubeconfigCA(cfg *restclient.Config, dir string) (string, error) {
	switch {
	case cfg.CAFile != "":
		return cfg.CAFile, nil
	case len(cfg.CAData) == 0:
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig-ca.crt")
	if err := os.WriteFile(path, cfg.CAData, 0o644); err != nil {
		return "", fmt.Errorf("writing the kubeconfig's CA for the kubelet server: %w", err)
	}
	return path, nil
}
