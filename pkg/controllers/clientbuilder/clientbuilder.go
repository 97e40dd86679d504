// Package clientbuilder gives each controller the API credentials it runs
// under, as upstream's k8s.io/controller-manager clientbuilder: the
// controller manager's own (Root), or, with kube-controller-manager's
// --use-service-account-credentials, a token of the controller's own
// ServiceAccount in kube-system (ServiceAccounts), so that RBAC grants each
// controller only its system:controller:<name> role.
package clientbuilder

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"
)

// Builder makes the rest.Config of a controller's clients.
type Builder interface {
	// Config is the configuration for the controller whose identity is
	// name (its ServiceAccount's name, e.g. "namespace-controller").
	Config(name string) (*rest.Config, error)
}

// Root is a Builder that gives every controller the controller manager's
// own credentials, telling them apart by user agent only.
func Root(cfg *rest.Config) Builder { return rootBuilder{cfg} }

type rootBuilder struct{ cfg *rest.Config }

func (b rootBuilder) Config(name string) (*rest.Config, error) {
	return rest.AddUserAgent(rest.CopyConfig(b.cfg), name), nil
}

// Upstream's token lifetime and renewal: an hour, renewed when less than
// a fifth of it is left.
const (
	DefaultExpirationSeconds = 3600
	leewayPercent            = 20
	// minLifetime is the shortest lifetime a TokenRequest grants; a
	// shorter one comes from clock skew and is taken as this.
	minLifetime = 10 * time.Minute
)

// ServiceAccounts is a Builder whose configurations authenticate as the
// controller's ServiceAccount in namespace: with root's credentials it
// creates the ServiceAccount if missing and requests a token for it
// (TokenRequest), which is renewed before it expires and at once when the
// server answers 401. The configurations carry root's address and CA but
// none of its credentials.
func ServiceAccounts(root *rest.Config, namespace string) (Builder, error) {
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(root), "serviceaccount-credentials"))
	if err != nil {
		return nil, err
	}
	return &saBuilder{root: root, client: client, namespace: namespace, expirationSeconds: DefaultExpirationSeconds,
		sources: map[string]transport.ResettableTokenSource{}}, nil
}

type saBuilder struct {
	root              *rest.Config
	client            kubernetes.Interface
	namespace         string
	expirationSeconds int64

	mu sync.Mutex
	// One cached token per ServiceAccount, shared by all its configs.
	sources map[string]transport.ResettableTokenSource
}

func (b *saBuilder) Config(name string) (*rest.Config, error) {
	b.mu.Lock()
	source, ok := b.sources[name]
	if !ok {
		source = transport.NewCachedTokenSource(&tokenSource{b: b, name: name})
		b.sources[name] = source
	}
	b.mu.Unlock()
	cfg := rest.AnonymousClientConfig(b.root)
	rest.AddUserAgent(cfg, serviceaccount.MakeUsername(b.namespace, name))
	cfg.Wrap(transport.ResettableTokenSourceWrapTransport(source))
	return cfg, nil
}

// tokenSource requests a fresh token for one ServiceAccount.
type tokenSource struct {
	b    *saBuilder
	name string
}

func (s *tokenSource) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		token *authenticationv1.TokenRequest
		last  error
	)
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 5}
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		if last = s.ensureServiceAccount(ctx); last != nil {
			return false, nil
		}
		token, last = s.b.client.CoreV1().ServiceAccounts(s.b.namespace).CreateToken(ctx, s.name,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &s.b.expirationSeconds}}, metav1.CreateOptions{})
		return last == nil, nil
	})
	if err != nil {
		if last != nil {
			err = last
		}
		klog.ErrorS(err, "Requesting a token for a controller's ServiceAccount", "serviceAccount", s.b.namespace+"/"+s.name)
		return nil, fmt.Errorf("token for ServiceAccount %s/%s: %w", s.b.namespace, s.name, err)
	}
	lifetime := time.Until(token.Status.ExpirationTimestamp.Time)
	if lifetime < minLifetime {
		lifetime = minLifetime
	}
	renewIn := lifetime - lifetime*leewayPercent/100
	return &oauth2.Token{AccessToken: token.Status.Token, TokenType: "Bearer", Expiry: time.Now().Add(renewIn)}, nil
}

// ensureServiceAccount creates the ServiceAccount unless it exists.
func (s *tokenSource) ensureServiceAccount(ctx context.Context) error {
	accounts := s.b.client.CoreV1().ServiceAccounts(s.b.namespace)
	_, err := accounts.Get(ctx, s.name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	_, err = accounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: s.b.namespace, Name: s.name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		klog.InfoS("Created a controller's ServiceAccount", "serviceAccount", s.b.namespace+"/"+s.name)
	}
	return err
}
