package apiserver

// CustomResourceDefinitions (apiextensions.k8s.io/v1) and the custom
// resources they define are served by k8s.io/apiextensions-apiserver, chained
// behind skiff's server as its delegate, the way kube-apiserver builds its
// chain (cmd/kube-apiserver/app/server.go CreateServerChain,
// pkg/controlplane/apiserver/apiextensions.go CreateAPIExtensionsConfig).
// Only skiff's server listens: it authenticates, authorizes and audits every
// request, then whatever it does not route itself (/apis/apiextensions.k8s.io,
// /apis/<crd group>/...) falls through to the delegate's unprotected handler.
// Both servers share etcd (CRDs under
// /registry/apiextensions.k8s.io/customresourcedefinitions as upstream stores
// them, v1beta1 JSON; custom resources under /registry/<group>/<plural>),
// authentication and authorization, the admission chain, the loopback client,
// the OpenAPI configuration and the aggregated-discovery manager.
//
// Upstream's kube-aggregator, last in its chain, also lists the
// apiextensions and CRD groups in the unaggregated /apis and merges every
// server's OpenAPI. skiff has no aggregator, so its server does both here:
// crdGroups keeps /apis current and publishCRDOpenAPI feeds /openapi/v2 and
// /openapi/v3.

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	restful "github.com/emicklei/go-restful/v3"
	corev1 "k8s.io/api/core/v1"
	apiextensionshelpers "k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	apiextensionslisters "k8s.io/apiextensions-apiserver/pkg/client/listers/apiextensions/v1"
	openapicontroller "k8s.io/apiextensions-apiserver/pkg/controller/openapi"
	openapiv3controller "k8s.io/apiextensions-apiserver/pkg/controller/openapiv3"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured/unstructuredscheme"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"k8s.io/apimachinery/pkg/runtime/serializer/recognizer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	"k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/features"
	genericregistry "k8s.io/apiserver/pkg/registry/generic"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/apiserver/pkg/util/notfoundhandler"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kube-openapi/pkg/aggregator"
	builder2 "k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-dev/skiff/pkg/apis"
	skiffstorage "github.com/skiff-dev/skiff/pkg/apiserver/storage"
)

// createServerChain builds the apiextensions-apiserver from a copy of cfg,
// then skiff's server from cfg with the former as its delegate. cfg must be
// complete but for Complete(): authentication, authorization, admission,
// OpenAPI and storage applied.
func createServerChain(cfg *genericapiserver.RecommendedConfig, etcdTransport storagebackend.TransportConfig) (*genericapiserver.GenericAPIServer, error) {
	// Shared by both servers, so set before the copy, as upstream sets them
	// on the generic config every server of its chain copies: the manager of
	// the aggregated /apis (the apiextensions DiscoveryController writes the
	// CRD groups into it; skiff's server serves it) and an OpenAPI namer that
	// knows both schemes (the GVK extensions SSA and kubectl rely on).
	cfg.AggregatedDiscoveryGroupManager = aggregated.NewResourceManager("apis")
	namer := openapinamer.NewDefinitionNamer(apis.ExternalScheme, apiextensionsapiserver.Scheme)
	if cfg.OpenAPIConfig != nil {
		cfg.OpenAPIConfig.GetDefinitionName = namer.GetDefinitionName
	}
	if cfg.OpenAPIV3Config != nil {
		cfg.OpenAPIV3Config.GetDefinitionName = namer.GetDefinitionName
	}

	extensionsConfig, err := apiExtensionsConfig(cfg, etcdTransport)
	if err != nil {
		return nil, fmt.Errorf("apiextensions config: %w", err)
	}
	// Last in the chain, as upstream: 404 for unknown paths, a 503 Status
	// while a server has not installed its paths yet (until the CRD
	// informer has synced).
	notFound := notfoundhandler.New(cfg.Serializer, genericapifilters.NoMuxAndDiscoveryIncompleteKey)
	crds, err := extensionsConfig.Complete().New(genericapiserver.NewEmptyDelegateWithCustomHandler(notFound))
	if err != nil {
		return nil, fmt.Errorf("apiextensions server: %w", err)
	}

	server, err := cfg.Complete().New("skiff-apiserver", crds.GenericAPIServer)
	if err != nil {
		return nil, err
	}

	crdInformer := crds.Informers.Apiextensions().V1().CustomResourceDefinitions()
	groups := &crdGroups{root: server.DiscoveryGroupManager, crds: crdInformer.Lister(), builtin: builtinGroups()}
	server.AddPostStartHookOrDie("skiff-apiextensions-discovery", func(hookCtx genericapiserver.PostStartHookContext) error {
		groups.root.AddGroup(metav1.APIGroup{
			Name:             apiextensionsv1.GroupName,
			Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: apiextensionsv1.SchemeGroupVersion.String(), Version: "v1"}},
			PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: apiextensionsv1.SchemeGroupVersion.String(), Version: "v1"},
		})
		_, err := crdInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { groups.sync() },
			UpdateFunc: func(any, any) { groups.sync() },
			DeleteFunc: func(any) { groups.sync() },
		})
		return err
	})
	server.AddPostStartHookOrDie("skiff-apiextensions-openapi", func(hookCtx genericapiserver.PostStartHookContext) error {
		return publishCRDOpenAPI(hookCtx, server, crds, cfg.OpenAPIConfig, cfg.OpenAPIV3Config)
	})
	return server, nil
}

// apiExtensionsConfig is CreateAPIExtensionsConfig: a shallow copy of skiff's
// generic config (most of it is meant to be shared) with the apiextensions
// storage, resource config and post-start hooks of its own.
func apiExtensionsConfig(outer *genericapiserver.RecommendedConfig, etcdTransport storagebackend.TransportConfig) (*apiextensionsapiserver.Config, error) {
	genericConfig := outer.Config
	// Hooks are per server (the chain copies the delegate's; a name twice fails).
	genericConfig.PostStartHooks = map[string]genericapiserver.PostStartHookConfigEntry{}
	genericConfig.RESTOptionsGetter = nil
	// The copy would share the check slices' arrays with skiff's config.
	genericConfig.HealthzChecks = slices.Clone(outer.HealthzChecks)
	genericConfig.LivezChecks = slices.Clone(outer.LivezChecks)
	genericConfig.ReadyzChecks = slices.Clone(outer.ReadyzChecks)
	// skiff's server serves /openapi/v2 and /v3 with this server's paths
	// merged in (publishCRDOpenAPI); its own endpoints would be unreachable.
	genericConfig.SkipOpenAPIInstallation = true
	genericConfig.MergedResourceConfig = apiextensionsapiserver.DefaultAPIResourceConfigSource()

	etcdOptions := genericoptions.NewEtcdOptions(skiffstorage.BackendConfig(etcdTransport, outer.StorageObjectCountTracker))
	// As upstream: decodable as v1beta1 and v1, stored as the more compact v1beta1.
	etcdOptions.StorageConfig.Codec = apiextensionsapiserver.Codecs.LegacyCodec(apiextensionsv1beta1.SchemeGroupVersion, apiextensionsv1.SchemeGroupVersion)
	etcdOptions.StorageConfig.EncodeVersioner = runtime.NewMultiGroupVersioner(apiextensionsv1beta1.SchemeGroupVersion, schema.GroupKind{Group: apiextensionsv1beta1.GroupName})
	etcdOptions.SkipHealthEndpoints = true // skiff's storage already checks etcd
	if err := etcdOptions.ApplyTo(&genericConfig); err != nil {
		return nil, err
	}
	genericConfig.RESTOptionsGetter = skiffstorage.Guard(genericConfig.RESTOptionsGetter)

	// Services, for conversion webhooks addressed by service: the same
	// cluster-IP resolution as kube-apiserver without aggregator routing.
	// The generic server starts this factory in its post-start hook.
	client, err := kubernetes.NewForConfig(outer.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	kubeInformers := informers.NewSharedInformerFactory(client, 0)
	loopbackURL, err := url.Parse(outer.LoopbackClientConfig.Host)
	if err != nil {
		return nil, err
	}
	resolver := &serviceResolver{services: kubeInformers.Core().V1().Services().Lister(), loopback: loopbackURL}

	return &apiextensionsapiserver.Config{
		GenericConfig: &genericapiserver.RecommendedConfig{
			Config:                genericConfig,
			SharedInformerFactory: kubeInformers,
			ClientConfig:          outer.ClientConfig,
		},
		ExtraConfig: apiextensionsapiserver.ExtraConfig{
			CRDRESTOptionsGetter: crdRESTOptionsGetter(*etcdOptions, &genericConfig),
			MasterCount:          1,
			ServiceResolver:      resolver,
			AuthResolverWrapper:  webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil, outer.LoopbackClientConfig, outer.TracerProvider),
		},
	}, nil
}

// crdRESTOptionsGetter is apiextensions' NewCRDRESTOptionsGetter (whose
// package would pull in modules skiff does not otherwise need): custom
// resources stored as unstructured JSON (CBOR with CBORServingAndStorage),
// both readable, under /registry/<group>/<plural>.
func crdRESTOptionsGetter(etcdOptions genericoptions.EtcdOptions, c *genericapiserver.Config) genericregistry.RESTOptionsGetter {
	ucbor := cbor.NewSerializer(unstructuredscheme.NewUnstructuredCreator(), unstructuredscheme.NewUnstructuredObjectTyper())
	var encoder runtime.Encoder = unstructured.UnstructuredJSONScheme
	if utilfeature.DefaultFeatureGate.Enabled(features.CBORServingAndStorage) {
		encoder = ucbor
	}
	crOptions := etcdOptions
	crOptions.StorageConfig.Codec = runtime.NewCodec(encoder, recognizer.NewDecoder(ucbor, unstructured.UnstructuredJSONScheme))
	crOptions.StorageConfig.StorageObjectCountTracker = c.StorageObjectCountTracker
	crOptions.WatchCacheSizes = nil
	return skiffstorage.Guard(etcdOptions.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: crOptions.StorageConfig}, c.ResourceTransformers))
}

// serviceResolver resolves a webhook's service to its cluster IP, and
// kubernetes.default:443 to this server, as kube-apiserver's does.
type serviceResolver struct {
	services corelisters.ServiceLister
	loopback *url.URL
}

func (r *serviceResolver) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	if namespace == metav1.NamespaceDefault && name == "kubernetes" && port == 443 {
		return r.loopback, nil
	}
	svc, err := r.services.Services(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		if svc.Spec.ClusterIP == corev1.ClusterIPNone {
			return nil, fmt.Errorf(`cannot route to service with ClusterIP "None"`)
		}
		for _, p := range svc.Spec.Ports {
			if p.Port == port {
				return &url.URL{Scheme: "https", Host: net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port)))}, nil
			}
		}
		return nil, fmt.Errorf("no service port %d found for service %q", port, svc.Name)
	case corev1.ServiceTypeExternalName:
		return &url.URL{Scheme: "https", Host: net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(port)))}, nil
	default:
		return nil, fmt.Errorf("unsupported service type %q", svc.Spec.Type)
	}
}

// builtinGroups are the groups skiff's own server serves: a CRD cannot take
// their place in /apis.
func builtinGroups() sets.Set[string] {
	groups := sets.New(apiextensionsv1.GroupName)
	for _, gv := range apis.Scheme.PrioritizedVersionsAllGroups() {
		groups.Insert(gv.Group)
	}
	return groups
}

// crdGroups keeps skiff's unaggregated /apis (the APIGroupList of clients
// without aggregated discovery) listing every group with a served version of
// an established CRD, versions ordered as the apiextensions
// DiscoveryController orders them for /apis/<group>. Upstream's aggregator
// lists them through the APIServices its crd-autoregister controller keeps.
type crdGroups struct {
	root    discovery.GroupManager
	crds    apiextensionslisters.CustomResourceDefinitionLister
	builtin sets.Set[string]

	mu     sync.Mutex
	listed map[string]metav1.APIGroup
}

// sync brings root in line with the CRDs the lister holds.
func (g *crdGroups) sync() {
	g.mu.Lock()
	defer g.mu.Unlock()
	crds, err := g.crds.List(labels.Everything())
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("listing CRDs for /apis: %w", err))
		return
	}
	versions := map[string]sets.Set[string]{}
	for _, crd := range crds {
		if g.builtin.Has(crd.Spec.Group) || !apiextensionshelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			if versions[crd.Spec.Group] == nil {
				versions[crd.Spec.Group] = sets.New[string]()
			}
			versions[crd.Spec.Group].Insert(v.Name)
		}
	}
	want := map[string]metav1.APIGroup{}
	for group, vs := range versions {
		names := sets.List(vs)
		sort.SliceStable(names, func(i, j int) bool { return version.CompareKubeAwareVersionStrings(names[i], names[j]) > 0 })
		apiGroup := metav1.APIGroup{Name: group}
		for _, v := range names {
			apiGroup.Versions = append(apiGroup.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
		}
		apiGroup.PreferredVersion = apiGroup.Versions[0]
		want[group] = apiGroup
	}
	if g.listed == nil {
		g.listed = map[string]metav1.APIGroup{}
	}
	for name := range g.listed {
		if _, ok := want[name]; !ok {
			g.root.RemoveGroup(name)
			delete(g.listed, name)
		}
	}
	for name, apiGroup := range want {
		if old, ok := g.listed[name]; !ok || !apiequality.Semantic.DeepEqual(old, apiGroup) {
			g.root.AddGroup(apiGroup)
			g.listed[name] = apiGroup
		}
	}
}

// publishCRDOpenAPI makes skiff's /openapi/v2 and /openapi/v3 include
// apiextensions.k8s.io and every established CRD's schema, running the
// apiextensions OpenAPI controllers on skiff's server's OpenAPI services
// (upstream runs them on its own and lets the aggregator merge the specs).
func publishCRDOpenAPI(hookCtx genericapiserver.PostStartHookContext, outer *genericapiserver.GenericAPIServer,
	crds *apiextensionsapiserver.CustomResourceDefinitions, v2Config *common.Config, v3Config *common.OpenAPIV3Config) error {
	// The apiextensions.k8s.io web services: /apis/apiextensions.k8s.io and
	// /apis/apiextensions.k8s.io/v1 (its /version is skiff's too).
	var services []*restful.WebService
	for _, ws := range crds.GenericAPIServer.Handler.GoRestfulContainer.RegisteredWebServices() {
		if strings.HasPrefix(ws.RootPath(), "/apis/") {
			services = append(services, ws)
		}
	}
	informer := crds.Informers.Apiextensions().V1().CustomResourceDefinitions()

	if outer.OpenAPIVersionedService != nil && outer.StaticOpenAPISpec != nil && v2Config != nil {
		extensions, err := builder2.BuildOpenAPISpecFromRoutes(restfuladapter.AdaptWebServices(services), v2Config)
		if err != nil {
			return fmt.Errorf("OpenAPI v2 of %s: %w", apiextensionsv1.GroupName, err)
		}
		extensions.Definitions = handler.PruneDefaults(extensions.Definitions)
		static := copySwagger(outer.StaticOpenAPISpec)
		if err := aggregator.MergeSpecsIgnorePathConflictRenamingDefinitionsAndParameters(static, extensions); err != nil {
			return fmt.Errorf("merging the OpenAPI v2 of %s: %w", apiextensionsv1.GroupName, err)
		}
		if err := outer.OpenAPIVersionedService.UpdateSpec(static); err != nil {
			return err
		}
		go openapicontroller.NewController(informer).Run(static, outer.OpenAPIVersionedService, hookCtx.Done())
	}

	if outer.OpenAPIV3VersionedService != nil && v3Config != nil {
		for _, ws := range services {
			path := strings.TrimPrefix(ws.RootPath(), "/")
			s, err := builder3.BuildOpenAPISpecFromRoutes(restfuladapter.AdaptWebServices([]*restful.WebService{ws}), v3Config)
			if err != nil {
				return fmt.Errorf("OpenAPI v3 of %s: %w", path, err)
			}
			if parts := strings.Split(path, "/"); len(parts) == 3 {
				narrowMetaGVKs(s, parts[1], parts[2])
			}
			outer.OpenAPIV3VersionedService.UpdateGroupVersion(path, s)
		}
		go openapiv3controller.NewController(informer).Run(outer.OpenAPIV3VersionedService, hookCtx.Done())
	}
	return nil
}

// copySwagger copies s deeply enough to merge into the copy without touching s.
func copySwagger(s *spec.Swagger) *spec.Swagger {
	c := *s
	c.SwaggerProps.Definitions = make(spec.Definitions, len(s.Definitions))
	for k, v := range s.Definitions {
		c.Definitions[k] = v
	}
	if s.Parameters != nil {
		c.Parameters = make(map[string]spec.Parameter, len(s.Parameters))
		for k, v := range s.Parameters {
			c.Parameters[k] = v
		}
	}
	c.Paths = &spec.Paths{Paths: map[string]spec.PathItem{}}
	if s.Paths != nil {
		c.Paths.VendorExtensible = s.Paths.VendorExtensible
		for k, v := range s.Paths.Paths {
			c.Paths.Paths[k] = v
		}
	}
	return &c
}

// narrowMetaGVKs keeps, of the GVKs of the meta kinds every group registers
// (DeleteOptions, WatchEvent), this group version's and core/v1's, as
// k8s.io/apiserver does for the per-group-version specs it builds itself.
func narrowMetaGVKs(s *spec3.OpenAPI, group, version string) {
	if s == nil || s.Components == nil {
		return
	}
	const key = "x-kubernetes-group-version-kind"
	for _, schema := range s.Components.Schemas {
		if schema == nil {
			continue
		}
		gvks, ok := schema.Extensions[key].([]interface{})
		if !ok || len(gvks) <= 1 {
			continue
		}
		if first, ok := gvks[0].(map[string]interface{}); !ok || (first["kind"] != "DeleteOptions" && first["kind"] != "WatchEvent") {
			continue
		}
		var kept []interface{}
		for _, item := range gvks {
			m, ok := item.(map[string]interface{})
			if !ok {
				continue
			}
			if (m["group"] == group && m["version"] == version) || (m["group"] == "" && m["version"] == "v1") {
				kept = append(kept, item)
			}
		}
		if len(kept) > 0 {
			schema.Extensions[key] = kept
		}
	}
}
