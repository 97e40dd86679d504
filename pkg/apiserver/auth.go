package apiserver

import (
	"context"
	"slices"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/websocket"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
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

// issuerDiscoveryPaths are the service account issuer's OpenID discovery
// endpoints. Upstream's system:service-account-issuer-discovery ClusterRole
// grants them; until RBAC, every authenticated user may read them.
var issuerDiscoveryPaths = []string{"/.well-known/openid-configuration", "/openid/v1/jwks"}

// newAuthenticator accepts client certificates signed by the cluster CA
// (user from CN, groups from O) and bearer tokens (in the Authorization
// header or, for websockets, the protocol header) that one of tokens
// accepts; a request without credentials becomes system:anonymous, whom the
// authorizer then refuses most things (403), and one with credentials that
// none accepts is refused (401).
func newAuthenticator(clientCA dynamiccertificates.CAContentProvider, tokens ...authenticator.Token) authenticator.Request {
	authenticators := []authenticator.Request{x509.NewDynamic(clientCA.VerifyOptions, x509.CommonNameUserConversion)}
	if len(tokens) > 0 {
		token := tokenunion.New(tokens...)
		authenticators = append(authenticators, bearertoken.New(token), websocket.NewProtocolAuthenticator(token))
	}
	return union.NewFailOnError(
		group.NewAuthenticatedGroupAdder(union.New(authenticators...)),
		anonymous.NewAuthenticator(nil),
	)
}

// authenticatedOnly lets a's decisions stand for authenticated users only.
func authenticatedOnly(a authorizer.Authorizer) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
		if attrs.GetUser() == nil || !slices.Contains(attrs.GetUser().GetGroups(), user.AllAuthenticated) {
			return authorizer.DecisionNoOpinion, "", nil
		}
		return a.Authorize(ctx, attrs)
	})
}

// basicUser allows what upstream's system:basic-user ClusterRole does that
// skiff serves: reviewing oneself (selfsubjectreviews, as `kubectl auth
// whoami` does).
var basicUser = authorizer.AuthorizerFunc(func(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	if attrs.IsResourceRequest() && attrs.GetVerb() == "create" &&
		attrs.GetAPIGroup() == "authentication.k8s.io" && attrs.GetResource() == "selfsubjectreviews" {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
})

// newAuthorizer grants everything to system:masters, the public
// information paths to everyone, and the issuer discovery paths and
// selfsubjectreviews to authenticated users. RBAC (a later issue) joins
// this union.
func newAuthorizer(extra ...authzunion.NamedAuthorizer) (authorizer.Authorizer, authorizer.RuleResolver, error) {
	public, err := path.NewAuthorizer(publicInfoPaths)
	if err != nil {
		return nil, nil, err
	}
	discovery, err := path.NewAuthorizer(issuerDiscoveryPaths)
	if err != nil {
		return nil, nil, err
	}
	masters := authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup)
	chain := append([]authzunion.NamedAuthorizer{
		{AuthorizerName: "system:masters", Authorizer: masters},
		{AuthorizerName: "public-info", Authorizer: public},
		{AuthorizerName: "service-account-issuer-discovery", Authorizer: authenticatedOnly(discovery)},
		{AuthorizerName: "basic-user", Authorizer: authenticatedOnly(basicUser)},
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
