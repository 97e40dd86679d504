package authorization

import (
	"context"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/pkg/apis"
	rbacauthz "github.com/skiff-dev/skiff/pkg/authorizer/rbac"
	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
	authorizationregistry "github.com/skiff-dev/skiff/pkg/registry/authorization"
	rbacregistry "github.com/skiff-dev/skiff/pkg/registry/rbac"
)

// RBAC is the server's RBAC machinery: the authorizer (pkg/authorizer/rbac)
// reading through the loopback informers, the escalation-checked
// rbac.authorization.k8s.io storage and authorization.k8s.io/v1 (the access
// and rules reviews).
type RBAC struct {
	authorizer *rbacauthz.Authorizer
	synced     []cache.InformerSynced
	// The informers' view, to wait for the bootstrap policy.
	clusterRoles        rbaclisters.ClusterRoleLister
	clusterRoleBindings rbaclisters.ClusterRoleBindingLister
	// server is the server's whole authorizer and resolver, which the
	// escalation checks and reviews ask; set by SetServerAuthorizer.
	server   authorizer.Authorizer
	resolver authorizer.RuleResolver
}

// NewRBAC builds the authorizer on factory's RBAC informers (started with
// the server's other loopback informers).
func NewRBAC(factory informers.SharedInformerFactory) *RBAC {
	a, synced := rbacauthz.New(factory)
	return &RBAC{authorizer: a, synced: synced,
		clusterRoles: factory.Rbac().V1().ClusterRoles().Lister(), clusterRoleBindings: factory.Rbac().V1().ClusterRoleBindings().Lister()}
}

// Authorizer is the RBAC authorizer alone.
func (r *RBAC) Authorizer() authorizer.Authorizer { return r.authorizer }

// SetServerAuthorizer records the server's final authorizer (the union, with
// the loopback user's privilege) and rule resolver.
func (r *RBAC) SetServerAuthorizer(a authorizer.Authorizer, resolver authorizer.RuleResolver) {
	r.server, r.resolver = a, resolver
}

// Storage builds rbac.authorization.k8s.io/v1 with the escalation checks.
func (r *RBAC) Storage(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	return rbacregistry.Storage(r.server)(optsGetter)
}

// Install serves authorization.k8s.io/v1.
func (r *RBAC) Install(server *genericapiserver.GenericAPIServer) error {
	info := genericapiserver.NewDefaultAPIGroupInfo(authorizationv1.GroupName, apis.Scheme, runtime.NewParameterCodec(apis.Scheme), apis.Codecs)
	info.VersionedResourcesStorageMap["v1"] = authorizationregistry.Storage(r.server, r.resolver)
	return server.InstallAPIGroup(&info)
}

// WaitForBootstrapPolicy waits until the informers see every bootstrap
// ClusterRole and ClusterRoleBinding, so that once the server is ready the
// authorizer grants what the policy does.
func (r *RBAC) WaitForBootstrapPolicy(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return fmt.Errorf("RBAC informers did not sync")
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		for _, role := range bootstrap.ClusterRoles() {
			if _, err := r.clusterRoles.Get(role.Name); err != nil {
				return false, nil
			}
		}
		for _, b := range bootstrap.ClusterRoleBindings() {
			if _, err := r.clusterRoleBindings.Get(b.Name); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}
