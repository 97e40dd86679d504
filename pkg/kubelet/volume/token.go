package volume

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

const (
	defaultTokenExpirationSeconds int64 = 3600
	// maxTokenAge is upstream's maxTTL: a token is renewed after a day
	// whatever its lifetime.
	maxTokenAge = 24 * time.Hour
)

type tokenKey struct {
	uid            types.UID
	serviceAccount string
	audience       string
	expiration     int64
}

type cachedToken struct {
	token   string
	issued  time.Time
	expires time.Time
}

// stale: older than 80 % of its lifetime or a day, as upstream's token
// manager.
func (t *cachedToken) stale(now time.Time) bool {
	lifetime := t.expires.Sub(t.issued)
	return !now.Before(t.issued.Add(lifetime*8/10)) || !now.Before(t.issued.Add(maxTokenAge))
}

// serviceAccountToken is a TokenRequest for the pod's service account,
// bound to the pod, renewed when stale.
func (m *Manager) serviceAccountToken(ctx context.Context, pod *corev1.Pod, volume string, tp *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := defaultTokenExpirationSeconds
	if tp.ExpirationSeconds != nil {
		exp = *tp.ExpirationSeconds
	}
	key := tokenKey{uid: pod.UID, serviceAccount: sa, audience: tp.Audience, expiration: exp}
	now := m.Clock.Now()
	m.mu.Lock()
	cached := m.tokens[key]
	m.mu.Unlock()
	if cached != nil && !cached.stale(now) {
		return cached.token, nil
	}
	if m.Client == nil {
		return "", fmt.Errorf("no API client to request a token for service account %s/%s", pod.Namespace, sa)
	}
	var audiences []string
	if tp.Audience != "" {
		audiences = []string{tp.Audience}
	}
	tr, err := m.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         audiences,
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		if cached != nil && now.Before(cached.expires) {
			// Keep serving the still valid token; the next refresh retries.
			klog.ErrorS(err, "Token not renewed, keeping the current one", "pod", klog.KObj(pod), "volume", volume, "serviceAccount", sa)
			return cached.token, nil
		}
		return "", fmt.Errorf("failed to fetch token: %w", err)
	}
	expires := tr.Status.ExpirationTimestamp.Time
	if expires.IsZero() || !expires.After(now) {
		expires = now.Add(time.Duration(exp) * time.Second)
	}
	m.mu.Lock()
	m.tokens[key] = &cachedToken{token: tr.Status.Token, issued: now, expires: expires}
	m.mu.Unlock()
	klog.V(3).InfoS("Service account token issued", "pod", klog.KObj(pod), "volume", volume, "serviceAccount", sa, "expires", expires)
	return tr.Status.Token, nil
}

func (m *Manager) forgetTokens(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.tokens {
		if k.uid == uid {
			delete(m.tokens, k)
		}
	}
}
