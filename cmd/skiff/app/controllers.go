package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	componentbaseconfig "k8s.io/component-base/config"
	componentbaseoptions "k8s.io/component-base/config/options"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/controllers/csrsigning"
	"github.com/skiff-dev/skiff/pkg/controllers/nodeipam"
	"github.com/skiff-dev/skiff/pkg/controllers/nodelifecycle"
)

// controllerOptions are the flags of the controllers that `skiff server`
// and `skiff controller-manager` share, named as kube-controller-manager's.
type controllerOptions struct {
	LeaderElection         componentbaseconfig.LeaderElectionConfiguration
	ClusterSigningCertFile string
	ClusterSigningKeyFile  string
	ClusterSigningDuration time.Duration
	// UseServiceAccountCredentials: each controller as its own
	// ServiceAccount (controllers.Options).
	UseServiceAccountCredentials bool
	// Node IPAM (nodeipam.ParseConfig): the mask sizes 0 when not given.
	AllocateNodeCIDRs    bool
	ClusterCIDR          string
	NodeCIDRMaskSize     int
	NodeCIDRMaskSizeIPv4 int
	NodeCIDRMaskSizeIPv6 int
	// NodeLifecycle: the node lifecycle controller's flags.
	NodeLifecycle nodelifecycle.Config
	// Controllers is --controllers; ConcurrentSyncs the controllers'
	// --concurrent-*-syncs by controller name.
	Controllers     []string
	ConcurrentSyncs map[string]*int
	// IntFlags are the controllers' other int flags by flag name.
	IntFlags map[string]*int
}

// Skiff's node IPAM defaults (issue 9); upstream's are off and empty.
const (
	defaultAllocateNodeCIDRs = true
	defaultClusterCIDR       = "10.244.0.0/16"
)

func newControllerOptions() *controllerOptions {
	return &controllerOptions{
		LeaderElection:         controllers.DefaultLeaderElection(),
		ClusterSigningDuration: csrsigning.DefaultDuration,
		AllocateNodeCIDRs:      defaultAllocateNodeCIDRs,
		ClusterCIDR:            defaultClusterCIDR,
		NodeLifecycle:          nodelifecycle.DefaultConfig(),
		Controllers:            []string{"*"},
		ConcurrentSyncs:        map[string]*int{},
		IntFlags:               map[string]*int{},
	}
}

// addFlags registers the flags; signingDefault explains what empty
// --cluster-signing-*-file flags mean.
func (c *controllerOptions) addFlags(fs *pflag.FlagSet, signingDefault string) {
	componentbaseoptions.BindLeaderElectionFlags(&c.LeaderElection, fs)
	fs.StringSliceVar(&c.Controllers, "controllers", c.Controllers, controllers.ControllersFlagUsage())
	for _, d := range controllers.Descriptors() {
		if f := d.Concurrency; f != nil {
			n := f.Default
			c.ConcurrentSyncs[d.Name] = &n
			fs.IntVar(&n, f.Flag, n, f.Usage)
		}
		for _, f := range d.Flags {
			n := f.Default
			c.IntFlags[f.Flag] = &n
			fs.IntVar(&n, f.Flag, n, f.Usage)
		}
		if d.AddFlags != nil {
			d.AddFlags(fs)
		}
	}
	fs.StringVar(&c.ClusterSigningCertFile, "cluster-signing-cert-file", c.ClusterSigningCertFile, "Filename containing a PEM-encoded X509 CA certificate used to issue cluster-scoped certificates (the kubernetes.io/kube-apiserver-client, kube-apiserver-client-kubelet and kubelet-serving signers). "+signingDefault)
	fs.StringVar(&c.ClusterSigningKeyFile, "cluster-signing-key-file", c.ClusterSigningKeyFile, "Filename containing a PEM-encoded RSA or ECDSA private key used to sign cluster-scoped certificates. "+signingDefault)
	fs.BoolVar(&c.UseServiceAccountCredentials, "use-service-account-credentials", c.UseServiceAccountCredentials, "If true, use individual service account credentials for each controller.")
	fs.BoolVar(&c.AllocateNodeCIDRs, "allocate-node-cidrs", c.AllocateNodeCIDRs, "Should CIDRs for Pods be allocated: each Node without spec.podCIDRs gets them from --cluster-cidr (upstream's default is false).")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "CIDR Range for Pods in cluster. Only used when --allocate-node-cidrs=true; if false, this option will be ignored. A dual-stack pair (one of each IP family) is comma separated (upstream's default is empty).")
	fs.IntVar(&c.NodeCIDRMaskSize, "node-cidr-mask-size", c.NodeCIDRMaskSize, "Mask size for node cidr in cluster. Default is 24 for IPv4 and 64 for IPv6.")
	fs.IntVar(&c.NodeCIDRMaskSizeIPv4, "node-cidr-mask-size-ipv4", c.NodeCIDRMaskSizeIPv4, "Mask size for IPv4 node cidr in dual-stack cluster. Default is 24.")
	fs.IntVar(&c.NodeCIDRMaskSizeIPv6, "node-cidr-mask-size-ipv6", c.NodeCIDRMaskSizeIPv6, "Mask size for IPv6 node cidr in dual-stack cluster. Default is 64.")
	nl := &c.NodeLifecycle
	fs.DurationVar(&nl.StartupGracePeriod, "node-startup-grace-period", nl.StartupGracePeriod, "Amount of time which we allow starting Node to be unresponsive before marking it unhealthy.")
	fs.DurationVar(&nl.MonitorGracePeriod, "node-monitor-grace-period", nl.MonitorGracePeriod, "Amount of time which we allow running Node to be unresponsive before marking it unhealthy. Must be N times more than kubelet's nodeStatusUpdateFrequency, where N means number of retries allowed for kubelet to post node status. This value should also be greater than the sum of HTTP2_PING_TIMEOUT_SECONDS and HTTP2_READ_IDLE_TIMEOUT_SECONDS")
	fs.Float32Var(&nl.EvictionRate, "node-eviction-rate", nl.EvictionRate, "Number of nodes per second on which pods are deleted in case of node failure when a zone is healthy (see --unhealthy-zone-threshold for definition of healthy/unhealthy). Zone refers to entire cluster in non-multizone clusters.")
	fs.Float32Var(&nl.SecondaryEvictionRate, "secondary-node-eviction-rate", nl.SecondaryEvictionRate, "Number of nodes per second on which pods are deleted in case of node failure when a zone is unhealthy (see --unhealthy-zone-threshold for definition of healthy/unhealthy). Zone refers to entire cluster in non-multizone clusters. This value is implicitly overridden to 0 if the cluster size is smaller than --large-cluster-size-threshold.")
	fs.Int32Var(&nl.LargeClusterSizeThreshold, "large-cluster-size-threshold", nl.LargeClusterSizeThreshold, "Number of nodes from which node-lifecycle-controller treats the cluster as large for the eviction logic purposes. --secondary-node-eviction-rate is implicitly overridden to 0 for clusters this size or smaller. Notice: If nodes reside in multiple zones, this threshold will be considered as zone node size threshold for each zone to determine node eviction rate independently.")
	fs.Float32Var(&nl.UnhealthyZoneThreshold, "unhealthy-zone-threshold", nl.UnhealthyZoneThreshold, "Fraction of Nodes in a zone which needs to be not Ready (minimum 3) for zone to be treated as unhealthy. ")
	fs.DurationVar(&nl.MonitorPeriod, "node-monitor-period", nl.MonitorPeriod, "The period for syncing NodeStatus in NodeLifecycleController.")
	fs.DurationVar(&c.ClusterSigningDuration, "cluster-signing-duration", c.ClusterSigningDuration, "The max length of duration signed certificates will be given. Individual CSRs may request shorter certs by setting spec.expirationSeconds.")
}

func (c *controllerOptions) validate() []error {
	errs := controllers.ValidateLeaderElection(c.LeaderElection)
	errs = append(errs, controllers.ValidateControllers(c.Controllers)...)
	for _, d := range controllers.Descriptors() {
		if n := c.ConcurrentSyncs[d.Name]; n != nil {
			if err := d.Concurrency.Validate(*n); err != nil {
				errs = append(errs, err)
			}
		}
		for _, f := range d.Flags {
			if n := c.IntFlags[f.Flag]; n != nil {
				if err := f.Validate(*n); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if d.ValidateFlags != nil {
			errs = append(errs, d.ValidateFlags()...)
		}
	}
	if (c.ClusterSigningCertFile == "") != (c.ClusterSigningKeyFile == "") {
		errs = append(errs, fmt.Errorf("--cluster-signing-cert-file and --cluster-signing-key-file must be given together"))
	}
	if c.ClusterSigningDuration <= 0 {
		errs = append(errs, fmt.Errorf("--cluster-signing-duration must be positive"))
	}
	if _, err := c.nodeIPAM(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.NodeLifecycle.Validate()...)
	return errs
}

// nodeIPAM is the node IPAM controller's configuration; nothing without
// --allocate-node-cidrs.
func (c *controllerOptions) nodeIPAM() (nodeipam.Config, error) {
	if !c.AllocateNodeCIDRs {
		return nodeipam.Config{}, nil
	}
	return nodeipam.ParseConfig(c.ClusterCIDR, c.NodeCIDRMaskSize, c.NodeCIDRMaskSizeIPv4, c.NodeCIDRMaskSizeIPv6)
}

// run runs the controllers until ctx ends: with leader election, only
// while holding the Lease. With keepTrying (skiff server, which must not
// go on serving without controllers) a lost Lease means campaigning again
// and failed controllers are started again; without it (skiff
// controller-manager, which a supervisor restarts) either ends run, with
// controllers.ErrLeaderElectionLost for a lost Lease.
func (c *controllerOptions) run(ctx context.Context, cfg *restclient.Config, opts controllers.Options, keepTrying bool, watchDog *leaderelection.HealthzAdaptor) error {
	opts.ClusterSigningDuration = c.ClusterSigningDuration
	opts.UseServiceAccountCredentials = c.UseServiceAccountCredentials
	ipam, err := c.nodeIPAM()
	if err != nil {
		return err
	}
	opts.AllocateNodeCIDRs = c.AllocateNodeCIDRs
	opts.ClusterCIDRs, opts.NodeCIDRMaskSizes = ipam.ClusterCIDRs, ipam.NodeMaskSizes
	opts.NodeLifecycle = c.NodeLifecycle
	opts.Controllers = c.Controllers
	opts.ConcurrentSyncs = map[string]int{}
	for name, n := range c.ConcurrentSyncs {
		opts.ConcurrentSyncs[name] = *n
	}
	opts.IntFlags = map[string]int{}
	for flag, n := range c.IntFlags {
		opts.IntFlags[flag] = *n
	}
	identity := ""
	if c.LeaderElection.LeaderElect {
		var err error
		if identity, err = controllers.LeaderIdentity(); err != nil {
			return err
		}
	}
	pause := c.LeaderElection.RetryPeriod.Duration
	if pause <= 0 {
		pause = 2 * time.Second
	}
	for {
		var err error
		if c.LeaderElection.LeaderElect {
			err = controllers.RunElected(ctx, cfg, opts, c.LeaderElection, identity, watchDog)
		} else {
			err = controllers.Run(ctx, cfg, opts)
		}
		if ctx.Err() != nil {
			return nil
		}
		if !keepTrying {
			return err
		}
		if errors.Is(err, controllers.ErrLeaderElectionLost) {
			klog.InfoS("Lost the controllers' lease; campaigning again", "identity", identity)
		} else {
			klog.ErrorS(err, "Controllers stopped; starting them again", "identity", identity)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}
