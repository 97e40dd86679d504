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
}

func newControllerOptions() *controllerOptions {
	return &controllerOptions{
		LeaderElection:         controllers.DefaultLeaderElection(),
		ClusterSigningDuration: csrsigning.DefaultDuration,
	}
}

// addFlags registers the flags; signingDefault explains what empty
// --cluster-signing-*-file flags mean.
func (c *controllerOptions) addFlags(fs *pflag.FlagSet, signingDefault string) {
	componentbaseoptions.BindLeaderElectionFlags(&c.LeaderElection, fs)
	fs.StringVar(&c.ClusterSigningCertFile, "cluster-signing-cert-file", c.ClusterSigningCertFile, "Filename containing a PEM-encoded X509 CA certificate used to issue cluster-scoped certificates (the kubernetes.io/kube-apiserver-client, kube-apiserver-client-kubelet and kubelet-serving signers). "+signingDefault)
	fs.StringVar(&c.ClusterSigningKeyFile, "cluster-signing-key-file", c.ClusterSigningKeyFile, "Filename containing a PEM-encoded RSA or ECDSA private key used to sign cluster-scoped certificates. "+signingDefault)
	fs.BoolVar(&c.UseServiceAccountCredentials, "use-service-account-credentials", c.UseServiceAccountCredentials, "If true, use individual service account credentials for each controller.")
	fs.DurationVar(&c.ClusterSigningDuration, "cluster-signing-duration", c.ClusterSigningDuration, "The max length of duration signed certificates will be given. Individual CSRs may request shorter certs by setting spec.expirationSeconds.")
}

func (c *controllerOptions) validate() []error {
	errs := controllers.ValidateLeaderElection(c.LeaderElection)
	if (c.ClusterSigningCertFile == "") != (c.ClusterSigningKeyFile == "") {
		errs = append(errs, fmt.Errorf("--cluster-signing-cert-file and --cluster-signing-key-file must be given together"))
	}
	if c.ClusterSigningDuration <= 0 {
		errs = append(errs, fmt.Errorf("--cluster-signing-duration must be positive"))
	}
	return errs
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
