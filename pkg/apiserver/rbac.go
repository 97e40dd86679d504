package apiserver

// RBAC: the authorizer (pkg/authorizer/rbac) reading through the loopback
// informers, the bootstrap policy reconciled by the rbac/bootstrap-roles
// post-start hook, the escalation-checked rbac.authorization.k8s.io storage
// and authorization.k8s.io/v1 (the access and rules reviews).

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
	"k8s.io/client-go/kubernetes"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/pkg/apis"
	rbacauthz "github.com/skiff-dev/skiff/pkg/authorizer/rbac"
	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
	authorizationregistry "github.com/skiff-dev/skiff/pkg/registry/authorization"
	rbacregistry "github.com/skiff-dev/skiff/pkg/registry/rbac"
)

// rbacAuthorization is the server's RBAC machinery.
type rbacAuthorization struct {
	authorizer *rbacauthz.Authorizer
	synced     []cache.InformerSynced
	// The informers' view, to wait for the bootstrap policy.
	clusterRoles        rbaclisters.ClusterRoleLister
	clusterRoleBindings rbaclisters.ClusterRoleBindingLister
	// server is the server's whole authorizer and resolver, which the
	// escalation checks and reviews ask; set by setServerAuthorizer.
	server   authorizer.Authorizer
	resolver authorizer.RuleResolver
}

// newRBAC builds the authorizer on factory's RBAC informers (started with
// the server's other loopback informers).
func newRBAC(factory informers.SharedInformerFactory) *rbacAuthorization {
	a, synced := rbacauthz.New(factory)
	return &rbacAuthorization{authorizer: a, synced: synced,
		clusterRoles: factory.Rbac().V1().ClusterRoles().Lister(), clusterRoleBindings: factory.Rbac().V1().ClusterRoleBindings().Lister()}
}

// setServerAuthorizer records the server's final authorizer (the union, with
// the loopback user's privilege) and rule resolver.
func (r *rbacAuthorization) setServerAuthorizer(a authorizer.Authorizer, resolver authorizer.RuleResolver) {
	r.server, r.resolver = a, resolver
}

// storage builds rbac.authorization.k8s.io/v1 with the escalation checks.
func (r *rbacAuthorization) storage(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	return rbacregistry.Storage(r.server)(optsGetter)
}

// install serves authorization.k8s.io/v1 and adds the rbac/bootstrap-roles
// hook.
func (r *rbacAuthorization) install(server *genericapiserver.GenericAPIServer) error {
	info := genericapiserver.NewDefaultAPIGroupInfo(authorizationv1.GroupName, apis.Scheme, runtime.NewParameterCodec(apis.Scheme), apis.Codecs)
	info.VersionedResourcesStorageMap["v1"] = authorizationregistry.Storage(r.server, r.resolver)
	if err := server.InstallAPIGroup(&info); err != nil {
		return err
	}
	return server.AddPostStartHook("rbac/bootstrap-roles", func(ctx genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(ctx.LoopbackClientConfig)
		if err != nil {
			return err
		}
		if err := bootstrap.Ensure(ctx, client, 30*time.Second); err != nil {
			return err
		}
		return r.waitForBootstrapPolicy(ctx)
	})
}

// waitForBootstrapPolicy waits until the informers see every bootstrap
// ClusterRole and ClusterRoleBinding, so that once the server is ready the
// authorizer grants what the policy does.
func (r *rbacAuthorization) waitForBootstrapPolicy(ctx context.Context) error {
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
