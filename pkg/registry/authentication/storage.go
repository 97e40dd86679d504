// Package authentication serves authentication.k8s.io/v1: tokenreviews
// (is this token valid, and for whom?) and selfsubjectreviews (who am I?),
// both create-only and never stored.
package authentication

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"
)

// Storage returns the group's storage map. authn is the server's request
// authenticator; apiAudiences are the audiences a TokenReview naming none
// checks the token against.
func Storage(authn authenticator.Request, apiAudiences []string) map[string]rest.Storage {
	return map[string]rest.Storage{
		"tokenreviews":       &TokenReviewREST{authn: authn, apiAudiences: apiAudiences},
		"selfsubjectreviews": &SelfSubjectReviewREST{},
	}
}

// TokenReviewREST serves tokenreviews.
type TokenReviewREST struct {
	authn        authenticator.Request
	apiAudiences []string
}

var (
	_ rest.Creater              = &TokenReviewREST{}
	_ rest.Scoper               = &TokenReviewREST{}
	_ rest.SingularNameProvider = &TokenReviewREST{}
)

func (r *TokenReviewREST) New() runtime.Object           { return &authenticationv1.TokenReview{} }
func (r *TokenReviewREST) Destroy()                      {}
func (r *TokenReviewREST) NamespaceScoped() bool         { return false }
func (r *TokenReviewREST) GetSingularName() string       { return "tokenreview" }
func (r *SelfSubjectReviewREST) GetSingularName() string { return "selfsubjectreview" }

var errBadAudiences = apierrors.NewInternalError(errors.New("error validating audiences"))

// Create authenticates spec.token as a request bearing it would be, for
// spec.audiences (the API audiences when empty), and reports the result.
func (r *TokenReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authenticationv1.TokenReview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a TokenReview: %T", obj))
	}
	if ns := genericrequest.NamespaceValue(ctx); ns != "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("namespace is not allowed on this type: %v", ns))
	}
	if review.Spec.Token == "" {
		return nil, apierrors.NewBadRequest("token is required for TokenReview in authentication")
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}

	// A request that carries nothing but the token.
	req := (&http.Request{Header: http.Header{}}).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+review.Spec.Token)
	auds := review.Spec.Audiences
	if len(auds) == 0 {
		auds = r.apiAudiences
	}
	if len(auds) > 0 {
		req = req.WithContext(authenticator.WithAudiences(req.Context(), auds))
	}
	resp, ok, err := r.authn.AuthenticateRequest(req)
	review.Status = authenticationv1.TokenReviewStatus{Authenticated: ok}
	if err != nil {
		review.Status.Error = err.Error()
	}
	if len(auds) > 0 && resp != nil && len(authenticator.Audiences(auds).Intersect(resp.Audiences)) == 0 {
		klog.ErrorS(nil, "Token review audiences do not match", "want", auds, "got", resp.Audiences)
		return nil, errBadAudiences
	}
	if ok && resp != nil && resp.User != nil {
		review.Status.User = userInfo(resp.User)
		review.Status.Audiences = resp.Audiences
	}
	return review, nil
}

// SelfSubjectReviewREST serves selfsubjectreviews.
type SelfSubjectReviewREST struct{}

var (
	_ rest.Creater              = &SelfSubjectReviewREST{}
	_ rest.Scoper               = &SelfSubjectReviewREST{}
	_ rest.SingularNameProvider = &SelfSubjectReviewREST{}
)

func (r *SelfSubjectReviewREST) New() runtime.Object   { return &authenticationv1.SelfSubjectReview{} }
func (r *SelfSubjectReviewREST) Destroy()              {}
func (r *SelfSubjectReviewREST) NamespaceScoped() bool { return false }

// Create returns the requesting user's attributes.
func (r *SelfSubjectReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	if _, ok := obj.(*authenticationv1.SelfSubjectReview); !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectReview: %T", obj))
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	u, ok := genericrequest.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	return &authenticationv1.SelfSubjectReview{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Now())},
		Status:     authenticationv1.SelfSubjectReviewStatus{UserInfo: userInfo(u)},
	}, nil
}

func userInfo(u user.Info) authenticationv1.UserInfo {
	info := authenticationv1.UserInfo{
		Username: u.GetName(),
		UID:      u.GetUID(),
		Groups:   u.GetGroups(),
		Extra:    map[string]authenticationv1.ExtraValue{},
	}
	for k, v := range u.GetExtra() {
		info.Extra[k] = v
	}
	return info
}
