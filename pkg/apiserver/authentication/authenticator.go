// Package authentication builds the API server's request authenticator:
// client certificates of the cluster CA, then bearer tokens (ServiceAccount
// tokens, bootstrap tokens) behind upstream's verdict cache, then anonymous.
package authentication

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
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/informers"

	"github.com/skiff-dev/skiff/pkg/bootstraptoken"
)

// Token verdicts are cached as kube-apiserver caches them by default
// (--token-auth-success-cache-ttl 10s, no failure cache): a token is not
// verified, and its ServiceAccount and bound object looked up, on every
// request; revoking one takes effect within the success TTL.
const (
	tokenSuccessCacheTTL = 10 * time.Second
	tokenFailureCacheTTL = 0
)

// New accepts client certificates signed by the cluster CA
// (user from CN, groups from O) and bearer tokens (in the Authorization
// header or, for websockets, the protocol header) that one of tokens
// accepts; a request without credentials becomes system:anonymous, whom the
// authorizer then refuses most things (403), and one with credentials that
// none accepts is refused (401).
func New(clientCA dynamiccertificates.CAContentProvider, tokens ...authenticator.Token) authenticator.Request {
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

// TokenAuthenticators are the bearer token authenticators, in upstream's
// order: ServiceAccount tokens, then (with bootstrapTokens, the
// --enable-bootstrap-token-auth flag) bootstrap tokens, read from
// kube-system's Secrets through factory.
func TokenAuthenticators(sa *ServiceAccounts, bootstrapTokens bool, factory informers.SharedInformerFactory) []authenticator.Token {
	tokens := []authenticator.Token{sa.authenticator}
	if bootstrapTokens {
		secrets := factory.Core().V1().Secrets().Lister().Secrets(bootstraptoken.Namespace)
		tokens = append(tokens, bootstraptoken.NewAuthenticator(secrets))
	}
	return tokens
}
