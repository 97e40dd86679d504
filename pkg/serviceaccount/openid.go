package serviceaccount

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"k8s.io/klog/v2"
)

const (
	// OpenIDConfigPath serves the OpenID Connect discovery document of the
	// service account issuer.
	OpenIDConfigPath = "/.well-known/openid-configuration"
	// JWKSPath serves the keys that verify service account tokens.
	JWKSPath = "/openid/v1/jwks"

	// cacheControl overrides the server's `private, no-cache`, as upstream.
	cacheControl = "public, max-age=3600"
	mimeJWKS     = "application/jwk-set+json"
)

// OpenIDMetadata is the rendered discovery document and key set.
type OpenIDMetadata struct {
	ConfigJSON []byte
	KeysetJSON []byte
}

// openIDConfiguration is the subset of OIDC provider metadata upstream
// serves: what relying parties need to verify tokens.
type openIDConfiguration struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	ResponseTypes []string `json:"response_types_supported"`
	SubjectTypes  []string `json:"subject_types_supported"`
	SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
}

// NewOpenIDMetadata renders the discovery document of issuerURL (an https
// URL without query or fragment) and the key set of keys. jwksURI, when
// empty, is https://<externalAddress>/openid/v1/jwks.
func NewOpenIDMetadata(issuerURL, jwksURI, externalAddress string, keys []PublicKey) (*OpenIDMetadata, error) {
	iss, err := url.Parse(issuerURL)
	switch {
	case issuerURL == "":
		return nil, fmt.Errorf("empty issuer URL")
	case err != nil:
		return nil, err
	case iss.Scheme != "https":
		return nil, fmt.Errorf("issuer URL must use https scheme, got: %s", issuerURL)
	case iss.RawQuery != "":
		return nil, fmt.Errorf("issuer URL may not include a query, got: %s", issuerURL)
	case iss.Fragment != "":
		return nil, fmt.Errorf("issuer URL may not include a fragment, got: %s", issuerURL)
	}
	if jwksURI == "" {
		if externalAddress == "" {
			return nil, fmt.Errorf("either the JWKS URI or the external address must be set")
		}
		jwksURI = (&url.URL{Scheme: "https", Host: externalAddress, Path: JWKSPath}).String()
	} else if u, err := url.Parse(jwksURI); err != nil {
		return nil, err
	} else if u.Scheme != "https" {
		return nil, fmt.Errorf("jwksURI requires https scheme, parsed as: %v", u.String())
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys provided for validating keyset")
	}

	var set jose.JSONWebKeySet
	var algs []string
	for i, k := range keys {
		alg, err := algorithmFor(k.Key)
		if err != nil {
			return nil, fmt.Errorf("key #%d: %w", i, err)
		}
		jwk := jose.JSONWebKey{Algorithm: string(alg), Key: k.Key, KeyID: k.KeyID, Use: "sig"}
		if !jwk.IsPublic() || !jwk.Valid() {
			return nil, fmt.Errorf("key #%d is not a valid public key", i)
		}
		set.Keys = append(set.Keys, jwk)
		if !slices.Contains(algs, string(alg)) {
			algs = append(algs, string(alg))
		}
	}
	slices.Sort(algs)
	config, err := json.Marshal(openIDConfiguration{
		Issuer:        issuerURL,
		JWKSURI:       jwksURI,
		ResponseTypes: []string{"id_token"},
		SubjectTypes:  []string{"public"},
		SigningAlgs:   algs,
	})
	if err != nil {
		return nil, err
	}
	keyset, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	return &OpenIDMetadata{ConfigJSON: config, KeysetJSON: keyset}, nil
}

// Mux is where Install registers handlers (the apiserver's
// NonGoRestfulMux).
type Mux interface {
	Handle(path string, handler http.Handler)
}

// Install serves the document and the key set on mux, with upstream's
// content types and caching.
func (m *OpenIDMetadata) Install(mux Mux) {
	mux.Handle(OpenIDConfigPath, serve(m.ConfigJSON, "application/json"))
	mux.Handle(JWKSPath, serve(m.KeysetJSON, mimeJWKS))
}

func serve(body []byte, contentType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", cacheControl)
		if _, err := w.Write(body); err != nil {
			klog.ErrorS(err, "Failed to write the service account issuer metadata")
		}
	})
}
