package bootstraptoken

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func tokenSecret(id string, data map[string]string, mutate ...func(*corev1.Secret)) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: SecretName(id)},
		Type:       SecretType,
		Data:       map[string][]byte{},
	}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func TestAuthenticateToken(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	valid := map[string]string{IDKey: "abcdef", SecretKey: "0123456789abcdef", UsageAuthenticationKey: "true"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range valid {
			out[k] = v
		}
		for k, v := range extra {
			if v == "-" {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name       string
		secret     *corev1.Secret
		token      string
		wantOK     bool
		wantGroups []string
	}{
		{"valid", tokenSecret("abcdef", valid), "abcdef.0123456789abcdef", true, []string{"system:bootstrappers"}},
		{"extra groups", tokenSecret("abcdef", with(map[string]string{ExtraGroupsKey: "system:bootstrappers:kubeadm:default-node-token,system:bootstrappers:kubeadm:default-node-token"})),
			"abcdef.0123456789abcdef", true, []string{"system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"}},
		{"not yet expired", tokenSecret("abcdef", with(map[string]string{ExpirationKey: now.Add(time.Minute).Format(time.RFC3339)})), "abcdef.0123456789abcdef", true, []string{"system:bootstrappers"}},
		{"expired", tokenSecret("abcdef", with(map[string]string{ExpirationKey: now.Add(-time.Second).Format(time.RFC3339)})), "abcdef.0123456789abcdef", false, nil},
		{"bad expiration", tokenSecret("abcdef", with(map[string]string{ExpirationKey: "tomorrow"})), "abcdef.0123456789abcdef", false, nil},
		{"wrong secret", tokenSecret("abcdef", valid), "abcdef.0123456789abcdee", false, nil},
		{"wrong id key", tokenSecret("abcdef", with(map[string]string{IDKey: "abcdeg"})), "abcdef.0123456789abcdef", false, nil},
		{"no usage", tokenSecret("abcdef", with(map[string]string{UsageAuthenticationKey: "-"})), "abcdef.0123456789abcdef", false, nil},
		{"usage false", tokenSecret("abcdef", with(map[string]string{UsageAuthenticationKey: "false"})), "abcdef.0123456789abcdef", false, nil},
		{"bad extra group", tokenSecret("abcdef", with(map[string]string{ExtraGroupsKey: "system:masters"})), "abcdef.0123456789abcdef", false, nil},
		{"wrong type", tokenSecret("abcdef", valid, func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }), "abcdef.0123456789abcdef", false, nil},
		{"being deleted", tokenSecret("abcdef", valid, func(s *corev1.Secret) { s.DeletionTimestamp = &metav1.Time{Time: now} }), "abcdef.0123456789abcdef", false, nil},
		{"other namespace", tokenSecret("abcdef", valid, func(s *corev1.Secret) { s.Namespace = "default" }), "abcdef.0123456789abcdef", false, nil},
		{"no secret", tokenSecret("zzzzzz", valid), "abcdef.0123456789abcdef", false, nil},
		{"malformed token", tokenSecret("abcdef", valid), "abcdef.0123456789ABCDEF", false, nil},
		{"a jwt", tokenSecret("abcdef", valid), "eyJhbGciOiJSUzI1NiJ9.e30.sig", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			if err := indexer.Add(tt.secret); err != nil {
				t.Fatal(err)
			}
			a := NewAuthenticator(corev1listers.NewSecretLister(indexer).Secrets(Namespace))
			a.now = func() time.Time { return now }
			resp, ok, err := a.AuthenticateToken(context.Background(), tt.token)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if resp.User.GetName() != "system:bootstrap:abcdef" {
				t.Errorf("user %q", resp.User.GetName())
			}
			if !slices.Equal(resp.User.GetGroups(), tt.wantGroups) {
				t.Errorf("groups %v, want %v", resp.User.GetGroups(), tt.wantGroups)
			}
		})
	}
}

func TestParseSecretName(t *testing.T) {
	if id, ok := ParseSecretName("bootstrap-token-abc123"); !ok || id != "abc123" {
		t.Errorf("got %q %v", id, ok)
	}
	for _, bad := range []string{"bootstrap-token-abc12", "bootstrap-token-ABC123", "token-abc123", "bootstrap-token-abc1234"} {
		if _, ok := ParseSecretName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
