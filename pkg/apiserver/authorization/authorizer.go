// Package authorization builds the API server's authorizer: system:masters,
// then Node (pkg/authorizer/node), then RBAC (pkg/authorizer/rbac on the
// loopback informers, with the escalation-checked rbac.authorization.k8s.io storage and the
// authorization.k8s.io reviews), then the public information paths.
package authorization

import (
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/authorization/path"
	authzunion "k8s.io/apiserver/pkg/authorization/union"
)

// publicInfoPaths are readable without credentials, as upstream's
// system:public-info-viewer ClusterRole allows.
var publicInfoPaths = []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}

// New grants everything to system:masters, then asks node (the Node
// authorizer: kubelets' requests, as upstream's --authorization-mode=Node,RBAC),
// then rbac (the RBAC authorizer, whose bootstrap policy covers the rest
// of what upstream's default roles allow), and lets everyone read the public
// information paths even before the bootstrap policy is in place.
func New(node, rbac authorizer.Authorizer) (authorizer.Authorizer, authorizer.RuleResolver, error) {
	public, err := path.NewAuthorizer(publicInfoPaths)
	if err != nil {
		return nil, nil, err
	}
	masters := authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup)
	chain := []authzunion.NamedAuthorizer{
		{AuthorizerName: "system:masters", Authorizer: masters},
		{AuthorizerName: "node", Authorizer: node},
		{AuthorizerName: "rbac", Authorizer: rbac},
		{AuthorizerName: "public-info", Authorizer: public},
	}
	var resolvers []authorizer.RuleResolver
	for _, a := range chain {
		if r, ok := a.Authorizer.(authorizer.RuleResolver); ok {
			resolvers = append(resolvers, r)
		}
	}
	union, err := authzunion.New(chain...)
	if err != nil {
		return nil, nil, err
	}
	return union, authzunion.NewRuleResolvers(resolvers...), nil
}
