package serviceaccount

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	apiserverserviceaccount "k8s.io/apiserver/pkg/authentication/serviceaccount"
)

const testIssuer = "https://kubernetes.default.svc.cluster.local"

// fakeGetter holds the objects tokens may name.
type fakeGetter struct {
	sas     map[string]*corev1.ServiceAccount
	pods    map[string]*corev1.Pod
	secrets map[string]*corev1.Secret
	nodes   map[string]*corev1.Node
}

func newFakeGetter() *fakeGetter {
	return &fakeGetter{sas: map[string]*corev1.ServiceAccount{}, pods: map[string]*corev1.Pod{},
		secrets: map[string]*corev1.Secret{}, nodes: map[string]*corev1.Node{}}
}

func get[T any](m map[string]*T, resource, key string) (*T, error) {
	if o, ok := m[key]; ok {
		return o, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource(resource), key)
}

func (g *fakeGetter) GetServiceAccount(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	return get(g.sas, "serviceaccounts", ns+"/"+name)
}
func (g *fakeGetter) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	return get(g.pods, "pods", ns+"/"+name)
}
func (g *fakeGetter) GetSecret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	return get(g.secrets, "secrets", ns+"/"+name)
}
func (g *fakeGetter) GetNode(_ context.Context, name string) (*corev1.Node, error) {
	return get(g.nodes, "nodes", name)
}

func meta(ns, name, uid string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}
}

// fixture is a signing key, a generator, an authenticator and its objects.
type fixture struct {
	t      *testing.T
	gen    Generator
	authn  authenticator.Token
	getter *fakeGetter
	sa     *corev1.ServiceAccount
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := EnsureSigningKey(filepath.Join(t.TempDir(), "pki", "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := NewGenerator(testIssuer, key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := PublicKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	g := newFakeGetter()
	sa := &corev1.ServiceAccount{ObjectMeta: meta("ns1", "default", "sa-uid")}
	g.sas["ns1/default"] = sa
	return &fixture{t: t, gen: gen, getter: g, sa: sa,
		authn: NewAuthenticator([]string{testIssuer, "https://old.example"}, keys, authenticator.Audiences{testIssuer}, g)}
}

func (f *fixture) token(bound Bound, expirationSeconds int64, auds ...string) string {
	f.t.Helper()
	if len(auds) == 0 {
		auds = []string{testIssuer}
	}
	public, private, err := Claims(f.sa, bound, expirationSeconds, 0, auds)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.gen.GenerateToken(public, private)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fixture) authenticate(tok string, auds ...string) (*authenticator.Response, bool, error) {
	ctx := context.Background()
	if len(auds) > 0 {
		ctx = authenticator.WithAudiences(ctx, auds)
	}
	return f.authn.AuthenticateToken(ctx, tok)
}

// payload decodes a JWT's claims without verifying it.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", tok)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTokenClaims(t *testing.T) {
	f := newFixture(t)
	pod := &corev1.Pod{ObjectMeta: meta("ns1", "p", "pod-uid")}
	node := &corev1.Node{ObjectMeta: meta("", "n1", "node-uid")}
	before := time.Now().Unix()
	tok := f.token(Bound{Pod: pod, Node: node}, 3600, "aud1", "aud2")
	c := payload(t, tok)

	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if !strings.Contains(string(header), `"alg":"RS256"`) || !strings.Contains(string(header), `"kid":"`) {
		t.Errorf("header %s: want alg RS256 and a kid", header)
	}
	if c["iss"] != testIssuer || c["sub"] != "system:serviceaccount:ns1:default" {
		t.Errorf("iss %v sub %v", c["iss"], c["sub"])
	}
	if auds, _ := c["aud"].([]any); len(auds) != 2 || auds[0] != "aud1" || auds[1] != "aud2" {
		t.Errorf("aud = %v", c["aud"])
	}
	// A single audience is a list too, as upstream writes it.
	if auds, _ := payload(t, f.token(Bound{}, 600))["aud"].([]any); len(auds) != 1 || auds[0] != testIssuer {
		t.Errorf("single aud = %v", auds)
	}
	iat, exp := int64(c["iat"].(float64)), int64(c["exp"].(float64))
	if iat < before || exp-iat != 3600 || int64(c["nbf"].(float64)) != iat {
		t.Errorf("iat %d nbf %v exp %d", iat, c["nbf"], exp)
	}
	if id, _ := c["jti"].(string); len(id) != 36 {
		t.Errorf("jti = %v, want a UUID", c["jti"])
	}
	k, _ := json.Marshal(c["kubernetes.io"])
	want := `{"namespace":"ns1","node":{"name":"n1","uid":"node-uid"},"pod":{"name":"p","uid":"pod-uid"},"serviceaccount":{"name":"default","uid":"sa-uid"}}`
	if string(k) != want {
		t.Errorf("kubernetes.io = %s\nwant %s", k, want)
	}

	secret := &corev1.Secret{ObjectMeta: meta("ns1", "s", "secret-uid")}
	if _, _, err := Claims(f.sa, Bound{Pod: pod, Secret: secret}, 3600, 0, nil); err == nil {
		t.Error("a token bound to a pod and a secret was built")
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	tok := f.token(Bound{}, 3600)
	resp, ok, err := f.authenticate(tok)
	if err != nil || !ok {
		t.Fatalf("authenticate: ok=%v err=%v", ok, err)
	}
	u := resp.User
	if u.GetName() != "system:serviceaccount:ns1:default" || u.GetUID() != "sa-uid" {
		t.Errorf("user %q uid %q", u.GetName(), u.GetUID())
	}
	if want := []string{"system:serviceaccounts", "system:serviceaccounts:ns1"}; !slices.Equal(u.GetGroups(), want) {
		t.Errorf("groups %v, want %v", u.GetGroups(), want)
	}
	if id := u.GetExtra()["authentication.kubernetes.io/credential-id"]; len(id) != 1 || !strings.HasPrefix(id[0], "JTI=") {
		t.Errorf("credential id %v", id)
	}
	if !slices.Equal(resp.Audiences, authenticator.Audiences{testIssuer}) {
		t.Errorf("audiences %v", resp.Audiences)
	}
}

func TestAuthenticateRefuses(t *testing.T) {
	f := newFixture(t)
	good := f.token(Bound{}, 3600)

	t.Run("not a JWT of ours", func(t *testing.T) {
		// Other authenticators get their chance: no error.
		for _, tok := range []string{"abc", "a.b.c", `{"iss":"x"}`} {
			if _, ok, err := f.authenticate(tok); ok || err != nil {
				t.Errorf("%q: ok=%v err=%v, want not ours", tok, ok, err)
			}
		}
		other := newFixture(t)
		other.gen, _ = NewGenerator("https://elsewhere.example", mustECKey(t))
		if _, ok, err := f.authenticate(other.token(Bound{}, 3600)); ok || err != nil {
			t.Errorf("foreign issuer: ok=%v err=%v", ok, err)
		}
	})
	t.Run("signed by another key", func(t *testing.T) {
		other := newFixture(t) // same issuer, its own key
		if _, ok, err := f.authenticate(other.token(Bound{}, 3600)); ok || err == nil {
			t.Errorf("ok=%v err=%v, want refused", ok, err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		parts := strings.Split(good, ".")
		c := payload(t, good)
		c["sub"] = "system:serviceaccount:ns1:admin"
		data, _ := json.Marshal(c)
		bad := parts[0] + "." + base64.RawURLEncoding.EncodeToString(data) + "." + parts[2]
		if _, ok, err := f.authenticate(bad); ok || err == nil {
			t.Errorf("ok=%v err=%v, want refused", ok, err)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		if _, ok, err := f.authenticate(f.token(Bound{}, 3600, "vault")); ok || err == nil || !strings.Contains(err.Error(), "audiences") {
			t.Errorf("ok=%v err=%v, want refused for its audience", ok, err)
		}
		if _, ok, err := f.authenticate(good, "vault"); ok || err == nil {
			t.Errorf("API token for audience vault: ok=%v err=%v", ok, err)
		}
		if resp, ok, err := f.authenticate(f.token(Bound{}, 3600, "vault"), "vault"); !ok || err != nil || !slices.Equal(resp.Audiences, authenticator.Audiences{"vault"}) {
			t.Errorf("vault token for vault: ok=%v err=%v", ok, err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		defer func(orig func() time.Time) { now = orig }(now)
		tok := f.token(Bound{}, 600)
		now = func() time.Time { return time.Now().Add(12 * time.Minute) }
		if _, ok, err := f.authenticate(tok); ok || err == nil || !strings.Contains(err.Error(), "expired") {
			t.Errorf("ok=%v err=%v, want expired", ok, err)
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		defer func(orig func() time.Time) { now = orig }(now)
		now = func() time.Time { return time.Now().Add(time.Hour) }
		tok := f.token(Bound{}, 3600)
		now = time.Now
		if _, ok, err := f.authenticate(tok); ok || err == nil {
			t.Errorf("ok=%v err=%v, want refused", ok, err)
		}
	})
	t.Run("service account deleted", func(t *testing.T) {
		delete(f.getter.sas, "ns1/default")
		defer func() { f.getter.sas["ns1/default"] = f.sa }()
		if _, ok, err := f.authenticate(good); ok || !apierrors.IsNotFound(err) {
			t.Errorf("ok=%v err=%v, want not found", ok, err)
		}
	})
	t.Run("service account recreated", func(t *testing.T) {
		f.getter.sas["ns1/default"] = &corev1.ServiceAccount{ObjectMeta: meta("ns1", "default", "new-uid")}
		defer func() { f.getter.sas["ns1/default"] = f.sa }()
		if _, ok, err := f.authenticate(good); ok || err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("ok=%v err=%v, want UID mismatch", ok, err)
		}
	})
	t.Run("service account being deleted", func(t *testing.T) {
		gone := f.sa.DeepCopy()
		gone.DeletionTimestamp = &metav1.Time{Time: time.Now().Add(-2 * time.Minute)}
		f.getter.sas["ns1/default"] = gone
		defer func() { f.getter.sas["ns1/default"] = f.sa }()
		if _, ok, err := f.authenticate(good); ok || err == nil {
			t.Errorf("ok=%v err=%v, want refused", ok, err)
		}
	})
}

func TestBoundTokens(t *testing.T) {
	f := newFixture(t)
	pod := &corev1.Pod{ObjectMeta: meta("ns1", "p", "pod-uid")}
	secret := &corev1.Secret{ObjectMeta: meta("ns1", "s", "secret-uid")}
	node := &corev1.Node{ObjectMeta: meta("", "n1", "node-uid")}
	f.getter.pods["ns1/p"], f.getter.secrets["ns1/s"], f.getter.nodes["n1"] = pod, secret, node

	podToken := f.token(Bound{Pod: pod, Node: node}, 3600)
	resp, ok, err := f.authenticate(podToken)
	if !ok || err != nil {
		t.Fatalf("pod-bound: ok=%v err=%v", ok, err)
	}
	extra := resp.User.GetExtra()
	for k, want := range map[string]string{
		apiserverserviceaccount.PodNameKey: "p", apiserverserviceaccount.PodUIDKey: "pod-uid",
		apiserverserviceaccount.NodeNameKey: "n1", apiserverserviceaccount.NodeUIDKey: "node-uid",
	} {
		if got := extra[k]; len(got) != 1 || got[0] != want {
			t.Errorf("extra %s = %v, want %s", k, got, want)
		}
	}
	secretToken := f.token(Bound{Secret: secret}, 3600)
	nodeToken := f.token(Bound{Node: node}, 3600)
	for name, tok := range map[string]string{"secret": secretToken, "node": nodeToken} {
		if _, ok, err := f.authenticate(tok); !ok || err != nil {
			t.Errorf("%s-bound: ok=%v err=%v", name, ok, err)
		}
	}

	// The bound object goes, or is replaced: the token goes with it.
	f.getter.pods["ns1/p"] = &corev1.Pod{ObjectMeta: meta("ns1", "p", "other")}
	delete(f.getter.secrets, "ns1/s")
	f.getter.nodes["n1"] = &corev1.Node{ObjectMeta: meta("", "n1", "other")}
	for name, tok := range map[string]string{"pod": podToken, "secret": secretToken, "node": nodeToken} {
		if _, ok, err := f.authenticate(tok); ok || err == nil {
			t.Errorf("%s-bound after its object changed: ok=%v err=%v", name, ok, err)
		}
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sa.key")
	k1, err := EnsureSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	k2, err := EnsureSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := KeyID(k1.Public())
	id2, _ := KeyID(k2.Public())
	if id1 != id2 {
		t.Error("the key was not reused on the second start")
	}
	keys, err := PublicKeys(k1, k1.Public(), k2)
	if err != nil || len(keys) != 1 || keys[0].KeyID != id1 {
		t.Errorf("PublicKeys: %v %v", keys, err)
	}
	if _, err := LoadPublicKeys([]string{path}); err != nil {
		t.Errorf("a private key file as --service-account-key-file: %v", err)
	}
}

func mustECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestECDSAKey(t *testing.T) {
	key := mustECKey(t)
	gen, err := NewGenerator(testIssuer, key)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := PublicKeys(key)
	g := newFakeGetter()
	sa := &corev1.ServiceAccount{ObjectMeta: meta("ns1", "default", "sa-uid")}
	g.sas["ns1/default"] = sa
	public, private, _ := Claims(sa, Bound{}, 3600, 0, []string{testIssuer})
	tok, err := gen.GenerateToken(public, private)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := NewAuthenticator([]string{testIssuer}, keys, authenticator.Audiences{testIssuer}, g).AuthenticateToken(context.Background(), tok); !ok || err != nil {
		t.Errorf("ES256 token: ok=%v err=%v", ok, err)
	}
}

func TestOpenIDMetadata(t *testing.T) {
	rsaKey, err := EnsureSigningKey(filepath.Join(t.TempDir(), "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := PublicKeys(rsaKey, mustECKey(t))
	md, err := NewOpenIDMetadata(testIssuer, "", "10.0.0.1:6443", keys)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(md.ConfigJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	want := `{"id_token_signing_alg_values_supported":["ES256","RS256"],"issuer":"https://kubernetes.default.svc.cluster.local","jwks_uri":"https://10.0.0.1:6443/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"]}`
	if got, _ := json.Marshal(cfg); string(got) != want {
		t.Errorf("discovery document\n got %s\nwant %s", got, want)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(md.KeysetJSON, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("key set %s: %v", md.KeysetJSON, err)
	}
	rsaJWK := set.Keys[0]
	if rsaJWK["kty"] != "RSA" || rsaJWK["alg"] != "RS256" || rsaJWK["use"] != "sig" || rsaJWK["kid"] != keys[0].KeyID || rsaJWK["e"] != "AQAB" || rsaJWK["d"] != nil {
		t.Errorf("RSA JWK %v", rsaJWK)
	}

	mux := http.NewServeMux()
	md.Install(mux)
	for path, ctype := range map[string]string{OpenIDConfigPath: "application/json", JWKSPath: "application/jwk-set+json"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || rec.Header().Get("Content-Type") != ctype || rec.Header().Get("Cache-Control") != "public, max-age=3600" {
			t.Errorf("GET %s: %d %v", path, rec.Code, rec.Header())
		}
	}

	for _, iss := range []string{"", "http://x", "https://x?q=1", "https://x#f"} {
		if _, err := NewOpenIDMetadata(iss, "", "a:1", keys); err == nil {
			t.Errorf("issuer %q accepted", iss)
		}
	}
	if md, err := NewOpenIDMetadata(testIssuer, "https://keys.example/jwks", "", keys); err != nil || !strings.Contains(string(md.ConfigJSON), `"jwks_uri":"https://keys.example/jwks"`) {
		t.Errorf("explicit jwks_uri: %v", err)
	}
}
