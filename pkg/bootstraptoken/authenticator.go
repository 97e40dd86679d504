package bootstraptoken

import (
	"context"
	"crypto/subtle"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
)

// Authenticator authenticates bootstrap tokens against the Secrets of
// kube-system, read through an informer's lister (never the API: unknown
// tokens cost nothing), with upstream's semantics: a token whose Secret is
// missing, being deleted, of another type, with another token-secret or
// token-id, expired, not marked usage-bootstrap-authentication=true or with
// invalid auth-extra-groups is not accepted (another authenticator may
// still accept it; if none does the request gets 401).
type Authenticator struct {
	secrets corev1listers.SecretNamespaceLister
	now     func() time.Time
}

// NewAuthenticator reads the Secrets of kube-system through secrets.
func NewAuthenticator(secrets corev1listers.SecretNamespaceLister) *Authenticator {
	return &Authenticator{secrets: secrets, now: time.Now}
}

var _ authenticator.Token = &Authenticator{}

// AuthenticateToken implements authenticator.Token.
func (a *Authenticator) AuthenticateToken(_ context.Context, token string) (*authenticator.Response, bool, error) {
	id, tokenSecret, ok := ParseToken(token)
	if !ok {
		return nil, false, nil
	}
	name := SecretName(id)
	secret, err := a.secrets.Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			klog.V(3).InfoS("No secret to match the bootstrap bearer token", "secret", name)
			return nil, false, nil
		}
		return nil, false, err
	}
	reject := func(why string) (*authenticator.Response, bool, error) {
		klog.V(3).InfoS("Bootstrap token not accepted", "secret", Namespace+"/"+name, "reason", why)
		return nil, false, nil
	}
	if secret.DeletionTimestamp != nil {
		return reject("the secret is being deleted")
	}
	if secret.Type != SecretType || secret.Data == nil {
		return reject("the secret is not of type " + string(SecretType))
	}
	if subtle.ConstantTimeCompare([]byte(Data(secret, SecretKey)), []byte(tokenSecret)) != 1 {
		return reject("wrong " + SecretKey)
	}
	if Data(secret, IDKey) != id {
		return reject("wrong " + IDKey)
	}
	if _, expired := Expiration(secret, a.now()); expired {
		return reject("expired")
	}
	if Data(secret, UsageAuthenticationKey) != "true" {
		return reject("not marked " + UsageAuthenticationKey + "=true")
	}
	groups, err := Groups(secret)
	if err != nil {
		return reject(err.Error())
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: UserPrefix + id, Groups: groups}}, true, nil
}
