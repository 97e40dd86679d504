package apiserver

import (
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/authorization/path"
	authzunion "k8s.io/apiserver/pkg/authorization/union"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// publicInfoPaths are readable without credentials, as upstream's
// system:public-info-viewer ClusterRole allows.
var publicInfoPaths = []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}

// newAuthenticator accepts client certificates signed by the cluster CA
// (user from CN, groups from O); a request without credentials becomes
// system:anonymous, whom the authorizer then refuses most things (403).
func newAuthenticator(clientCA dynamiccertificates.CAContentProvider) authenticator.Request {
	certs := x509.NewDynamic(clientCA.VerifyOptions, x509.CommonNameUserConversion)
	return union.NewFailOnError(
		group.NewAuthenticatedGroupAdder(union.New(certs)),
		anonymous.NewAuthenticator(nil),
	)
}

// newAuthorizer grants everything to system:masters and the public
// information paths to everyone. RBAC (a later issue) joins this union.
func newAuthorizer(extra ...authzunion.NamedAuthorizer) (authorizer.Authorizer, authorizer.RuleResolver, error) {
	public, err := path.NewAuthorizer(publicInfoPaths)
	if err != nil {
		return nil, nil, err
	}
	masters := authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup)
	chain := append([]authzunion.NamedAuthorizer{
		{AuthorizerName: "system:masters", Authorizer: masters},
		{AuthorizerName: "public-info", Authorizer: public},
	}, extra...)
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
