package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	componentbaseconfig "k8s.io/component-base/config"
	componentbaseoptions "k8s.io/component-base/config/options"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/componentserver"
	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/pkg/scheduler"
	schedconfig "github.com/skiff-dev/skiff/pkg/scheduler/config"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins"
)

// schedulerPort is upstream kube-scheduler's secure port.
const schedulerPort = 10259

// schedulerUser is the identity RBAC's system:kube-scheduler role is
// bound to.
const schedulerUser = "system:kube-scheduler"

// schedulerOptions are kube-scheduler's flags.
type schedulerOptions struct {
	configFile     string
	kubeconfig     string
	qps            float32
	burst          int
	leaderElection componentbaseconfig.LeaderElectionConfiguration
	// flags tells which flags were given (they override --config's
	// leader election, as upstream's).
	flags    *pflag.FlagSet
	registry framework.Registry
}

func newSchedulerOptions(registry framework.Registry) *schedulerOptions {
	le := controllers.DefaultLeaderElection()
	le.ResourceName = configv1.SchedulerDefaultLockObjectName
	return &schedulerOptions{qps: 50, burst: 100, leaderElection: le, registry: registry}
}

// addFlags registers the flags the scheduler has in skiff server too.
func (o *schedulerOptions) addFlags(fs *pflag.FlagSet) {
	o.flags = fs
	fs.StringVar(&o.configFile, "config", o.configFile, "The path to the scheduler's configuration file (KubeSchedulerConfiguration, apiVersion kubescheduler.config.k8s.io/v1).")
}

// addStandaloneFlags registers the flags only skiff scheduler has.
func (o *schedulerOptions) addStandaloneFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "Path to kubeconfig file with authorization and master location information (required unless --config names one in clientConnection.kubeconfig).")
	fs.Float32Var(&o.qps, "kube-api-qps", o.qps, "QPS to use while talking with kubernetes apiserver. Ignored if --config is given.")
	fs.IntVar(&o.burst, "kube-api-burst", o.burst, "Burst to use while talking with kubernetes apiserver. Ignored if --config is given.")
	componentbaseoptions.BindLeaderElectionFlags(&o.leaderElection, fs)
}

// config is --config's configuration (or the defaults) with the
// leader-election flags given applied; without --config the QPS and burst
// flags too.
func (o *schedulerOptions) config() (*configv1.KubeSchedulerConfiguration, error) {
	var cfg *configv1.KubeSchedulerConfiguration
	if o.configFile != "" {
		var err error
		if cfg, err = schedconfig.Load(o.configFile); err != nil {
			return nil, err
		}
	} else {
		cfg = schedconfig.Default()
		cfg.ClientConnection.QPS, cfg.ClientConnection.Burst = o.qps, int32(o.burst)
		cfg.ClientConnection.Kubeconfig = o.kubeconfig
	}
	if cfg.ClientConnection.Kubeconfig == "" {
		cfg.ClientConnection.Kubeconfig = o.kubeconfig
	}
	changed := func(name string) bool { return o.flags != nil && o.flags.Lookup(name) != nil && o.flags.Changed(name) }
	le, fl := &cfg.LeaderElection, o.leaderElection
	if changed("leader-elect") {
		le.LeaderElect = ptr.To(fl.LeaderElect)
	}
	if changed("leader-elect-lease-duration") {
		le.LeaseDuration = fl.LeaseDuration
	}
	if changed("leader-elect-renew-deadline") {
		le.RenewDeadline = fl.RenewDeadline
	}
	if changed("leader-elect-retry-period") {
		le.RetryPeriod = fl.RetryPeriod
	}
	if changed("leader-elect-resource-lock") {
		le.ResourceLock = fl.ResourceLock
	}
	if changed("leader-elect-resource-name") {
		le.ResourceName = fl.ResourceName
	}
	if changed("leader-elect-resource-namespace") {
		le.ResourceNamespace = fl.ResourceNamespace
	}
	if err := schedconfig.Validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newSchedulerCommand() *cobra.Command {
	o := newSchedulerOptions(plugins.NewInTreeRegistry())
	serving := componentserver.NewOptions(schedulerPort, "kube-scheduler")
	cmd := &cobra.Command{
		Use:   "scheduler --kubeconfig FILE",
		Short: "Run skiff's scheduler against an API server, as kube-scheduler",
		Long: `Run the scheduler against the API server of --kubeconfig: it binds each
pending pod whose spec.schedulerName is one of its profiles' to a node, with
upstream's plugins, configured by --config (a KubeSchedulerConfiguration of
kubescheduler.config.k8s.io/v1; upstream's defaults without it). With
--leader-elect (the default) it schedules only while holding the Lease
kube-system/kube-scheduler. /healthz, /livez, /readyz (open to all) and /metrics
(authenticated and authorized through the API server) are served over HTTPS on
--bind-address:--secure-port.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runStandalone(genericapiserver.SetupSignalContext(), serving)
		},
	}
	fs := cmd.Flags()
	o.addFlags(fs)
	o.addStandaloneFlags(fs)
	serving.AddFlags(fs)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.AddGoFlag(klogFlags.Lookup(name))
	}
	return cmd
}

func (o *schedulerOptions) runStandalone(ctx context.Context, serving *componentserver.Options) error {
	cfg, err := o.config()
	if err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if errs := serving.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options: %v", errs)
	}
	kubeconfig := cfg.ClientConnection.Kubeconfig
	if kubeconfig == "" {
		return errors.New("--kubeconfig is required")
	}
	rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	var watchDog *leaderelection.HealthzAdaptor
	checks := []healthz.HealthChecker{healthz.PingHealthz}
	if *cfg.LeaderElection.LeaderElect {
		// As upstream: /healthz fails once the leader is 20s late renewing.
		watchDog = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
		checks = append(checks, watchDog)
	}
	stopped, err := serving.Serve(ctx, "kube-scheduler", kubeconfig, checks)
	if err != nil {
		return err
	}
	klog.InfoS("Starting skiff scheduler", "server", rest.Host, "leaderElect", *cfg.LeaderElection.LeaderElect)
	runErr := runScheduler(ctx, rest, cfg, o.registry, false, watchDog)
	if ctx.Err() == nil {
		return fmt.Errorf("scheduler stopped: %w", runErr)
	}
	<-stopped
	klog.InfoS("skiff scheduler stopped")
	return runErr
}

// runScheduler schedules until ctx ends, while holding the Lease with
// leader election. With keepTrying (skiff server) a lost Lease or a
// failure means starting again; without, it ends runScheduler.
func runScheduler(ctx context.Context, rest *restclient.Config, cfg *configv1.KubeSchedulerConfiguration, registry framework.Registry, keepTrying bool, watchDog *leaderelection.HealthzAdaptor) error {
	rest = restclient.AddUserAgent(restclient.CopyConfig(rest), "kube-scheduler")
	rest.QPS, rest.Burst = cfg.ClientConnection.QPS, int(cfg.ClientConnection.Burst)
	rest.ContentType = cfg.ClientConnection.ContentType
	rest.AcceptContentTypes = cfg.ClientConnection.AcceptContentTypes
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return err
	}
	once := func(ctx context.Context) error {
		// Fresh informers, cache and queue for every term.
		factory := informers.NewSharedInformerFactory(client, 0)
		s, err := scheduler.New(ctx, client, factory, registry, cfg)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	}
	identity := ""
	if *cfg.LeaderElection.LeaderElect {
		if identity, err = controllers.LeaderIdentity(); err != nil {
			return err
		}
	}
	pause := max(cfg.LeaderElection.RetryPeriod.Duration, time.Second)
	for {
		var err error
		if *cfg.LeaderElection.LeaderElect {
			err = scheduler.RunElected(ctx, client, cfg.LeaderElection, identity, watchDog, once)
		} else {
			err = once(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if !keepTrying {
			return err
		}
		if errors.Is(err, scheduler.ErrLeaderElectionLost) {
			klog.InfoS("Lost the scheduler's lease; campaigning again", "identity", identity)
		} else {
			klog.ErrorS(err, "Scheduler stopped; starting it again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// serverScheduler is the scheduler as a component of skiff server, as
// system:kube-scheduler (a client certificate of the cluster CA, as
// kubeadm gives kube-scheduler), leader-elected so that a standalone
// skiff scheduler or another server may hold the Lease instead.
type serverScheduler struct {
	scheduler *schedulerOptions
	apiserver *options.Options
}

func (s *serverScheduler) Name() string { return "scheduler" }

func (s *serverScheduler) Run(ctx context.Context, loopback *restclient.Config) error {
	cfg, err := s.scheduler.config()
	if err != nil {
		return err
	}
	rest, err := asUser(loopback, s.apiserver.PKIDir(), schedulerUser)
	if err != nil {
		klog.ErrorS(err, "No system:kube-scheduler credentials; scheduling with the loopback identity")
		rest = loopback
	}
	return runScheduler(ctx, rest, cfg, s.scheduler.registry, true, nil)
}

// asUser is loopback's address and trust with a fresh client certificate
// for user from the cluster CA in pkiDir instead of loopback's token.
func asUser(loopback *restclient.Config, pkiDir, user string) (*restclient.Config, error) {
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.NewClientCert(user, nil)
	if err != nil {
		return nil, err
	}
	cfg := restclient.AnonymousClientConfig(loopback)
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	return cfg, nil
}
