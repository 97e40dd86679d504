// Package apiserver runs skiff's Kubernetes API server: the k8s.io/api types
// served by k8s.io/apiserver's generic registry on etcd, chained in front of
// the apiextensions-apiserver. The jobs it composes have rooms of their own:
// flags (options), authentication, authorization, the admission chain,
// storage, and the start-up hooks (pkg/controlplane).
package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/apiserver/admission"
	"github.com/skiff-dev/skiff/pkg/apiserver/authentication"
	"github.com/skiff-dev/skiff/pkg/apiserver/authorization"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/apiserver/storage"
	nodeauthz "github.com/skiff-dev/skiff/pkg/authorizer/node"
	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
	"github.com/skiff-dev/skiff/pkg/controlplane"
	"github.com/skiff-dev/skiff/pkg/etcd"
	generatedopenapi "github.com/skiff-dev/skiff/pkg/generated/openapi"
	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/pkg/registry/core"
	"github.com/skiff-dev/skiff/pkg/registry/core/service"
	"github.com/skiff-dev/skiff/pkg/version"
)

// Run serves the API until ctx ends, then shuts down gracefully: in-flight
// requests finish, then the embedded etcd closes. ready is called once
// /readyz first succeeds, with the server's privileged loopback client
// config (for the components `skiff server` runs in the same process).
func Run(ctx context.Context, o *options.Options, ready func(loopback *restclient.Config)) error {
	if errs := o.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options: %v", errs)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return err
	}
	ca, serving, err := ensurePKI(o)
	if err != nil {
		return err
	}
	if err := ensureAdminKubeconfig(o, ca); err != nil {
		return err
	}
	ca.ExpiresSoon()

	transport := o.EtcdTransport()
	var embedded *etcd.Embedded
	if len(transport.ServerList) == 0 {
		if embedded, transport, err = startEmbeddedEtcd(o); err != nil {
			return err
		}
	}

	server, err := newServer(o, ca, serving, transport)
	if err != nil {
		if embedded != nil {
			embedded.Close()
		}
		return err
	}
	prepared := server.PrepareRun()
	go announceWhenReady(ctx, server, ready)
	go renewCertificates(ctx, o, embedded != nil)
	if embedded == nil {
		return prepared.RunWithContext(ctx)
	}
	return runWithEmbeddedEtcd(ctx, embedded, prepared.RunWithContext)
}

// newServer builds the server chain: configuration (serving,
// authentication, authorization, audit, admission, OpenAPI, storage), then
// the servers, the APIs and the control plane's hooks.
func newServer(o *options.Options, ca *pki.CA, serving pki.Files, etcdTransport storagebackend.TransportConfig) (*genericapiserver.GenericAPIServer, error) {
	cfg := genericapiserver.NewRecommendedConfig(apis.Codecs)
	cfg.EffectiveVersion = version.NewEffective()
	builtin := builtinGroups()
	// Upstream's: watches and the subresources that stream or proxy have
	// no request timeout.
	cfg.LongRunningFunc = genericfilters.BasicLongRunningRequestCheck(
		sets.NewString("watch", "proxy"), sets.NewString("attach", "exec", "proxy", "log", "portforward"))
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
	// The token authenticator, the authorizer and the admission plugins
	// read through one loopback informer factory, started once the server
	// runs.
	loopbackClient, err := kubernetes.NewForConfig(cfg.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	sharedInformers := informers.NewSharedInformerFactory(loopbackClient, 0)
	serviceAccounts, err := authentication.NewServiceAccounts(o, loopbackClient, sharedInformers)
	if err != nil {
		return nil, err
	}
	cfg.Authentication.APIAudiences = serviceAccounts.APIAudiences()
	cfg.Authentication.Authenticator = authentication.New(clientCA,
		authentication.TokenAuthenticators(serviceAccounts, o.EnableBootstrapTokenAuth, sharedInformers)...)
	rbac := authorization.NewRBAC(sharedInformers)
	nodes, _, err := nodeauthz.New(sharedInformers, bootstrap.NodeRules())
	if err != nil {
		return nil, err
	}
	cfg.Authorization.Authorizer, cfg.RuleResolver, err = authorization.New(nodes, rbac.Authorizer())
	if err != nil {
		return nil, err
	}
	genericapiserver.AuthorizeClientBearerToken(cfg.LoopbackClientConfig, &cfg.Authentication, &cfg.Authorization)
	rbac.SetServerAuthorizer(cfg.Authorization.Authorizer, cfg.RuleResolver)

	if err := o.Audit.ApplyTo(&cfg.Config); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	cfg.AdmissionControl, err = admission.New(loopbackClient, sharedInformers, cfg.Authorization.Authorizer, cfg.DrainedNotify())
	if err != nil {
		return nil, err
	}

	namer := openapinamer.NewDefinitionNamer(apis.ExternalScheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "Kubernetes"
	cfg.OpenAPIConfig.Info.Version = version.GitVersion()
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "Kubernetes"
	cfg.OpenAPIV3Config.Info.Version = version.GitVersion()

	if err := storage.Apply(&cfg.Config, etcdTransport); err != nil {
		return nil, err
	}

	// Chained behind skiff's server: apiextensions-apiserver (apiextensions.go).
	server, err := createServerChain(cfg, etcdTransport)
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
	conns := core.Connections{
		Kubelet:        o.KubeletConfig(),
		EndpointSlices: service.EndpointSlicesFromLister(sharedInformers.Discovery().V1().EndpointSlices().Lister()),
		Authorizer:     cfg.Authorization.Authorizer,
	}
	if err := installAPIs(server, cfg.RESTOptionsGetter, allocators, conns, serviceAccounts, rbac); err != nil {
		return nil, err
	}
	if err := serviceAccounts.Install(server, cfg.Authentication.Authenticator); err != nil {
		return nil, err
	}
	if err := rbac.Install(server); err != nil {
		return nil, err
	}
	server.AddPostStartHookOrDie("skiff-admission-informers", func(hookCtx genericapiserver.PostStartHookContext) error {
		sharedInformers.Start(hookCtx.Done())
		return nil
	})

	serviceIP, err := o.ServiceIP()
	if err != nil {
		return nil, err
	}
	advertise, err := o.AdvertiseIP()
	if err != nil {
		return nil, err
	}
	err = controlplane.Install(server, controlplane.Config{
		ClientCAFile:         ca.CertFile,
		ServiceIP:            serviceIP,
		AdvertiseIP:          advertise,
		SecurePort:           o.SecurePort,
		Allocators:           allocators,
		AuthorizerSeesPolicy: rbac.WaitForBootstrapPolicy,
	})
	return server, err
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
