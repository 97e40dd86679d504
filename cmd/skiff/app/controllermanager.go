package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/skiff-dev/skiff/pkg/componentserver"
	"github.com/skiff-dev/skiff/pkg/controllers"
)

// controllerManagerPort is upstream kube-controller-manager's secure port.
const controllerManagerPort = 10257

type controllerManagerOptions struct {
	controllers *controllerOptions
	// serving: /metrics for whom the API server says may read it.
	serving    *componentserver.Options
	kubeconfig string
	rootCAFile string
	saKeyFile  string
	qps        float32
	burst      int
}

func newControllerManagerCommand() *cobra.Command {
	o := &controllerManagerOptions{controllers: newControllerOptions(), qps: 20, burst: 30,
		serving: componentserver.NewOptions(controllerManagerPort, "kube-controller-manager")}
	cmd := &cobra.Command{
		Use:   "controller-manager --kubeconfig FILE",
		Short: "Run skiff's controllers against an API server, as kube-controller-manager",
		Long: `Run skiff's controllers (those --controllers names, by upstream's names)
against the API server of --kubeconfig. With --leader-elect (the default) they run only while this process
holds the Lease kube-system/kube-controller-manager; with
--use-service-account-credentials each controller authenticates as its own
ServiceAccount in kube-system. /healthz, /livez, /readyz (open to all) and
/metrics (authenticated and authorized through the API server, by
--authentication-kubeconfig and --authorization-kubeconfig, which default to
--kubeconfig) are served over HTTPS on --bind-address:--secure-port, with a
self-signed certificate unless --tls-cert-file is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(genericapiserver.SetupSignalContext())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "Path to the kubeconfig file with the API server's address and the credentials to use (required).")
	fs.StringVar(&o.rootCAFile, "root-ca-file", o.rootCAFile, "The CA bundle published in every namespace as the kube-root-ca.crt ConfigMap and included in service account token Secrets. Empty: the kubeconfig's certificate authority.")
	fs.StringVar(&o.saKeyFile, "service-account-private-key-file", o.saKeyFile, "Enables legacy secret-based tokens when set. Filename containing a PEM-encoded private RSA or ECDSA key used to sign service account tokens.")
	fs.Float32Var(&o.qps, "kube-api-qps", o.qps, "QPS to use while talking with the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", o.burst, "Burst to use while talking with the API server.")
	o.serving.AddFlags(fs)
	o.controllers.addFlags(fs, "Empty: CSRs are not signed.")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.AddGoFlag(klogFlags.Lookup(name))
	}
	return cmd
}

func (o *controllerManagerOptions) validate() []error {
	errs := o.controllers.validate()
	if o.kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required"))
	}
	return append(errs, o.serving.Validate()...)
}

func (o *controllerManagerOptions) run(ctx context.Context) error {
	if errs := o.validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options: %v", errs)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	cfg = restclient.AddUserAgent(cfg, "kube-controller-manager")
	cfg.QPS, cfg.Burst = o.qps, o.burst
	opts, err := o.controllerOptions(cfg)
	if err != nil {
		return err
	}

	var watchDog *leaderelection.HealthzAdaptor
	checks := []healthz.HealthChecker{healthz.PingHealthz}
	if o.controllers.LeaderElection.LeaderElect {
		// As upstream: /healthz fails once the leader is 20s late renewing.
		watchDog = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
		checks = append(checks, watchDog)
	}
	// Without their own kubeconfigs, the reviews go where the controllers'
	// requests go (upstream would fall back to the in-cluster config).
	stopped, err := o.serving.Serve(ctx, "kube-controller-manager", o.kubeconfig, checks, crmetrics.Registry)
	if err != nil {
		return err
	}
	klog.InfoS("Starting skiff controller-manager", "server", cfg.Host, "leaderElect", o.controllers.LeaderElection.LeaderElect)
	runErr := o.controllers.run(ctx, cfg, opts, false, watchDog)
	if ctx.Err() == nil {
		// The controllers ended on their own (lost lease, failure): so
		// does the process, as upstream's.
		return fmt.Errorf("controllers stopped: %w", runErr)
	}
	<-stopped
	klog.InfoS("skiff controller-manager stopped")
	return runErr
}

// controllerOptions: the root CA from --root-ca-file or the kubeconfig;
// the signing CA from --cluster-signing-*-file.
func (o *controllerManagerOptions) controllerOptions(cfg *restclient.Config) (controllers.Options, error) {
	opts := controllers.Options{
		ClusterSigningCertFile:       o.controllers.ClusterSigningCertFile,
		ClusterSigningKeyFile:        o.controllers.ClusterSigningKeyFile,
		ServiceAccountPrivateKeyFile: o.saKeyFile,
	}
	switch {
	case o.rootCAFile != "":
		data, err := os.ReadFile(o.rootCAFile)
		if err != nil {
			return opts, fmt.Errorf("--root-ca-file: %w", err)
		}
		opts.RootCA = data
	case len(cfg.CAData) > 0:
		opts.RootCA = cfg.CAData
	case cfg.CAFile != "":
		data, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return opts, err
		}
		opts.RootCA = data
	}
	if opts.ClusterSigningCertFile == "" {
		klog.InfoS("Not signing CSRs: no --cluster-signing-cert-file and --cluster-signing-key-file")
	}
	return opts, nil
}
