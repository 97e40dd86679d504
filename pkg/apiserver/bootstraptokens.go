package apiserver

import (
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/client-go/informers"

	"github.com/skiff-dev/skiff/pkg/bootstraptoken"
)

// tokenAuthenticators are the bearer token authenticators, in upstream's
// order: ServiceAccount tokens, then (with --enable-bootstrap-token-auth)
// bootstrap tokens, read from kube-system's Secrets through factory.
func (o *Options) tokenAuthenticators(sa *serviceAccounts, factory informers.SharedInformerFactory) []authenticator.Token {
	tokens := []authenticator.Token{sa.authenticator}
	if o.EnableBootstrapTokenAuth {
		secrets := factory.Core().V1().Secrets().Lister().Secrets(bootstraptoken.Namespace)
		tokens = append(tokens, bootstraptoken.NewAuthenticator(secrets))
	}
	return tokens
}
