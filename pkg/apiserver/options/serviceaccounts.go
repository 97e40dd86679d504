package options

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

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

// Audiences are the --api-audiences, defaulting to the issuers.
func (s *ServiceAccountOptions) Audiences() []string {
	if len(s.APIAudiences) > 0 {
		return s.APIAudiences
	}
	return s.Issuers
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
