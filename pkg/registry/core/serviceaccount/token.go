// Package serviceaccount serves serviceaccounts/token: a TokenRequest
// (authentication.k8s.io/v1) posted there returns a signed token for the
// ServiceAccount, for the requested audiences and lifetime, optionally bound
// to a Pod, Secret or Node.
package serviceaccount

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/audit"
	apiserverserviceaccount "k8s.io/apiserver/pkg/authentication/serviceaccount"
	authenticationtokenjwt "k8s.io/apiserver/pkg/authentication/token/jwt"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/serviceaccount"
)

const (
	// DefaultExpirationSeconds is the lifetime of a token whose request
	// names none (upstream's defaulting of TokenRequestSpec).
	DefaultExpirationSeconds = 60 * 60
	minExpirationSeconds     = 10 * 60
	maxExpirationSeconds     = 1 << 32
)

var gvk = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// Config is how the server issues tokens.
type Config struct {
	Generator serviceaccount.Generator
	// Audiences are the API audiences: the default audiences of a token.
	Audiences []string
	// MaxExpiration shortens longer requests (0: no maximum).
	MaxExpiration time.Duration
	// ExtendExpiration makes pod-bound tokens for the API audiences requested
	// for serviceaccount.WarnOnlyBoundTokenExpirationSeconds (the admission
	// plugin's projected tokens) valid for MaxExtendedExpiration, warning
	// after the requested time.
	ExtendExpiration      bool
	MaxExtendedExpiration time.Duration
}

// TokenREST serves serviceaccounts/token.
type TokenREST struct {
	serviceAccounts, pods, secrets, nodes rest.Getter
	cfg                                   Config
	audiences                             sets.Set[string]
}

var (
	_ rest.NamedCreater                   = &TokenREST{}
	_ rest.GroupVersionKindProvider       = &TokenREST{}
	_ rest.SubresourceObjectMetaPreserver = &TokenREST{}
)

// NewTokenREST serves tokens for the ServiceAccounts of the core storage
// map, binding them to its pods, secrets and nodes.
func NewTokenREST(core map[string]rest.Storage, cfg Config) (*TokenREST, error) {
	r := &TokenREST{cfg: cfg, audiences: sets.New(cfg.Audiences...)}
	for name, getter := range map[string]*rest.Getter{"serviceaccounts": &r.serviceAccounts, "pods": &r.pods, "secrets": &r.secrets, "nodes": &r.nodes} {
		g, ok := core[name].(rest.Getter)
		if !ok {
			return nil, fmt.Errorf("serviceaccounts/token: no %s storage", name)
		}
		*getter = g
	}
	return r, nil
}

// New returns an empty TokenRequest.
func (r *TokenREST) New() runtime.Object { return &authenticationv1.TokenRequest{} }

// Destroy does nothing: the stores belong to their resources.
func (r *TokenREST) Destroy() {}

// GroupVersionKind: the body is an authentication.k8s.io/v1 TokenRequest.
func (r *TokenREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind { return gvk }

// PreserveRequestObjectMetaSystemFieldsOnSubresourceCreate keeps the
// request's metadata.uid, which must match the ServiceAccount's.
func (r *TokenREST) PreserveRequestObjectMetaSystemFieldsOnSubresourceCreate() bool { return true }

// Create issues a token for the ServiceAccount name.
func (r *TokenREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	req, ok := obj.(*authenticationv1.TokenRequest)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a TokenRequest: %T", obj))
	}
	namespace, ok := genericrequest.NamespaceFrom(ctx)
	if !ok || namespace == "" {
		return nil, apierrors.NewBadRequest("namespace is required")
	}
	if req.Name != "" && req.Name != name {
		return nil, apierrors.NewInvalid(gvk.GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "name"), req.Name, "must match the service account name if specified")})
	}
	if req.Namespace != "" && req.Namespace != namespace {
		return nil, apierrors.NewInvalid(gvk.GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "namespace"), req.Namespace, "must match the service account namespace if specified")})
	}

	saObj, err := r.serviceAccounts.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	sa := saObj.(*corev1.ServiceAccount)
	if req.UID != "" && req.UID != sa.UID {
		return nil, apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, name,
			fmt.Errorf("the UID in the token request (%s) does not match the UID of the service account (%s)", req.UID, sa.UID))
	}

	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = append([]string(nil), r.cfg.Audiences...)
	}
	if req.Spec.ExpirationSeconds == nil {
		req.Spec.ExpirationSeconds = ptr.To[int64](DefaultExpirationSeconds)
	}
	req.Name, req.Namespace, req.UID = sa.Name, sa.Namespace, sa.UID
	// The expiration reported is never later than the token's exp.
	issuedAt := time.Now()
	req.CreationTimestamp = metav1.NewTime(issuedAt)
	req.Status = authenticationv1.TokenRequestStatus{}

	if errs := validateTokenRequest(req); len(errs) > 0 {
		return nil, apierrors.NewInvalid(gvk.GroupKind(), "", errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, req.DeepCopyObject()); err != nil {
			return nil, err
		}
	}

	var bound serviceaccount.Bound
	if ref := req.Spec.BoundObjectRef; ref != nil {
		var uid types.UID
		refGVK := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
		switch {
		case refGVK.Group == "" && refGVK.Kind == "Pod":
			obj, err := r.pods.Get(ctx, ref.Name, &metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			pod := obj.(*corev1.Pod)
			if name != pod.Spec.ServiceAccountName {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", name))
			}
			bound.Pod, uid = pod, pod.UID
			if nodeName := pod.Spec.NodeName; nodeName != "" {
				// The token names the pod's node too; a missing Node still
				// leaves its name.
				obj, err := r.nodes.Get(genericrequest.WithNamespace(ctx, ""), nodeName, &metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					bound.Node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
				case err != nil:
					return nil, apierrors.NewInternalError(err)
				default:
					bound.Node = obj.(*corev1.Node)
				}
			}
		case refGVK.Group == "" && refGVK.Kind == "Node":
			obj, err := r.nodes.Get(genericrequest.WithNamespace(ctx, ""), ref.Name, &metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			bound.Node = obj.(*corev1.Node)
			uid = bound.Node.UID
		case refGVK.Group == "" && refGVK.Kind == "Secret":
			obj, err := r.secrets.Get(ctx, ref.Name, &metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			bound.Secret = obj.(*corev1.Secret)
			uid = bound.Secret.UID
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", refGVK.String()))
		}
		if ref.UID != "" && uid != ref.UID {
			return nil, apierrors.NewConflict(schema.GroupResource{Group: refGVK.Group, Resource: refGVK.Kind}, ref.Name,
				fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
		}
	}

	if max := int64(r.cfg.MaxExpiration.Seconds()); max > 0 && *req.Spec.ExpirationSeconds > max {
		warning.AddWarning(ctx, "", fmt.Sprintf("requested expiration of %d seconds shortened to %d seconds", *req.Spec.ExpirationSeconds, max))
		req.Spec.ExpirationSeconds = &max
	}
	// The admission plugin's projected tokens outlive their requested
	// lifetime (with a warning after it) while clients learn to refresh.
	var warnAfter int64
	exp := *req.Spec.ExpirationSeconds
	if r.cfg.ExtendExpiration && bound.Pod != nil && exp == serviceaccount.WarnOnlyBoundTokenExpirationSeconds && r.audiences.HasAll(req.Spec.Audiences...) {
		warnAfter = exp
		exp = int64(r.cfg.MaxExtendedExpiration.Seconds())
	}

	public, private, err := serviceaccount.Claims(sa, bound, exp, warnAfter, req.Spec.Audiences)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	token, err := r.cfg.Generator.GenerateToken(public, private)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("failed to generate token: %v", err))
	}
	out := req.DeepCopy()
	out.Status = authenticationv1.TokenRequestStatus{
		Token:               token,
		ExpirationTimestamp: metav1.NewTime(issuedAt.Add(time.Duration(*out.Spec.ExpirationSeconds) * time.Second)),
	}
	audit.AddAuditAnnotation(ctx, apiserverserviceaccount.IssuedCredentialIDAuditAnnotationKey, authenticationtokenjwt.CredentialIDForJTI(public.ID))
	return out, nil
}

// validateTokenRequest is upstream's static validation of a TokenRequest.
func validateTokenRequest(req *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("spec", "expirationSeconds")
	switch exp := *req.Spec.ExpirationSeconds; {
	case exp < minExpirationSeconds:
		errs = append(errs, field.Invalid(path, exp, "may not specify a duration less than 10 minutes"))
	case exp > maxExpirationSeconds:
		errs = append(errs, field.Invalid(path, exp, "may not specify a duration larger than 2^32 seconds"))
	}
	return errs
}
