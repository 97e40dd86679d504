package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	clientevents "k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/apiserver/kubernetesservice"
	"github.com/skiff-dev/skiff/pkg/controlplane/apiserveridentity"
	"github.com/skiff-dev/skiff/pkg/etcd"
	generatedopenapi "github.com/skiff-dev/skiff/pkg/generated/openapi"
	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/pkg/registry/core/service"
	"github.com/skiff-dev/skiff/pkg/registry/events"
	"github.com/skiff-dev/skiff/pkg/version"
)

// systemNamespacesInterval is how often missing system namespaces are
// created again (upstream's interval).
const systemNamespacesInterval = time.Minute

// SystemNamespaces exist from the first start on.
var SystemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// protobuf is how objects are stored in etcd, as upstream.
const protobuf = runtime.ContentTypeProtobuf

// Paths of the files the server keeps in its data dir.
func (o *Options) PKIDir() string          { return filepath.Join(o.DataDir, "pki") }
func (o *Options) etcdDir() string         { return filepath.Join(o.DataDir, "etcd") }
func (o *Options) AdminKubeconfig() string { return filepath.Join(o.DataDir, "admin.kubeconfig") }

// Run serves the API until ctx ends, then shuts down gracefully: in-flight
// requests finish, then the embedded etcd closes. ready is called once
// /readyz first succeeds, with the server's privileged loopback client
// config (for the components `skiff server` runs in the same process).
func Run(ctx context.Context, o *Options, ready func(loopback *restclient.Config)) error {
	if errs := o.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options: %v", errs)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return err
	}
	ca, serving, err := o.ensurePKI()
	if err != nil {
		return err
	}
	if err := o.ensureAdminKubeconfig(ca); err != nil {
		return err
	}
	ca.ExpiresSoon()

	transport := o.flagTransport()
	var embedded *etcd.Embedded
	if len(transport.ServerList) == 0 {
		if embedded, transport, err = o.startEmbeddedEtcd(); err != nil {
			return err
		}
	}

	server, err := o.newServer(ca, serving, transport)
	if err != nil {
		if embedded != nil {
			embedded.Close()
		}
		return err
	}
	prepared := server.PrepareRun()
	go announceWhenReady(ctx, server, ready)
	go o.renewCertificates(ctx, embedded != nil)
	if embedded == nil {
		return prepared.RunWithContext(ctx)
	}
	return runWithEmbeddedEtcd(ctx, embedded, prepared.RunWithContext)
}

func (o *Options) ensurePKI() (*pki.CA, pki.Files, error) {
	ca, err := pki.EnsureCA(o.PKIDir())
	if err != nil {
		return nil, pki.Files{}, fmt.Errorf("certificate authority: %w", err)
	}
	serving, err := o.ensureServingCert(ca)
	return ca, serving, err
}

// ensureServingCert keeps or renews the serving certificate for every name
// the server is reached by.
func (o *Options) ensureServingCert(ca *pki.CA) (pki.Files, error) {
	serviceIP, err := o.serviceIP()
	if err != nil {
		return pki.Files{}, err
	}
	hosts := []string{"localhost", "127.0.0.1", serviceIP.String(),
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if hostname, err := os.Hostname(); err == nil {
		hosts = append(hosts, hostname)
	}
	if ip := net.ParseIP(o.BindAddress); ip != nil && !ip.IsUnspecified() {
		hosts = append(hosts, ip.String())
	}
	if ip, err := o.advertiseAddress(); err == nil {
		hosts = append(hosts, ip.String())
	}
	hosts = append(hosts, o.TLSSANs...)
	serving, err := ca.EnsureServingCert(o.PKIDir(), "apiserver", hosts)
	if err != nil {
		return pki.Files{}, fmt.Errorf("serving certificate: %w", err)
	}
	return serving, nil
}

// ensureAdminKubeconfig keeps the admin kubeconfig of earlier starts unless
// it points at another address or its certificate needs renewal.
func (o *Options) ensureAdminKubeconfig(ca *pki.CA) error {
	_, err := ca.EnsureKubeconfig(o.AdminKubeconfig(), o.ServerURL(), "kubernetes-admin", []string{"system:masters"})
	return err
}

func (o *Options) newServer(ca *pki.CA, serving pki.Files, etcdTransport storagebackend.TransportConfig) (*genericapiserver.GenericAPIServer, error) {
	cfg := genericapiserver.NewRecommendedConfig(apis.Codecs)
	cfg.EffectiveVersion = version.NewEffective()
	builtin := builtinGroups()
	cfg.BuildHandlerChainFunc = func(api http.Handler, c *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(withBadInputGuard(api, builtin), c) // badinput.go
	}

	secure := genericoptions.NewSecureServingOptions().WithLoopback()
	secure.BindAddress = net.ParseIP(o.BindAddress)
	secure.BindPort = o.SecurePort
	secure.ServerCert.CertKey = genericoptions.CertKey{CertFile: serving.CertFile, KeyFile: serving.KeyFile}
	if err := secure.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}

	clientCA, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", ca.CertFile)
	if err != nil {
		return nil, err
	}
	if err := cfg.Authentication.ApplyClientCert(clientCA, cfg.SecureServing); err != nil {
		return nil, err
	}
	// The token authenticator and the admission plugins read through one
	// loopback informer factory, started once the server runs.
	loopbackClient, sharedInformers, err := loopbackInformers(cfg.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	serviceAccounts, err := o.newServiceAccounts(loopbackClient, sharedInformers)
	if err != nil {
		return nil, err
	}
	cfg.Authentication.APIAudiences = serviceAccounts.apiAudiences
	cfg.Authentication.Authenticator = newAuthenticator(clientCA, o.tokenAuthenticators(serviceAccounts, sharedInformers)...)
	rbac := newRBAC(sharedInformers)
	cfg.Authorization.Authorizer, cfg.RuleResolver, err = newAuthorizer(rbac.authorizer)
	if err != nil {
		return nil, err
	}
	genericapiserver.AuthorizeClientBearerToken(cfg.LoopbackClientConfig, &cfg.Authentication, &cfg.Authorization)
	rbac.setServerAuthorizer(cfg.Authorization.Authorizer, cfg.RuleResolver)

	if err := o.Audit.ApplyTo(&cfg.Config); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	admissionChain, err := newAdmission(loopbackClient, sharedInformers, cfg.Authorization.Authorizer, cfg.DrainedNotify())
	if err != nil {
		return nil, err
	}
	cfg.AdmissionControl = admissionChain

	namer := openapinamer.NewDefinitionNamer(apis.ExternalScheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "Kubernetes"
	cfg.OpenAPIConfig.Info.Version = version.GitVersion()
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "Kubernetes"
	cfg.OpenAPIV3Config.Info.Version = version.GitVersion()

	if err := o.applyStorage(&cfg.Config, etcdTransport); err != nil {
		return nil, err
	}

	// Chained behind skiff's server: apiextensions-apiserver (apiextensions.go).
	server, err := o.createServerChain(cfg, etcdTransport)
	if err != nil {
		return nil, err
	}
	_, serviceCIDR, _ := net.ParseCIDR(o.ServiceClusterIPRange)
	nodePorts, _ := utilnet.ParsePortRange(o.ServiceNodePortRange)
	allocators, err := service.NewAllocators(cfg.RESTOptionsGetter, serviceCIDR, *nodePorts)
	if err != nil {
		return nil, err
	}
	server.RegisterDestroyFunc(allocators.Destroy)
	if err := installAPIs(server, cfg.RESTOptionsGetter, allocators, serviceAccounts, rbac); err != nil {
		return nil, err
	}
	AddSystemPriorityClassesHook(server)
	addAuthenticationInfoHook(server, ca.CertFile)
	if err := serviceAccounts.install(server, cfg.Authentication.Authenticator); err != nil {
		return nil, err
	}
	if err := rbac.install(server); err != nil {
		return nil, err
	}
	server.AddPostStartHookOrDie("skiff-repair-service-allocations", func(hookCtx genericapiserver.PostStartHookContext) error {
		return repairServiceAllocations(hookCtx, hookCtx.LoopbackClientConfig, allocators)
	})
	server.AddPostStartHookOrDie("skiff-admission-informers", func(hookCtx genericapiserver.PostStartHookContext) error {
		sharedInformers.Start(hookCtx.Done())
		return nil
	})
	serviceIP, err := o.serviceIP()
	if err != nil {
		return nil, err
	}
	advertise, err := o.advertiseAddress()
	if err != nil {
		return nil, err
	}
	var announcer *kubernetesservice.Reconciler
	server.AddPostStartHookOrDie("skiff-kubernetes-service", func(hookCtx genericapiserver.PostStartHookContext) error {
		// It writes the kubernetes Endpoints on purpose: no deprecation
		// warning in the log every ten seconds.
		quiet := restclient.CopyConfig(hookCtx.LoopbackClientConfig)
		quiet.WarningHandler = restclient.NoWarnings{}
		client, err := kubernetes.NewForConfig(quiet)
		if err != nil {
			return err
		}
		announcer = &kubernetesservice.Reconciler{Client: client, ServiceIP: serviceIP.String(), Address: advertise, Port: o.SecurePort}
		go announcer.Run(hookCtx)
		return nil
	})
	apiserveridentity.Install(server)
	server.AddPreShutdownHookOrDie("skiff-withdraw-endpoint", func() error {
		if announcer == nil {
			return nil
		}
		return announcer.Withdraw()
	})
	server.AddPostStartHookOrDie("skiff-system-namespaces", func(hookCtx genericapiserver.PostStartHookContext) error {
		if err := ensureNamespaces(hookCtx, hookCtx.LoopbackClientConfig); err != nil {
			return err
		}
		// As upstream's system namespaces controller: a deleted
		// kube-node-lease (the one deletable system namespace) comes back.
		go wait.Until(func() {
			if err := ensureNamespaces(hookCtx, hookCtx.LoopbackClientConfig); err != nil && hookCtx.Err() == nil {
				klog.ErrorS(err, "Ensuring the system namespaces")
			}
		}, systemNamespacesInterval, hookCtx.Done())
		return nil
	})
	return server, nil
}

// applyStorage points the config's REST storage at etcd, storing protobuf
// under upstream's key layout (/registry/pods/<ns>/<name>, ...).
func (o *Options) applyStorage(cfg *genericapiserver.Config, etcdTransport storagebackend.TransportConfig) error {
	backend := etcdBackendConfig(etcdTransport, cfg.StorageObjectCountTracker)
	etcdOptions := genericoptions.NewEtcdOptions(backend)
	etcdOptions.DefaultStorageMediaType = protobuf

	encoding := serverstorage.NewDefaultResourceEncodingConfigForEffectiveVersion(apis.Scheme, cfg.EffectiveVersion)
	// events.k8s.io Events are core Events, stored as core/v1.
	encoding.SetResourceEncoding(events.Resource, corev1.SchemeGroupVersion,
		schema.GroupVersion{Version: runtime.APIVersionInternal})
	enabled := serverstorage.NewResourceConfig()
	for _, gv := range apis.Scheme.PreferredVersionAllGroups() {
		enabled.EnableVersions(gv)
	}
	factory := serverstorage.NewDefaultStorageFactory(backend.ForResource(schema.GroupResource{}).Config, protobuf,
		apis.Codecs, encoding, enabled, upstreamKeyPrefixes)
	factory.AddCohabitatingResources(schema.GroupResource{Resource: "events"}, schema.GroupResource{Group: eventsv1.GroupName, Resource: "events"})
	if err := etcdOptions.ApplyWithStorageFactoryTo(factory, cfg); err != nil {
		return err
	}
	cfg.RESTOptionsGetter = guardStorage(cfg.RESTOptionsGetter) // badinput.go
	return nil
}

// upstreamKeyPrefixes are kube-apiserver's etcd key prefixes that differ
// from the resource name.
var upstreamKeyPrefixes = map[schema.GroupResource]string{
	{Resource: "replicationcontrollers"}:                     "controllers",
	{Resource: "endpoints"}:                                  "services/endpoints",
	{Resource: "nodes"}:                                      "minions",
	{Resource: "services"}:                                   "services/specs",
	{Group: "networking.k8s.io", Resource: "ingresses"}:      "ingress",
	{Group: "networking.k8s.io", Resource: "ingressclasses"}: "ingressclasses",
}

// ensureNamespaces creates the system namespaces, retrying until the API
// accepts writes.
func ensureNamespaces(ctx context.Context, loopback *restclient.Config) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range SystemNamespaces {
			// Written as upstream's: field manager kube-apiserver.
			_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{FieldManager: "kube-apiserver"})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				klog.V(2).InfoS("Creating system namespace failed, will retry", "namespace", name, "err", err)
				return false, nil
			}
		}
		return true, nil
	})
}

// repairServiceAllocations makes the ClusterIP and NodePort bitmaps agree
// with the Services once before the server is ready (so that allocations of
// objects written before a crash stay taken), then every
// service.RepairInterval while the server runs.
func repairServiceAllocations(ctx context.Context, loopback *restclient.Config, allocators *service.Allocators) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	broadcaster := clientevents.NewBroadcaster(&clientevents.EventSinkImpl{Interface: client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	repairer := &service.Repairer{
		Allocators: allocators,
		List: func(ctx context.Context) ([]corev1.Service, error) {
			list, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			return list.Items, nil
		},
		IPEvents:   broadcaster.NewRecorder(apis.Scheme, "ipallocator-repair-controller"),
		PortEvents: broadcaster.NewRecorder(apis.Scheme, "portallocator-repair-controller"),
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := repairer.RunOnce(ctx); err != nil {
			klog.V(2).InfoS("Repairing service allocations failed, will retry", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	go repairer.Run(ctx, service.RepairInterval)
	return nil
}

// announceWhenReady calls ready once the server's own /readyz succeeds.
func announceWhenReady(ctx context.Context, server *genericapiserver.GenericAPIServer, ready func(*restclient.Config)) {
	client, err := kubernetes.NewForConfig(server.LoopbackClientConfig)
	if err != nil {
		klog.ErrorS(err, "Cannot build the loopback client to watch readiness")
		return
	}
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	if err == nil && ready != nil {
		ready(restclient.CopyConfig(server.LoopbackClientConfig))
	}
}
