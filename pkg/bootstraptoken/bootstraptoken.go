// Package bootstraptoken implements bootstrap tokens as upstream does
// (k8s.io/cluster-bootstrap and kube-apiserver's bootstrap token
// authenticator): Secrets `bootstrap-token-<id>` of type
// `bootstrap.kubernetes.io/token` in kube-system whose bearer tokens
// `<id>.<secret>` authenticate as `system:bootstrap:<id>` in the group
// `system:bootstrappers` (plus the Secret's auth-extra-groups) until their
// expiration, while the Secret says usage-bootstrap-authentication=true.
package bootstraptoken

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The names and keys of bootstrap token Secrets, as k8s.io/cluster-bootstrap's
// token/api.
const (
	// Namespace holds the bootstrap token Secrets.
	Namespace = metav1.NamespaceSystem
	// SecretPrefix starts the name of a bootstrap token Secret; the token
	// id follows.
	SecretPrefix = "bootstrap-token-"
	// SecretType is the type of bootstrap token Secrets.
	SecretType corev1.SecretType = "bootstrap.kubernetes.io/token"

	IDKey                  = "token-id"
	SecretKey              = "token-secret"
	ExpirationKey          = "expiration"
	DescriptionKey         = "description"
	ExtraGroupsKey         = "auth-extra-groups"
	UsageAuthenticationKey = "usage-bootstrap-authentication"
	UsageSigningKey        = "usage-bootstrap-signing"

	// UserPrefix starts the user name of a token: system:bootstrap:<id>.
	UserPrefix = "system:bootstrap:"
	// DefaultGroup is every bootstrap token user's group.
	DefaultGroup = "system:bootstrappers"
)

var (
	tokenRE      = regexp.MustCompile(`\A([a-z0-9]{6})\.([a-z0-9]{16})\z`)
	secretNameRE = regexp.MustCompile(`\A` + regexp.QuoteMeta(SecretPrefix) + `([a-z0-9]{6})\z`)
	extraGroupRE = regexp.MustCompile(`\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`)
)

// ParseToken splits `<id>.<secret>` (6 and 16 characters of [a-z0-9]).
func ParseToken(token string) (id, secret string, ok bool) {
	m := tokenRE.FindStringSubmatch(token)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// ParseSecretName returns the token id of a Secret named bootstrap-token-<id>.
func ParseSecretName(name string) (id string, ok bool) {
	m := secretNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// SecretName is the name of the Secret of the token id.
func SecretName(id string) string { return SecretPrefix + id }

// Data returns secret.Data[key] as a string, "" when missing.
func Data(secret *corev1.Secret, key string) string {
	return string(secret.Data[key])
}

// Expiration returns how long the token has left, and whether it has
// expired at now. A token without an expiration never expires; one with an
// unparseable expiration (not RFC 3339) counts as expired, as upstream.
func Expiration(secret *corev1.Secret, now time.Time) (remaining time.Duration, expired bool) {
	value := Data(secret, ExpirationKey)
	if value == "" {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return 0, true
	}
	remaining = t.Sub(now)
	if remaining <= 0 {
		return 0, true
	}
	return remaining, false
}

// Groups returns system:bootstrappers and the Secret's auth-extra-groups
// (comma-separated, each system:bootstrappers:<something>), sorted and
// without duplicates.
func Groups(secret *corev1.Secret) ([]string, error) {
	groups := []string{DefaultGroup}
	if extra := Data(secret, ExtraGroupsKey); extra != "" {
		for _, g := range strings.Split(extra, ",") {
			if !extraGroupRE.MatchString(g) {
				return nil, fmt.Errorf("%q (in %s) does not match %s", g, ExtraGroupsKey, extraGroupRE)
			}
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}
