package apiserver

import (
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/websocket"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	tokencache "k8s.io/apiserver/pkg/authentication/token/cache"
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

// Token verdicts are cached as kube-apiserver caches them by default
// (--token-auth-success-cache-ttl 10s, no failure cache): a token is not
// verified, and its ServiceAccount and bound object looked up, on every
// request; revoking one takes effect within the success TTL.
const (
	tokenSuccessCacheTTL = 10 * time.Second
	tokenFailureCacheTTL = 0
)

// newAuthenticator accepts client certificates signed by the cluster CA
// (user from CN, groups from O) and bearer tokens (in the Authorization
// header or, for websockets, the protocol header) that one of tokens
// accepts; a request without credentials becomes system:anonymous, whom the
// authorizer then refuses most things (403), and one with credentials that
// none accepts is refused (401).
func newAuthenticator(clientCA dynamiccertificates.CAContentProvider, tokens ...authenticator.Token) authenticator.Request {
	authenticators := []authenticator.Request{x509.NewDynamic(clientCA.VerifyOptions, x509.CommonNameUserConversion)}
	if len(tokens) > 0 {
		token := tokencache.New(tokenunion.New(tokens...), true, tokenSuccessCacheTTL, tokenFailureCacheTTL)
		authenticators = append(authenticators, bearertoken.New(token), websocket.NewProtocolAuthenticator(token))
	}
	return union.NewFailOnError(
		group.NewAuthenticatedGroupAdder(union.New(authenticators...)),
		anonymous.NewAuthenticator(nil),
	)
}

// newAuthorizer grants everything to system:masters, then asks rbac (the
// RBAC authorizer, whose bootstrap policy covers the rest of what
// upstream's default roles allow), and lets everyone read the public
// information paths even before the bootstrap policy is in place.
func newAuthorizer(rbac authorizer.Authorizer) (authorizer.Authorizer, authorizer.RuleResolver, error) {
	public, err := path.NewAuthorizer(publicInfoPaths)
	if err != nil {
		return nil, nil, err
	}
	masters := authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup)
	chain := []authzunion.NamedAuthorizer{
		{AuthorizerName: "system:masters", Authorizer: masters},
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
