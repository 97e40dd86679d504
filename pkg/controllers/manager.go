// Package controllers runs skiff's controllers: controller-runtime
// reconcilers, one package each under pkg/controllers/<name>.
package controllers

import (
	"context"
	"fmt"
	"net"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/pkg/controllers/clientbuilder"
	"github.com/skiff-dev/skiff/pkg/controllers/clusterroleaggregation"
	"github.com/skiff-dev/skiff/pkg/controllers/csrapproving"
	"github.com/skiff-dev/skiff/pkg/controllers/csrsigning"
	"github.com/skiff-dev/skiff/pkg/controllers/namespace"
	"github.com/skiff-dev/skiff/pkg/controllers/nodeipam"
	"github.com/skiff-dev/skiff/pkg/controllers/nodelifecycle"
	"github.com/skiff-dev/skiff/pkg/controllers/resourcequota"
	"github.com/skiff-dev/skiff/pkg/controllers/rootcapublisher"
	"github.com/skiff-dev/skiff/pkg/controllers/serviceaccount"
	"github.com/skiff-dev/skiff/pkg/controllers/serviceaccounttoken"
	"github.com/skiff-dev/skiff/pkg/controllers/tainteviction"
	"github.com/skiff-dev/skiff/pkg/controllers/tokencleaner"
	saauth "github.com/skiff-dev/skiff/pkg/serviceaccount"
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
	// UseServiceAccountCredentials: each controller's requests authenticate
	// as its ServiceAccount in kube-system (upstream's names), so RBAC
	// grants it its system:controller:<name> role only; otherwise all use
	// the manager's credentials.
	UseServiceAccountCredentials bool
	// ServiceAccountPrivateKeyFile signs the legacy tokens of
	// kubernetes.io/service-account-token Secrets (serviceaccounttoken);
	// empty: that controller does not run, as upstream's.
	ServiceAccountPrivateKeyFile string
	// AllocateNodeCIDRs: the node IPAM controller gives each Node its
	// spec.podCIDRs, one node CIDR of NodeCIDRMaskSizes[i] bits from each
	// ClusterCIDRs[i] (upstream's --allocate-node-cidrs, --cluster-cidr,
	// --node-cidr-mask-size*; see nodeipam.ParseConfig).
	AllocateNodeCIDRs bool
	ClusterCIDRs      []*net.IPNet
	NodeCIDRMaskSizes []int
	// NodeLifecycle is the node lifecycle controller's settings (the
	// --node-monitor-* and eviction flags); zero: upstream's defaults.
	NodeLifecycle nodelifecycle.Config
}

// clients are one controller's. Client reads through the manager's shared
// cache, whose informers use the manager's credentials (upstream's shared
// informers); its writes and the other clients use the controller's.
type clients struct {
	config *rest.Config
	client client.Client
	core   kubernetes.Interface
}

func newClients(mgr manager.Manager, creds clientbuilder.Builder, name string) (*clients, error) {
	cfg, err := creds.Config(name)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
	if err != nil {
		return nil, err
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{config: cfg, client: c, core: core}, nil
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
	creds := clientbuilder.Root(cfg)
	if opts.UseServiceAccountCredentials {
		if creds, err = clientbuilder.ServiceAccounts(cfg, metav1.NamespaceSystem); err != nil {
			return err
		}
	}
	for _, c := range controllerSetups(mgr, opts) {
		b := creds
		if rootIdentities[c.name] {
			b = clientbuilder.Root(cfg)
		}
		cc, err := newClients(mgr, b, c.name)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if err := c.setup(cc); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return mgr.Start(ctx)
}

// controllerSetup adds one controller, or two sharing an identity, to the
// manager.
type controllerSetup struct {
	// name is the identity: upstream's ServiceAccount name for it.
	name  string
	setup func(*clients) error
}

// rootIdentities run with the manager's own credentials, the name only
// telling them apart: upstream's tokens controller, which must not depend
// on the ServiceAccount tokens it may be the source of.
var rootIdentities = map[string]bool{"tokens-controller": true}

func controllerSetups(mgr manager.Manager, opts Options) []controllerSetup {
	return []controllerSetup{
		{"namespace-controller", func(c *clients) error {
			meta, err := metadata.NewForConfig(c.config)
			if err != nil {
				return err
			}
			disco, err := discovery.NewDiscoveryClientForConfig(c.config)
			if err != nil {
				return err
			}
			return (&namespace.Reconciler{Core: c.core, Metadata: meta, Discovery: disco}).SetupWithManager(mgr)
		}},
		{"service-account-controller", func(c *clients) error {
			return (&serviceaccount.Reconciler{Client: c.client}).SetupWithManager(mgr)
		}},
		{"resourcequota-controller", func(c *clients) error {
			return (&resourcequota.Reconciler{Client: c.client}).SetupWithManager(mgr)
		}},
		{"root-ca-cert-publisher", func(c *clients) error {
			if len(opts.RootCA) == 0 {
				return nil
			}
			return (&rootcapublisher.Reconciler{Client: c.client, RootCA: opts.RootCA}).SetupWithManager(mgr)
		}},
		{"certificate-controller", func(c *clients) error {
			if opts.ClusterSigningCertFile != "" && opts.ClusterSigningKeyFile != "" {
				signer := &csrsigning.Reconciler{Client: c.client, Core: c.core, Duration: opts.ClusterSigningDuration,
					CA: csrsigning.CA{CertFile: opts.ClusterSigningCertFile, KeyFile: opts.ClusterSigningKeyFile}}
				if err := signer.SetupWithManager(mgr); err != nil {
					return err
				}
			}
			return (&csrapproving.Reconciler{Client: c.client, Core: c.core}).SetupWithManager(mgr)
		}},
		{"node-controller", func(c *clients) error {
			// Upstream runs the node lifecycle and taint-eviction
			// controllers as node-controller too.
			lifecycle := opts.NodeLifecycle
			if lifecycle == (nodelifecycle.Config{}) {
				lifecycle = nodelifecycle.DefaultConfig()
			}
			if err := (&nodelifecycle.Controller{Client: c.client, Core: c.core, Config: lifecycle}).SetupWithManager(mgr); err != nil {
				return err
			}
			if err := (&tainteviction.Reconciler{Client: c.client, Core: c.core}).SetupWithManager(mgr); err != nil {
				return err
			}
			if !opts.AllocateNodeCIDRs {
				return nil
			}
			return (&nodeipam.Reconciler{Client: c.client, Core: c.core,
				Config: nodeipam.Config{ClusterCIDRs: opts.ClusterCIDRs, NodeMaskSizes: opts.NodeCIDRMaskSizes}}).SetupWithManager(mgr)
		}},
		{"token-cleaner", func(c *clients) error {
			return (&tokencleaner.Reconciler{Client: c.client}).SetupWithManager(mgr)
		}},
		{"clusterrole-aggregation-controller", func(c *clients) error {
			return (&clusterroleaggregation.Reconciler{Client: c.client}).SetupWithManager(mgr)
		}},
		{"tokens-controller", func(c *clients) error {
			if opts.ServiceAccountPrivateKeyFile == "" {
				klog.InfoS("Controller is disabled because there is no private key", "controller", "serviceaccount-token-controller")
				return nil
			}
			key, err := saauth.LoadSigningKey(opts.ServiceAccountPrivateKeyFile)
			if err != nil {
				return fmt.Errorf("error reading key for service account token controller: %w", err)
			}
			gen, err := saauth.NewGenerator(saauth.LegacyIssuer, key)
			if err != nil {
				return fmt.Errorf("failed to build token generator: %w", err)
			}
			return (&serviceaccounttoken.Reconciler{Client: c.client, APIReader: mgr.GetAPIReader(),
				Generator: gen, RootCA: opts.RootCA}).SetupWithManager(mgr)
		}},
	}
}
