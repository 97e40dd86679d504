package apiserver

import (
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/apiserver/authentication"
	"github.com/skiff-dev/skiff/pkg/apiserver/authorization"
	"github.com/skiff-dev/skiff/pkg/registry/apps"
	"github.com/skiff-dev/skiff/pkg/registry/autoscaling"
	"github.com/skiff-dev/skiff/pkg/registry/batch"
	"github.com/skiff-dev/skiff/pkg/registry/certificates"
	"github.com/skiff-dev/skiff/pkg/registry/coordination"
	"github.com/skiff-dev/skiff/pkg/registry/core"
	"github.com/skiff-dev/skiff/pkg/registry/core/service"
	"github.com/skiff-dev/skiff/pkg/registry/discovery"
	"github.com/skiff-dev/skiff/pkg/registry/events"
	"github.com/skiff-dev/skiff/pkg/registry/metrics"
	"github.com/skiff-dev/skiff/pkg/registry/metrics/scraper"
	"github.com/skiff-dev/skiff/pkg/registry/networking"
	"github.com/skiff-dev/skiff/pkg/registry/node"
	"github.com/skiff-dev/skiff/pkg/registry/policy"
	"github.com/skiff-dev/skiff/pkg/registry/rbac"
	"github.com/skiff-dev/skiff/pkg/registry/scheduling"
	"github.com/skiff-dev/skiff/pkg/registry/storage"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// apiGroup is one served group, at v1 unless versions says otherwise
// (every version serves the same storage): its storage comes either from a
// resource table or, for groups with special subresources, a function.
type apiGroup struct {
	name      string
	versions  []string
	resources []store.Resource
	storage   func(generic.RESTOptionsGetter) (map[string]rest.Storage, error)
}

// apiGroups are the served groups besides the legacy core group.
var apiGroups = []apiGroup{
	{name: "apps", storage: apps.Storage},
	{name: "batch", resources: batch.Resources},
	{name: "coordination.k8s.io", resources: coordination.Resources},
	{name: "discovery.k8s.io", resources: discovery.Resources},
	{name: eventsv1.GroupName, resources: events.Resources},
	{name: "rbac.authorization.k8s.io", resources: rbac.Resources},
	{name: "networking.k8s.io", resources: networking.Resources},
	{name: "policy", resources: policy.Resources},
	{name: "scheduling.k8s.io", storage: scheduling.Storage},
	{name: "storage.k8s.io", storage: storage.Storage},
	{name: "node.k8s.io", resources: node.Resources},
	{name: "certificates.k8s.io", storage: certificates.Storage},
	{name: "autoscaling", versions: autoscaling.Versions, storage: autoscaling.Storage},
	// metrics.k8s.io reads the core nodes and pods (installAPIs).
	{name: metrics.Group, versions: []string{"v1beta1"}},
}

// installAPIs installs the core group and every group of apiGroups.
// The RBAC group's writes are checked against escalation with rbac.
func installAPIs(server *genericapiserver.GenericAPIServer, optsGetter generic.RESTOptionsGetter, services *service.Allocators, conns core.Connections, serviceAccounts *authentication.ServiceAccounts, rbac *authorization.RBAC) error {
	parameterCodec := runtime.NewParameterCodec(apis.Scheme)
	coreStorage, err := core.Storage(optsGetter, services, conns)
	if err != nil {
		return err
	}
	if err := serviceAccounts.AddTokenREST(coreStorage); err != nil {
		return err
	}
	legacy := genericapiserver.NewDefaultAPIGroupInfo("", apis.Scheme, parameterCodec, apis.Codecs)
	legacy.VersionedResourcesStorageMap["v1"] = coreStorage
	if err := server.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &legacy); err != nil {
		return err
	}

	var infos []*genericapiserver.APIGroupInfo
	for _, g := range apiGroups {
		if g.name == rbacv1.GroupName {
			g.storage = rbac.Storage
		}
		if g.name == metrics.Group {
			g.storage = func(generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
				scraped, err := scraper.Install(server, coreStorage, conns.Kubelet)
				if err != nil {
					return nil, err
				}
				return metrics.Storage(coreStorage, metrics.ByRuntime{Real: scraped})
			}
		}
		storage, err := g.build(optsGetter)
		if err != nil {
			return err
		}
		info := genericapiserver.NewDefaultAPIGroupInfo(g.name, apis.Scheme, parameterCodec, apis.Codecs)
		versions := g.versions
		if versions == nil {
			versions = []string{"v1"}
		}
		for _, v := range versions {
			info.VersionedResourcesStorageMap[v] = storage
		}
		infos = append(infos, &info)
	}
	return server.InstallAPIGroups(infos...)
}

func (g apiGroup) build(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	if g.storage != nil {
		return g.storage(optsGetter)
	}
	return store.Build(g.resources, optsGetter)
}
