package authentication

import (
	"crypto"
	"fmt"
	"net"
	"strconv"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	authenticationregistry "github.com/skiff-dev/skiff/pkg/registry/authentication"
	tokenregistry "github.com/skiff-dev/skiff/pkg/registry/core/serviceaccount"
	"github.com/skiff-dev/skiff/pkg/serviceaccount"
)

// ServiceAccounts is the server's token machinery: the signing and
// verification keys, the token authenticator, serviceaccounts/token,
// authentication.k8s.io/v1 (tokenreviews, selfsubjectreviews) and the OpenID
// Connect discovery endpoints of the issuer.
type ServiceAccounts struct {
	apiAudiences  authenticator.Audiences
	authenticator authenticator.Token
	tokens        tokenregistry.Config
	// metadata is nil when the issuer is not an https URL: then the
	// discovery endpoints are not served, as upstream.
	metadata *serviceaccount.OpenIDMetadata
}

// NewServiceAccounts loads (or creates) the keys and builds the token
// authenticator, which looks ServiceAccounts and bound objects up through
// client and factory.
func NewServiceAccounts(o *options.Options, client kubernetes.Interface, factory informers.SharedInformerFactory) (*ServiceAccounts, error) {
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
	auds := s.Audiences()
	getter := serviceaccount.NewGetter(client, factory)
	sa := &ServiceAccounts{
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
	if ip, err := o.AdvertiseIP(); err == nil {
		external = net.JoinHostPort(ip.String(), strconv.Itoa(o.SecurePort))
	}
	sa.metadata, err = serviceaccount.NewOpenIDMetadata(s.Issuers[0], s.JWKSURI, external, public)
	if err != nil {
		klog.InfoS("Not serving the service account issuer discovery endpoints", "reason", err)
	}
	return sa, nil
}

// APIAudiences are the audiences a token must be meant for.
func (s *ServiceAccounts) APIAudiences() authenticator.Audiences { return s.apiAudiences }

// AddTokenREST adds serviceaccounts/token to the core storage map.
func (s *ServiceAccounts) AddTokenREST(core map[string]rest.Storage) error {
	token, err := tokenregistry.NewTokenREST(core, s.tokens)
	if err != nil {
		return err
	}
	core["serviceaccounts/token"] = token
	return nil
}

// Install serves authentication.k8s.io/v1 (its token reviews authenticate
// with authn, the server's whole request authenticator) and the issuer's
// discovery endpoints.
func (s *ServiceAccounts) Install(server *genericapiserver.GenericAPIServer, authn authenticator.Request) error {
	info := genericapiserver.NewDefaultAPIGroupInfo(authenticationv1.GroupName, apis.Scheme, runtime.NewParameterCodec(apis.Scheme), apis.Codecs)
	info.VersionedResourcesStorageMap["v1"] = authenticationregistry.Storage(authn, s.apiAudiences)
	if err := server.InstallAPIGroup(&info); err != nil {
		return err
	}
	if s.metadata != nil {
		s.metadata.Install(server.Handler.NonGoRestfulMux)
	}
	return nil
}
