// Package bootstrappolicy reconciles upstream's default RBAC roles and
// bindings (pkg/authorizer/rbac/bootstrap) at start, under upstream's hook
// name rbac/bootstrap-roles.
package bootstrappolicy

import (
	"context"
	"time"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
)

// Install adds the hook; it ends once the policy is written and
// authorizerSees returns, so that a ready server's authorizer grants what
// the policy does.
func Install(server *genericapiserver.GenericAPIServer, authorizerSees func(context.Context) error) error {
	return server.AddPostStartHook("rbac/bootstrap-roles", func(ctx genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(ctx.LoopbackClientConfig)
		if err != nil {
			return err
		}
		if err := bootstrap.Ensure(ctx, client, 30*time.Second); err != nil {
			return err
		}
		return authorizerSees(ctx)
	})
}
