package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiluuid "k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/audit"
	apiserverserviceaccount "k8s.io/apiserver/pkg/authentication/serviceaccount"
	authenticationtokenjwt "k8s.io/apiserver/pkg/authentication/token/jwt"
	"k8s.io/klog/v2"
)

const (
	// WarnOnlyBoundTokenExpirationSeconds is the expiration of the token the
	// ServiceAccount admission plugin projects into pods. A pod-bound token
	// requested with exactly this expiration is extended (when the server
	// extends expirations) and only warned about after it.
	WarnOnlyBoundTokenExpirationSeconds = 60*60 + 7

	// ExpirationExtensionSeconds is how long such extended tokens live.
	ExpirationExtensionSeconds = 24 * 365 * 60 * 60
)

// now and newUUID are replaced in tests.
var (
	now     = time.Now
	newUUID = func() string { return string(utiluuid.NewUUID()) }
)

// PrivateClaims are the `kubernetes.io` claims of a token.
type PrivateClaims struct {
	Kubernetes Kubernetes `json:"kubernetes.io,omitempty"`
}

// Kubernetes names the ServiceAccount a token identifies and the object, if
// any, that it is bound to.
type Kubernetes struct {
	Namespace string           `json:"namespace,omitempty"`
	Svcacct   Ref              `json:"serviceaccount,omitempty"`
	Pod       *Ref             `json:"pod,omitempty"`
	Secret    *Ref             `json:"secret,omitempty"`
	Node      *Ref             `json:"node,omitempty"`
	WarnAfter *jwt.NumericDate `json:"warnafter,omitempty"`
}

// Ref is a name and UID.
type Ref struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// Bound are the objects a token may be bound to: at most a Pod (and the
// Node it runs on), a Secret or a Node.
type Bound struct {
	Pod    *corev1.Pod
	Secret *corev1.Secret
	Node   *corev1.Node
}

// Claims builds the claims of a token for sa, valid from now for
// expirationSeconds; warnAfter (seconds, 0: none) marks when an extended
// token should have expired.
func Claims(sa *corev1.ServiceAccount, bound Bound, expirationSeconds, warnAfter int64, audiences []string) (*jwt.Claims, *PrivateClaims, error) {
	t := now()
	public := &jwt.Claims{
		Subject:   apiserverserviceaccount.MakeUsername(sa.Namespace, sa.Name),
		Audience:  jwt.Audience(audiences),
		IssuedAt:  jwt.NewNumericDate(t),
		NotBefore: jwt.NewNumericDate(t),
		Expiry:    jwt.NewNumericDate(t.Add(time.Duration(expirationSeconds) * time.Second)),
		ID:        newUUID(),
	}
	private := &PrivateClaims{Kubernetes: Kubernetes{
		Namespace: sa.Namespace,
		Svcacct:   Ref{Name: sa.Name, UID: string(sa.UID)},
	}}
	if bound.Secret != nil && (bound.Pod != nil || bound.Node != nil) {
		return nil, nil, errors.New("internal error, token can only be bound to one object type")
	}
	switch {
	case bound.Pod != nil:
		private.Kubernetes.Pod = &Ref{Name: bound.Pod.Name, UID: string(bound.Pod.UID)}
		// The node a bound pod runs on is recorded too.
		if bound.Node != nil {
			private.Kubernetes.Node = &Ref{Name: bound.Node.Name, UID: string(bound.Node.UID)}
		}
	case bound.Secret != nil:
		private.Kubernetes.Secret = &Ref{Name: bound.Secret.Name, UID: string(bound.Secret.UID)}
	case bound.Node != nil:
		private.Kubernetes.Node = &Ref{Name: bound.Node.Name, UID: string(bound.Node.UID)}
	}
	if warnAfter != 0 {
		private.Kubernetes.WarnAfter = jwt.NewNumericDate(t.Add(time.Duration(warnAfter) * time.Second))
	}
	return public, private, nil
}

// validate checks the time claims of a token whose signature, issuer and
// audience were verified, then that the ServiceAccount and the bound object
// still exist with the UIDs the token names.
func validate(ctx context.Context, getter Getter, public *jwt.Claims, private *PrivateClaims) (*apiserverserviceaccount.ServiceAccountInfo, error) {
	t := now()
	switch err := public.Validate(jwt.Expected{Time: t}); {
	case err == nil:
	case errors.Is(err, jwt.ErrExpired):
		return nil, errors.New("service account token has expired")
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, errors.New("service account token is not valid yet")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, errors.New("service account token is issued in the future")
	default:
		klog.V(4).InfoS("Service account token claims could not be validated", "err", err)
		return nil, errors.New("service account token claims could not be validated due to unexpected validation error")
	}

	// Objects deleted before now minus the leeway no longer back a token.
	invalidIfDeletedBefore := t.Add(-jwt.DefaultLeeway)
	gone := func(ts *metav1.Time) bool { return ts != nil && ts.Time.Before(invalidIfDeletedBefore) }

	k := private.Kubernetes
	namespace, saRef := k.Namespace, k.Svcacct
	sa, err := getter.GetServiceAccount(ctx, namespace, saRef.Name)
	if err != nil {
		klog.V(4).InfoS("Could not retrieve service account", "namespace", namespace, "name", saRef.Name, "err", err)
		return nil, err
	}
	if string(sa.UID) != saRef.UID {
		return nil, fmt.Errorf("service account UID (%s) does not match claim (%s)", sa.UID, saRef.UID)
	}
	if gone(sa.DeletionTimestamp) {
		return nil, fmt.Errorf("service account %s/%s has been deleted", namespace, saRef.Name)
	}

	if ref := k.Secret; ref != nil {
		secret, err := getter.GetSecret(ctx, namespace, ref.Name)
		if err != nil {
			klog.V(4).InfoS("Could not retrieve bound secret", "namespace", namespace, "name", ref.Name, "err", err)
			return nil, errors.New("service account token has been invalidated")
		}
		if string(secret.UID) != ref.UID {
			return nil, fmt.Errorf("secret UID (%s) does not match service account secret ref claim (%s)", secret.UID, ref.UID)
		}
		if gone(secret.DeletionTimestamp) {
			return nil, errors.New("service account token has been invalidated")
		}
	}

	info := &apiserverserviceaccount.ServiceAccountInfo{Namespace: namespace, Name: saRef.Name, UID: saRef.UID}
	if ref := k.Pod; ref != nil {
		pod, err := getter.GetPod(ctx, namespace, ref.Name)
		if err != nil {
			klog.V(4).InfoS("Could not retrieve bound pod", "namespace", namespace, "name", ref.Name, "err", err)
			return nil, errors.New("service account token has been invalidated")
		}
		if string(pod.UID) != ref.UID {
			return nil, fmt.Errorf("pod UID (%s) does not match service account pod ref claim (%s)", pod.UID, ref.UID)
		}
		if gone(pod.DeletionTimestamp) {
			return nil, errors.New("service account token has been invalidated")
		}
		info.PodName, info.PodUID = ref.Name, ref.UID
	}

	if ref := k.Node; ref != nil {
		if k.Pod == nil {
			// A node-bound token lives as long as its node.
			node, err := getter.GetNode(ctx, ref.Name)
			if err != nil {
				klog.V(4).InfoS("Could not retrieve bound node", "name", ref.Name, "err", err)
				return nil, errors.New("service account token has been invalidated")
			}
			if string(node.UID) != ref.UID {
				return nil, fmt.Errorf("node UID (%s) does not match service account node ref claim (%s)", node.UID, ref.UID)
			}
			if gone(node.DeletionTimestamp) {
				return nil, errors.New("service account token has been invalidated")
			}
		}
		// For a pod-bound token the node only informs.
		info.NodeName, info.NodeUID = ref.Name, ref.UID
	}

	if warnAfter := k.WarnAfter; warnAfter != nil && *warnAfter != 0 {
		if t.After(warnAfter.Time()) {
			audit.AddAuditAnnotation(ctx, "authentication.k8s.io/stale-token",
				fmt.Sprintf("subject: %s, seconds after warning threshold: %d", public.Subject, t.Unix()-warnAfter.Time().Unix()))
			staleTokensTotal.WithContext(ctx).Inc()
		} else {
			validTokensTotal.WithContext(ctx).Inc()
		}
	}
	info.CredentialID = authenticationtokenjwt.CredentialIDForJTI(public.ID)
	return info, nil
}
