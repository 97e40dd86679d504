package serviceaccount

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/client-go/kubernetes/fake"
)

// legacyFixture: a ServiceAccount, its token Secret holding a legacy token,
// and an authenticator that looks both up and labels the Secret through a
// fake clientset.
type legacyFixture struct {
	*fixture
	legacy authenticator.Token
	client *fake.Clientset
	secret *corev1.Secret
	tok    string
}

func newLegacyFixture(t *testing.T) *legacyFixture {
	t.Helper()
	f := newFixture(t)
	key, err := EnsureSigningKey(filepath.Join(t.TempDir(), "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := NewGenerator(LegacyIssuer, key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := PublicKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: meta("ns1", "default-token", "secret-uid"), Type: corev1.SecretTypeServiceAccountToken}
	public, private := LegacyClaims(f.sa, secret)
	tok, err := gen.GenerateToken(public, private)
	if err != nil {
		t.Fatal(err)
	}
	secret.Data = map[string][]byte{corev1.ServiceAccountTokenKey: []byte(tok)}
	f.getter.secrets["ns1/default-token"] = secret
	client := fake.NewClientset(secret)
	return &legacyFixture{fixture: f, client: client, secret: secret, tok: tok,
		legacy: NewLegacyAuthenticator(keys, authenticator.Audiences{testIssuer}, f.getter, client.CoreV1())}
}

// patches counts the fake clientset's patches of Secrets.
func (f *legacyFixture) patches() int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "secrets" {
			n++
		}
	}
	return n
}

func TestLegacyClaims(t *testing.T) {
	f := newLegacyFixture(t)
	c := payload(t, f.tok)
	want := map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:ns1:default",
		"kubernetes.io/serviceaccount/namespace": "ns1",
		"kubernetes.io/serviceaccount/secret.name":          "default-token",
		"kubernetes.io/serviceaccount/service-account.name": "default",
		"kubernetes.io/serviceaccount/service-account.uid":  "sa-uid",
	}
	if len(c) != len(want) {
		t.Errorf("claims %v, want exactly %v (no aud, exp, iat, jti)", c, want)
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
}

func TestLegacyAuthenticate(t *testing.T) {
	f := newLegacyFixture(t)
	resp, ok, err := f.legacy.AuthenticateToken(context.Background(), f.tok)
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
	if !slices.Equal(resp.Audiences, authenticator.Audiences{testIssuer}) {
		t.Errorf("audiences %v, want the API's", resp.Audiences)
	}

	// The use is recorded on the Secret, once a day.
	got, err := f.client.CoreV1().Secrets("ns1").Get(context.Background(), "default-token", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format("2006-01-02")
	if got.Labels[LastUsedLabelKey] != today || f.patches() != 1 {
		t.Errorf("labels %v after %d patches, want %s=%s after one", got.Labels, f.patches(), LastUsedLabelKey, today)
	}
	f.secret.Labels = map[string]string{LastUsedLabelKey: today}
	if _, ok, err := f.legacy.AuthenticateToken(context.Background(), f.tok); !ok || err != nil {
		t.Fatalf("second use: ok=%v err=%v", ok, err)
	}
	if f.patches() != 1 {
		t.Errorf("%d patches: a Secret already labeled today was labeled again", f.patches())
	}

	// Each authenticator takes only its issuer's tokens.
	if _, ok, err := f.authn.AuthenticateToken(context.Background(), f.tok); ok || err != nil {
		t.Errorf("the bound token authenticator: ok=%v err=%v for a legacy token, want not ours", ok, err)
	}
	if _, ok, err := f.legacy.AuthenticateToken(context.Background(), f.token(Bound{}, 3600)); ok || err != nil {
		t.Errorf("the legacy authenticator: ok=%v err=%v for a bound token, want not ours", ok, err)
	}
}

func TestLegacyAuthenticateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *legacyFixture)
		want   string
	}{
		{"secret deleted", func(f *legacyFixture) { delete(f.getter.secrets, "ns1/default-token") }, "Token has been invalidated"},
		{"secret being deleted", func(f *legacyFixture) { f.secret.DeletionTimestamp = &metav1.Time{Time: time.Now()} }, "Token has been invalidated"},
		{"secret holds another token", func(f *legacyFixture) { f.secret.Data["token"] = []byte("other") }, "Token does not match server's copy"},
		{"secret without token", func(f *legacyFixture) { delete(f.secret.Data, "token") }, "Token does not match server's copy"},
		{"service account deleted", func(f *legacyFixture) { delete(f.getter.sas, "ns1/default") }, `serviceaccounts "ns1/default" not found`},
		{"service account being deleted", func(f *legacyFixture) { f.sa.DeletionTimestamp = &metav1.Time{Time: time.Now()} }, "ServiceAccount ns1/default has been deleted"},
		{"service account recreated", func(f *legacyFixture) { f.sa.UID = "new-uid" }, "ServiceAccount UID (new-uid) does not match claim (sa-uid)"},
		{"marked invalid", func(f *legacyFixture) {
			f.secret.Labels = map[string]string{InvalidSinceLabelKey: "2026-01-01"}
		}, "the token in secret ns1/default-token for service account ns1/default has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the 'kubernetes.io/legacy-token-invalid-since' label from the secret to temporarily allow use of this token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLegacyFixture(t)
			tc.change(f)
			_, ok, err := f.legacy.AuthenticateToken(context.Background(), f.tok)
			if ok || err == nil || err.Error() != tc.want {
				t.Errorf("ok=%v err=%v, want %q", ok, err, tc.want)
			}
		})
	}

	// Claims that do not hold together, signed with the right key.
	f := newLegacyFixture(t)
	key, err := EnsureSigningKey(filepath.Join(t.TempDir(), "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := PublicKeys(key)
	gen, _ := NewGenerator(LegacyIssuer, key)
	authn := NewLegacyAuthenticator(keys, authenticator.Audiences{testIssuer}, f.getter, f.client.CoreV1())
	for _, tc := range []struct {
		name   string
		change func(p *LegacyPrivateClaims, sub *string)
		want   string
	}{
		{"no namespace", func(p *LegacyPrivateClaims, _ *string) { p.Namespace = "" }, "namespace claim is missing"},
		{"no secret", func(p *LegacyPrivateClaims, _ *string) { p.SecretName = "" }, "secretName claim is missing"},
		{"no name", func(p *LegacyPrivateClaims, _ *string) { p.ServiceAccountName = "" }, "serviceAccountName claim is missing"},
		{"no uid", func(p *LegacyPrivateClaims, _ *string) { p.ServiceAccountUID = "" }, "serviceAccountUID claim is missing"},
		{"no sub", func(_ *LegacyPrivateClaims, sub *string) { *sub = "" }, "sub claim is missing"},
		{"sub of another", func(_ *LegacyPrivateClaims, sub *string) { *sub = "system:serviceaccount:ns1:admin" }, "sub claim is invalid"},
	} {
		public, private := LegacyClaims(f.sa, f.secret)
		tc.change(private, &public.Subject)
		tok, err := gen.GenerateToken(public, private)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := authn.AuthenticateToken(context.Background(), tok); ok || err == nil || err.Error() != tc.want {
			t.Errorf("%s: ok=%v err=%v, want %q", tc.name, ok, err, tc.want)
		}
	}

	// Signed by a key the server does not have.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	gen, _ = NewGenerator(LegacyIssuer, other)
	public, private := LegacyClaims(f.sa, f.secret)
	forged, _ := gen.GenerateToken(public, private)
	f.secret.Data["token"] = []byte(forged)
	if _, ok, err := f.legacy.AuthenticateToken(context.Background(), forged); ok || err == nil || !strings.Contains(err.Error(), "no keys found") {
		t.Errorf("forged token: ok=%v err=%v", ok, err)
	}
	if n := len(f.client.Actions()); n != 0 {
		t.Errorf("refused tokens made %d requests: %v", n, f.client.Actions())
	}
}
