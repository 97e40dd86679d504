package serviceaccount

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	apiserverserviceaccount "k8s.io/apiserver/pkg/authentication/serviceaccount"
)

// signatureAlgorithms are the algorithms tokens may be signed with: those
// of the RSA and ECDSA keys a signer accepts.
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512}

// Generator signs tokens.
type Generator interface {
	// GenerateToken signs the claims into a compact JWT. Public claims win
	// over private ones (a struct marshalled at the payload's top level) of
	// the same name; the issuer is the generator's.
	GenerateToken(public *jwt.Claims, private any) (string, error)
}

type generator struct {
	issuer string
	signer jose.Signer
}

// NewGenerator returns a Generator that signs as issuer with key (RSA:
// RS256; ECDSA P-256/384/521: ES256/384/512), naming the key's ID in the
// `kid` header.
func NewGenerator(issuer string, key crypto.Signer) (Generator, error) {
	alg, err := algorithmFor(key.Public())
	if err != nil {
		return nil, err
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: alg,
		Key:       &jose.JSONWebKey{Algorithm: string(alg), Key: key, KeyID: kid, Use: "sig"},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating the token signer: %w", err)
	}
	return &generator{issuer: issuer, signer: signer}, nil
}

func (g *generator) GenerateToken(public *jwt.Claims, private any) (string, error) {
	// Claims merge in order, the last winning.
	last := map[string]any{"iss": g.issuer}
	if len(public.Audience) > 0 {
		// `aud` is always a list, as upstream's tokens have it (go-jose v4
		// writes a single audience as a string).
		last["aud"] = []string(public.Audience)
	}
	return jwt.Signed(g.signer).
		Claims(private).
		Claims(public).
		Claims(last).
		Serialize()
}

// algorithmFor is the signature algorithm of a public key.
func algorithmFor(public crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := public.(type) {
	case *rsa.PublicKey:
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
		return "", errors.New("unknown ECDSA curve, must be P-256, P-384 or P-521")
	}
	return "", fmt.Errorf("unsupported key type %T, must be RSA or ECDSA", public)
}

// tokenAuthenticator accepts the tokens of a Generator whose private
// claims are a P, which validate checks.
type tokenAuthenticator[P any] struct {
	issuers      map[string]bool
	keys         []PublicKey
	implicitAuds authenticator.Audiences
	// validate checks the claims of a token whose signature, issuer and
	// audience were verified, and names its user.
	validate func(ctx context.Context, token string, public *jwt.Claims, private *P) (*apiserverserviceaccount.ServiceAccountInfo, error)
}

// NewAuthenticator returns an authenticator of tokens issued by one of
// issuers and signed by one of keys. A token must be meant for one of the
// request's audiences (implicitAuds, the API audiences, when the request
// names none), be within its validity, and name a ServiceAccount (and bound
// object) that getter still finds with the same UID. The user is
// system:serviceaccount:<namespace>:<name>.
func NewAuthenticator(issuers []string, keys []PublicKey, implicitAuds authenticator.Audiences, getter Getter) authenticator.Token {
	return newTokenAuthenticator(issuers, keys, implicitAuds,
		func(ctx context.Context, _ string, public *jwt.Claims, private *PrivateClaims) (*apiserverserviceaccount.ServiceAccountInfo, error) {
			return validate(ctx, getter, public, private)
		})
}

func newTokenAuthenticator[P any](issuers []string, keys []PublicKey, implicitAuds authenticator.Audiences,
	validate func(context.Context, string, *jwt.Claims, *P) (*apiserverserviceaccount.ServiceAccountInfo, error)) *tokenAuthenticator[P] {
	a := &tokenAuthenticator[P]{issuers: map[string]bool{}, keys: keys, implicitAuds: implicitAuds, validate: validate}
	for _, iss := range issuers {
		a.issuers[iss] = true
	}
	return a
}

func (a *tokenAuthenticator[P]) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	// Not one of ours: let the other authenticators try.
	if !a.hasOurIssuer(token) {
		return nil, false, nil
	}
	tok, err := jwt.ParseSigned(token, signatureAlgorithms)
	if err != nil {
		return nil, false, nil
	}
	var kid string
	for _, h := range tok.Headers {
		if h.KeyID != "" {
			kid = h.KeyID
			break
		}
	}
	public, private := &jwt.Claims{}, new(P)
	var (
		verified bool
		errs     []error
		tried    int
	)
	for _, key := range a.keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		tried++
		if err := tok.Claims(key.Key, public, private); err != nil {
			errs = append(errs, err)
			continue
		}
		verified = true
		break
	}
	if tried == 0 {
		return nil, false, errors.New("invalid signature, no keys found")
	}
	if !verified {
		return nil, false, utilerrors.NewAggregate(errs)
	}
	// The issuer was read before the signature was checked: check again.
	if !a.issuers[public.Issuer] {
		return nil, false, fmt.Errorf("token issuer %q is invalid", public.Issuer)
	}

	tokenAuds := authenticator.Audiences(public.Audience)
	if len(tokenAuds) == 0 {
		// Legacy tokens (no audience) are meant for the API server.
		audit.AddAuditAnnotation(ctx, "authentication.k8s.io/legacy-token", public.Subject)
		legacyTokensTotal.WithContext(ctx).Inc()
		tokenAuds = a.implicitAuds
	}
	requested, ok := authenticator.AudiencesFrom(ctx)
	if !ok {
		requested = a.implicitAuds
	}
	auds := tokenAuds.Intersect(requested)
	if len(auds) == 0 && len(a.implicitAuds) != 0 {
		return nil, false, fmt.Errorf("token audiences %q is invalid for the target audiences %q", tokenAuds, requested)
	}

	info, err := a.validate(ctx, token, public, private)
	if err != nil {
		return nil, false, err
	}
	return &authenticator.Response{User: info.UserInfo(), Audiences: auds}, true, nil
}

// hasOurIssuer reads the unverified `iss` claim of a compact JWT.
func (a *tokenAuthenticator[P]) hasOurIssuer(token string) bool {
	if strings.HasPrefix(strings.TrimSpace(token), "{") {
		return false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return false
	}
	return a.issuers[claims.Issuer]
}
