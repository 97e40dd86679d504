package serviceaccount

// Legacy tokens: the long-lived tokens that the tokens controller writes
// into Secrets of type kubernetes.io/service-account-token, as upstream's
// pkg/serviceaccount/legacy.go. They have no audience and no expiry; they
// are valid while their Secret holds them and their ServiceAccount exists.

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4/jwt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	apiserverserviceaccount "k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/warning"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"
)

const (
	// LegacyIssuer is the `iss` of legacy tokens.
	LegacyIssuer = "kubernetes/serviceaccount"
	// InvalidSinceLabelKey on a token Secret refuses its token.
	InvalidSinceLabelKey = "kubernetes.io/legacy-token-invalid-since"
	// LastUsedLabelKey on a token Secret is the day (UTC) its token was
	// last used.
	LastUsedLabelKey = "kubernetes.io/legacy-token-last-used"

	lastUsedDateFormat = "2006-01-02"
)

// LegacyPrivateClaims are the claims of a legacy token besides `iss` and
// `sub`, at the payload's top level.
type LegacyPrivateClaims struct {
	ServiceAccountName string `json:"kubernetes.io/serviceaccount/service-account.name"`
	ServiceAccountUID  string `json:"kubernetes.io/serviceaccount/service-account.uid"`
	SecretName         string `json:"kubernetes.io/serviceaccount/secret.name"`
	Namespace          string `json:"kubernetes.io/serviceaccount/namespace"`
}

// LegacyClaims are the claims of the legacy token that secret holds for
// sa; sign them with a Generator of LegacyIssuer.
func LegacyClaims(sa *corev1.ServiceAccount, secret *corev1.Secret) (*jwt.Claims, *LegacyPrivateClaims) {
	return &jwt.Claims{Subject: apiserverserviceaccount.MakeUsername(sa.Namespace, sa.Name)},
		&LegacyPrivateClaims{
			Namespace:          sa.Namespace,
			ServiceAccountName: sa.Name,
			ServiceAccountUID:  string(sa.UID),
			SecretName:         secret.Name,
		}
}

// NewLegacyAuthenticator returns an authenticator of legacy tokens signed
// by one of keys: a token is valid while getter finds its Secret, not being
// deleted, holding exactly that token and not labeled invalid, and its
// ServiceAccount with the UID the token names. Each use labels the Secret
// with the day (LastUsedLabelKey), through secrets, at most once a day.
func NewLegacyAuthenticator(keys []PublicKey, implicitAuds authenticator.Audiences, getter Getter, secrets typedcorev1.SecretsGetter) authenticator.Token {
	v := &legacyValidator{getter: getter, secrets: secrets}
	return newTokenAuthenticator([]string{LegacyIssuer}, keys, implicitAuds, v.validate)
}

type legacyValidator struct {
	getter  Getter
	secrets typedcorev1.SecretsGetter
}

// validate is upstream's legacy validator with lookup on (kube-apiserver's
// default --service-account-lookup), with its error texts.
func (v *legacyValidator) validate(ctx context.Context, token string, public *jwt.Claims, private *LegacyPrivateClaims) (*apiserverserviceaccount.ServiceAccountInfo, error) {
	if public.Subject == "" {
		return nil, errors.New("sub claim is missing")
	}
	namespace := private.Namespace
	if namespace == "" {
		return nil, errors.New("namespace claim is missing")
	}
	secretName := private.SecretName
	if secretName == "" {
		return nil, errors.New("secretName claim is missing")
	}
	saName := private.ServiceAccountName
	if saName == "" {
		return nil, errors.New("serviceAccountName claim is missing")
	}
	saUID := private.ServiceAccountUID
	if saUID == "" {
		return nil, errors.New("serviceAccountUID claim is missing")
	}
	subjectNamespace, subjectName, err := apiserverserviceaccount.SplitUsername(public.Subject)
	if err != nil || subjectNamespace != namespace || subjectName != saName {
		return nil, errors.New("sub claim is invalid")
	}

	// Deleting the Secret, or writing another token into it, revokes the
	// token.
	secret, err := v.getter.GetSecret(ctx, namespace, secretName)
	if err != nil {
		klog.V(4).InfoS("Could not retrieve the token's secret", "secret", klog.KRef(namespace, secretName), "serviceAccount", klog.KRef(namespace, saName), "err", err)
		return nil, errors.New("Token has been invalidated")
	}
	if secret.DeletionTimestamp != nil {
		klog.V(4).InfoS("Token is deleted and awaiting removal", "secret", klog.KRef(namespace, secretName), "serviceAccount", klog.KRef(namespace, saName))
		return nil, errors.New("Token has been invalidated")
	}
	if subtle.ConstantTimeCompare(secret.Data[corev1.ServiceAccountTokenKey], []byte(token)) == 0 {
		klog.V(4).InfoS("Token contents no longer match the secret", "secret", klog.KRef(namespace, secretName), "serviceAccount", klog.KRef(namespace, saName))
		return nil, errors.New("Token does not match server's copy")
	}

	sa, err := v.getter.GetServiceAccount(ctx, namespace, saName)
	if err != nil {
		klog.V(4).InfoS("Could not retrieve service account", "serviceAccount", klog.KRef(namespace, saName), "err", err)
		return nil, err
	}
	if sa.DeletionTimestamp != nil {
		klog.V(4).InfoS("Service account has been deleted", "serviceAccount", klog.KRef(namespace, saName))
		return nil, fmt.Errorf("ServiceAccount %s/%s has been deleted", namespace, saName)
	}
	if string(sa.UID) != saUID {
		klog.V(4).InfoS("Service account UID no longer matches", "serviceAccount", klog.KRef(namespace, saName), "uid", sa.UID, "claim", saUID)
		return nil, fmt.Errorf("ServiceAccount UID (%s) does not match claim (%s)", sa.UID, saUID)
	}

	if secret.Labels[InvalidSinceLabelKey] != "" {
		audit.AddAuditAnnotation(ctx, "authentication.k8s.io/legacy-token-invalidated", secret.Name+"/"+secret.Namespace)
		invalidatedAutoTokensTotal.WithContext(ctx).Inc()
		v.markUsed(ctx, secret)
		return nil, fmt.Errorf("the token in secret %s/%s for service account %s/%s has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the '%s' label from the secret to temporarily allow use of this token", namespace, secretName, namespace, saName, InvalidSinceLabelKey)
	}
	autoGenerated := false
	for _, ref := range sa.Secrets {
		if ref.Name == secret.Name {
			autoGenerated = true
			warning.AddWarning(ctx, "", "Use tokens from the TokenRequest API or manually created secret-based tokens instead of auto-generated secret-based tokens.")
			audit.AddAuditAnnotation(ctx, "authentication.k8s.io/legacy-token-autogenerated-secret", secret.Name)
			autoGeneratedTokensTotal.WithContext(ctx).Inc()
			break
		}
	}
	if !autoGenerated {
		audit.AddAuditAnnotation(ctx, "authentication.k8s.io/legacy-token-manual-secret", secret.Name)
		manuallyCreatedTokensTotal.WithContext(ctx).Inc()
	}
	v.markUsed(ctx, secret)

	return &apiserverserviceaccount.ServiceAccountInfo{Namespace: namespace, Name: saName, UID: saUID}, nil
}

// markUsed labels secret with today's date unless it already says today
// (or tomorrow, for servers whose clocks are ahead): one write a day per
// Secret however often its token is used. A failure is only logged; the
// token stays valid.
func (v *legacyValidator) markUsed(ctx context.Context, secret *corev1.Secret) {
	t := now().UTC()
	today, tomorrow := t.Format(lastUsedDateFormat), t.AddDate(0, 0, 1).Format(lastUsedDateFormat)
	if last := secret.Labels[LastUsedLabelKey]; last == today || last == tomorrow {
		return
	}
	// The UID makes the patch fail rather than label a namesake.
	patch, err := json.Marshal(applycorev1.Secret(secret.Name, secret.Namespace).WithUID(secret.UID).WithLabels(map[string]string{LastUsedLabelKey: today}))
	if err != nil {
		klog.ErrorS(err, "Failed to marshal the legacy service account token's tracking label", "secret", klog.KObj(secret))
		return
	}
	if _, err := v.secrets.Secrets(secret.Namespace).Patch(ctx, secret.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		klog.ErrorS(err, "Failed to label legacy service account token with last-used date", "secret", klog.KObj(secret))
	}
}
