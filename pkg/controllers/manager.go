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
	// Controllers is kube-controller-manager's --controllers: "*" (all
	// but those disabled by default), "name" enables, "-name" disables;
	// empty: "*".
	Controllers []string
	// ConcurrentSyncs are the --concurrent-*-syncs flags' values by
	// controller name (Workers gives a controller its own).
	ConcurrentSyncs map[string]int
	// IntFlags are the controllers' other int flags (Descriptor.Flags)
	// by flag name (Int gives one).
	IntFlags map[string]int
	// DataDir is skiff server's --data-dir: the local-path provisioner's
	// volumes go under <DataDir>/storage (k3s's
	// <data-dir>/storage); empty: under localpath.DefaultPath().
	DataDir string
}

// Clients are one controller identity's. Client reads through the
// manager's shared cache, whose informers use the manager's credentials
// (upstream's shared informers); its writes and the other clients use the
// controller's.
type Clients struct {
	Config *rest.Config
	Client client.Client
	Core   kubernetes.Interface
}

func newClients(mgr manager.Manager, creds clientbuilder.Builder, name string) (*Clients, error) {
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
	return &Clients{Config: cfg, Client: c, Core: core}, nil
}

// Run starts the enabled controllers against the API at cfg and blocks
// until ctx ends. Health and metrics are served by the process hosting it.
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
	// One set of clients per identity, shared by its controllers.
	byIdentity := map[string]*Clients{}
	for _, d := range Descriptors() {
		if !opts.Enabled(d) {
			klog.InfoS("Warning: controller is disabled", "controller", d.Name)
			continue
		}
		cc := byIdentity[d.Identity]
		if cc == nil {
			b := creds
			if rootIdentities[d.Identity] {
				b = clientbuilder.Root(cfg)
			}
			if cc, err = newClients(mgr, b, d.Identity); err != nil {
				return fmt.Errorf("%s: %w", d.Name, err)
			}
			byIdentity[d.Identity] = cc
		}
		if err := d.Setup(mgr, cc, opts); err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	return mgr.Start(ctx)
}

// rootIdentities run with the manager's own credentials, the name only
// telling them apart: upstream's tokens controller, which must not depend
// on the ServiceAccount tokens it may be the source of.
var rootIdentities = map[string]bool{"tokens-controller": true}

// The controllers that were here before the descriptors: each file of a
// newer controller registers its own (register).
func init() {
	register(Descriptor{Name: "namespace-controller", Identity: "namespace-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			meta, err := metadata.NewForConfig(c.Config)
			if err != nil {
				return err
			}
			disco, err := discovery.NewDiscoveryClientForConfig(c.Config)
			if err != nil {
				return err
			}
			return (&namespace.Reconciler{Core: c.Core, Metadata: meta, Discovery: disco}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "serviceaccount-controller", Identity: "service-account-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&serviceaccount.Reconciler{Client: c.Client}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "resourcequota-controller", Identity: "resourcequota-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&resourcequota.Reconciler{Client: c.Client}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "root-ca-certificate-publisher-controller", Identity: "root-ca-cert-publisher",
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			if len(opts.RootCA) == 0 {
				return nil
			}
			return (&rootcapublisher.Reconciler{Client: c.Client, RootCA: opts.RootCA}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "certificatesigningrequest-signing-controller", Identity: "certificate-controller",
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			if opts.ClusterSigningCertFile == "" || opts.ClusterSigningKeyFile == "" {
				return nil
			}
			return (&csrsigning.Reconciler{Client: c.Client, Core: c.Core, Duration: opts.ClusterSigningDuration,
				CA: csrsigning.CA{CertFile: opts.ClusterSigningCertFile, KeyFile: opts.ClusterSigningKeyFile}}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "certificatesigningrequest-approving-controller", Identity: "certificate-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&csrapproving.Reconciler{Client: c.Client, Core: c.Core,
				Recorder: eventRecorder(mgr, c.Core, "certificate-controller")}).SetupWithManager(mgr)
		}})
	// Upstream runs the node lifecycle, taint-eviction and node IPAM
	// controllers as node-controller.
	register(Descriptor{Name: "node-lifecycle-controller", Identity: "node-controller",
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			lifecycle := opts.NodeLifecycle
			if lifecycle == (nodelifecycle.Config{}) {
				lifecycle = nodelifecycle.DefaultConfig()
			}
			return (&nodelifecycle.Controller{Client: c.Client, Core: c.Core, Config: lifecycle}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "taint-eviction-controller", Identity: "node-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&tainteviction.Reconciler{Client: c.Client, Core: c.Core}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "node-ipam-controller", Identity: "node-controller",
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			if !opts.AllocateNodeCIDRs {
				return nil
			}
			return (&nodeipam.Reconciler{Client: c.Client, Core: c.Core,
				Config: nodeipam.Config{ClusterCIDRs: opts.ClusterCIDRs, NodeMaskSizes: opts.NodeCIDRMaskSizes}}).SetupWithManager(mgr)
		}})
	// Upstream's token cleaner is off by default; skiff's bootstrap token
	// authentication is on by default, so its cleaner is too.
	register(Descriptor{Name: "token-cleaner-controller", Identity: "token-cleaner",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&tokencleaner.Reconciler{Client: c.Client}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "clusterrole-aggregation-controller", Identity: "clusterrole-aggregation-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&clusterroleaggregation.Reconciler{Client: c.Client}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: "serviceaccount-token-controller", Identity: "tokens-controller",
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
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
			return (&serviceaccounttoken.Reconciler{Client: c.Client, APIReader: mgr.GetAPIReader(),
				Generator: gen, RootCA: opts.RootCA}).SetupWithManager(mgr)
		}})
}
