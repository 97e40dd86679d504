package apiserver

// ServiceAccount tokens: the signing and verification keys, the token
// authenticator, serviceaccounts/token, authentication.k8s.io/v1
// (tokenreviews, selfsubjectreviews) and the OpenID Connect discovery
// endpoints of the issuer, with kube-apiserver's --service-account-* and
// --api-audiences flags.

import (
	"crypto"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/controlplane/legacytokentracking"
	authenticationregistry "github.com/skiff-dev/skiff/pkg/registry/authentication"
	tokenregistry "github.com/skiff-dev/skiff/pkg/registry/core/serviceaccount"
	"github.com/skiff-dev/skiff/pkg/serviceaccount"
)

// DefaultServiceAccountIssuer is the issuer of tokens when
// --service-account-issuer is not given: the in-cluster name of the API.
const DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// ServiceAccountOptions are kube-apiserver's service account token flags.
type ServiceAccountOptions struct {
	// Issuers: the first signs new tokens, all are accepted.
	Issuers []string
	// KeyFiles hold extra public keys (PEM public or private keys, or
	// certificates) that verify tokens, besides the signing key's.
	KeyFiles []string
	// SigningKeyFile is the private key that signs tokens; empty:
	// <data-dir>/pki/sa.key, created on first start.
	SigningKeyFile string
	// JWKSURI overrides the jwks_uri of the discovery document.
	JWKSURI string
	// MaxExpiration caps the lifetime of requested tokens (0: no cap).
	MaxExpiration time.Duration
	// ExtendExpiration lets the projected pod tokens live a year, warning
	// after their requested hour.
	ExtendExpiration bool
	// APIAudiences are the audiences of the API; empty: the issuers.
	APIAudiences []string
}

// NewServiceAccountOptions returns upstream's defaults plus skiff's issuer.
func NewServiceAccountOptions() *ServiceAccountOptions {
	return &ServiceAccountOptions{Issuers: []string{DefaultServiceAccountIssuer}, ExtendExpiration: true}
}

// AddFlags registers the flags on fs.
func (s *ServiceAccountOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&s.Issuers, "service-account-issuer", s.Issuers, "Identifier of the service account token issuer: the `iss` claim of issued tokens, an https URL for the OpenID discovery endpoints. Repeatable: the first issues tokens, all are accepted.")
	fs.StringArrayVar(&s.KeyFiles, "service-account-key-file", s.KeyFiles, "File with PEM-encoded public keys (or private keys, or certificates) that also verify service account tokens, besides the signing key's. Repeatable.")
	fs.StringVar(&s.SigningKeyFile, "service-account-signing-key-file", s.SigningKeyFile, "File with the PEM-encoded RSA or ECDSA private key that signs service account tokens. Empty: <data-dir>/pki/sa.key, an RSA-2048 key created on first start.")
	fs.StringVar(&s.JWKSURI, "service-account-jwks-uri", s.JWKSURI, "Overrides the jwks_uri of /.well-known/openid-configuration. Empty: https://<advertise-address>:<secure-port>/openid/v1/jwks.")
	fs.DurationVar(&s.MaxExpiration, "service-account-max-token-expiration", s.MaxExpiration, "The maximum validity duration of a token created by the service account token issuer; longer TokenRequests get this duration. 0: no maximum.")
	fs.BoolVar(&s.ExtendExpiration, "service-account-extend-token-expiration", s.ExtendExpiration, "Extend the projected service account tokens of pods to a year, warning after their requested lifetime, so that clients not yet refreshing them keep working.")
	fs.StringSliceVar(&s.APIAudiences, "api-audiences", s.APIAudiences, "Identifiers of the API: service account tokens must be meant for one of them. Empty: the --service-account-issuer values.")
}

// Validate reports every invalid service account option.
func (s *ServiceAccountOptions) Validate() []error {
	var errs []error
	if len(s.Issuers) == 0 {
		errs = append(errs, fmt.Errorf("--service-account-issuer must not be empty"))
	}
	seen := map[string]bool{}
	for _, iss := range s.Issuers {
		switch {
		case iss == "":
			errs = append(errs, fmt.Errorf("--service-account-issuer must not be empty"))
		case seen[iss]:
			errs = append(errs, fmt.Errorf("--service-account-issuer %q is given twice", iss))
		case strings.Contains(iss, ":"):
			if _, err := url.Parse(iss); err != nil {
				errs = append(errs, fmt.Errorf("--service-account-issuer %q contained a ':' but was not a valid URL: %v", iss, err))
			}
		}
		seen[iss] = true
	}
	if s.JWKSURI != "" {
		if u, err := url.Parse(s.JWKSURI); err != nil || u.Scheme != "https" {
			errs = append(errs, fmt.Errorf("--service-account-jwks-uri must be an https URL"))
		}
	}
	if s.MaxExpiration != 0 {
		if s.MaxExpiration < time.Hour || s.MaxExpiration > time.Duration(1<<32)*time.Second {
			errs = append(errs, fmt.Errorf("--service-account-max-token-expiration must be between 1 hour and 2^32 seconds"))
		}
		if s.ExtendExpiration && s.MaxExpiration < serviceaccount.WarnOnlyBoundTokenExpirationSeconds*time.Second {
			errs = append(errs, fmt.Errorf("--service-account-max-token-expiration must be at least %ds while --service-account-extend-token-expiration is true", serviceaccount.WarnOnlyBoundTokenExpirationSeconds))
		}
	}
	return errs
}

// apiAudiences are the --api-audiences, defaulting to the issuers.
func (s *ServiceAccountOptions) apiAudiences() []string {
	if len(s.APIAudiences) > 0 {
		return s.APIAudiences
	}
	return s.Issuers
}

// serviceAccounts is the server's token machinery.
type serviceAccounts struct {
	apiAudiences  authenticator.Audiences
	authenticator authenticator.Token
	tokens        tokenregistry.Config
	// metadata is nil when the issuer is not an https URL: then the
	// discovery endpoints are not served, as upstream.
	metadata *serviceaccount.OpenIDMetadata
}

// loopbackInformers is the loopback client and the informer factory that the
// token authenticator and the admission plugins read through; its informers
// start once the server runs.
func loopbackInformers(loopback *restclient.Config) (kubernetes.Interface, informers.SharedInformerFactory, error) {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return nil, nil, err
	}
	return client, informers.NewSharedInformerFactory(client, 0), nil
}

// ServiceAccountSigningKeyFile is the file of the key that signs
// ServiceAccount tokens: --service-account-signing-key-file or
// <data-dir>/pki/sa.key.
func (o *Options) ServiceAccountSigningKeyFile() string {
	if o.ServiceAccounts.SigningKeyFile != "" {
		return o.ServiceAccounts.SigningKeyFile
	}
	return filepath.Join(o.PKIDir(), "sa.key")
}

// newServiceAccounts loads (or creates) the keys and builds the token
// authenticator, which looks ServiceAccounts and bound objects up through
// client and factory.
func (o *Options) newServiceAccounts(client kubernetes.Interface, factory informers.SharedInformerFactory) (*serviceAccounts, error) {
	s := o.ServiceAccounts
	serviceaccount.RegisterMetrics()
	var signer crypto.Signer
	var err error
	if s.SigningKeyFile != "" {
		signer, err = serviceaccount.LoadSigningKey(s.SigningKeyFile)
	} else {
		signer, err = serviceaccount.EnsureSigningKey(o.ServiceAccountSigningKeyFile())
	}
	if err != nil {
		return nil, fmt.Errorf("service account signing key: %w", err)
	}
	extra, err := serviceaccount.LoadPublicKeys(s.KeyFiles)
	if err != nil {
		return nil, err
	}
	keys := []any{signer}
	for _, k := range extra {
		keys = append(keys, k)
	}
	public, err := serviceaccount.PublicKeys(keys...)
	if err != nil {
		return nil, err
	}
	generator, err := serviceaccount.NewGenerator(s.Issuers[0], signer)
	if err != nil {
		return nil, err
	}
	auds := s.apiAudiences()
	getter := serviceaccount.NewGetter(client, factory)
	sa := &serviceAccounts{
		apiAudiences: auds,
		authenticator: tokenunion.New(
			// As kube-apiserver: the legacy tokens of service-account-token
			// Secrets (issuer kubernetes/serviceaccount, same keys), then
			// the TokenRequest ones.
			serviceaccount.NewLegacyAuthenticator(public, auds, getter, client.CoreV1()),
			serviceaccount.NewAuthenticator(s.Issuers, public, auds, getter)),
		tokens: tokenregistry.Config{
			Generator:             generator,
			Audiences:             auds,
			MaxExpiration:         s.MaxExpiration,
			ExtendExpiration:      s.ExtendExpiration,
			MaxExtendedExpiration: serviceaccount.ExpirationExtensionSeconds * time.Second,
		},
	}
	external := ""
	if ip, err := o.advertiseAddress(); err == nil {
		external = net.JoinHostPort(ip.String(), strconv.Itoa(o.SecurePort))
	}
	sa.metadata, err = serviceaccount.NewOpenIDMetadata(s.Issuers[0], s.JWKSURI, external, public)
	if err != nil {
		klog.InfoS("Not serving the service account issuer discovery endpoints", "reason", err)
	}
	return sa, nil
}

// addTokenREST adds serviceaccounts/token to the core storage map.
func (s *serviceAccounts) addTokenREST(core map[string]rest.Storage) error {
	token, err := tokenregistry.NewTokenREST(core, s.tokens)
	if err != nil {
		return err
	}
	core["serviceaccounts/token"] = token
	return nil
}

// install serves authentication.k8s.io/v1 (its token reviews authenticate
// with authn, the server's whole request authenticator) and the issuer's
// discovery endpoints, and starts the legacy token tracking.
func (s *serviceAccounts) install(server *genericapiserver.GenericAPIServer, authn authenticator.Request) error {
	info := genericapiserver.NewDefaultAPIGroupInfo(authenticationv1.GroupName, apis.Scheme, runtime.NewParameterCodec(apis.Scheme), apis.Codecs)
	info.VersionedResourcesStorageMap["v1"] = authenticationregistry.Storage(authn, s.apiAudiences)
	if err := server.InstallAPIGroup(&info); err != nil {
		return err
	}
	if s.metadata != nil {
		s.metadata.Install(server.Handler.NonGoRestfulMux)
	}
	// The day from which legacy token Secrets carry their last use.
	legacytokentracking.Install(server)
	return nil
}
