// Package controllers runs skiff's controllers: controller-runtime
// reconcilers, one package each under pkg/controllers/<name>.
package controllers

import (
	"context"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/pkg/controllers/clusterroleaggregation"
	"github.com/skiff-dev/skiff/pkg/controllers/csrapproving"
	"github.com/skiff-dev/skiff/pkg/controllers/csrsigning"
	"github.com/skiff-dev/skiff/pkg/controllers/namespace"
	"github.com/skiff-dev/skiff/pkg/controllers/resourcequota"
	"github.com/skiff-dev/skiff/pkg/controllers/rootcapublisher"
	"github.com/skiff-dev/skiff/pkg/controllers/serviceaccount"
	"github.com/skiff-dev/skiff/pkg/controllers/tokencleaner"
)

// Options are what the controllers need besides the API.
type Options struct {
	// RootCA is the cluster CA bundle (PEM) published in every namespace as
	// the kube-root-ca.crt ConfigMap; empty: not published.
	RootCA []byte
	// ClusterSigningCertFile and ClusterSigningKeyFile are the CA that
	// signs approved CSRs (csrsigning); empty: CSRs are not signed.
	ClusterSigningCertFile, ClusterSigningKeyFile string
	// ClusterSigningDuration is the longest lifetime of a signed
	// certificate; 0: a year.
	ClusterSigningDuration time.Duration
}

// Run starts every controller against the API at cfg and blocks until ctx
// ends. Health and metrics are served by the process hosting it.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	// controller-runtime logs through klog, like the rest of skiff.
	ctrl.SetLogger(klog.NewKlogr())
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 clientgoscheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Every leadership term builds the controllers anew under the same
		// names; only one term's controllers exist at a time, so the
		// process-wide uniqueness check would only refuse the second term.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return err
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	if err := (&namespace.Reconciler{Core: core, Metadata: meta, Discovery: disco}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&serviceaccount.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&resourcequota.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if len(opts.RootCA) > 0 {
		if err := (&rootcapublisher.Reconciler{Client: mgr.GetClient(), RootCA: opts.RootCA}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if opts.ClusterSigningCertFile != "" && opts.ClusterSigningKeyFile != "" {
		signer := &csrsigning.Reconciler{Client: mgr.GetClient(), Core: core, Duration: opts.ClusterSigningDuration,
			CA: csrsigning.CA{CertFile: opts.ClusterSigningCertFile, KeyFile: opts.ClusterSigningKeyFile}}
		if err := signer.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if err := (&csrapproving.Reconciler{Client: mgr.GetClient(), Core: core}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&tokencleaner.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&clusterroleaggregation.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	return mgr.Start(ctx)
}
