// Package authorization serves authorization.k8s.io/v1: subjectaccessreviews
// (may this user do that?), localsubjectaccessreviews (the same, in one
// namespace), selfsubjectaccessreviews (may I?) and selfsubjectrulesreviews
// (what may I do in this namespace?), all create-only and never stored, as
// upstream's pkg/registry/authorization.
package authorization

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Storage returns the group's storage map: reviews are decided by authz,
// rules listed by resolver (the server's own authorizer and rule resolver).
func Storage(authz authorizer.Authorizer, resolver authorizer.RuleResolver) map[string]rest.Storage {
	return map[string]rest.Storage{
		"subjectaccessreviews":      &SubjectAccessReviewREST{authz: authz},
		"selfsubjectaccessreviews":  &SelfSubjectAccessReviewREST{authz: authz},
		"localsubjectaccessreviews": &LocalSubjectAccessReviewREST{authz: authz},
		"selfsubjectrulesreviews":   &SelfSubjectRulesReviewREST{resolver: resolver},
	}
}

func kind(k string) schema.GroupKind {
	return schema.GroupKind{Group: authorizationv1.GroupName, Kind: k}
}

// SubjectAccessReviewREST serves subjectaccessreviews.
type SubjectAccessReviewREST struct{ authz authorizer.Authorizer }

var (
	_ rest.Creater              = &SubjectAccessReviewREST{}
	_ rest.Scoper               = &SubjectAccessReviewREST{}
	_ rest.SingularNameProvider = &SubjectAccessReviewREST{}
)

func (r *SubjectAccessReviewREST) New() runtime.Object     { return &authorizationv1.SubjectAccessReview{} }
func (r *SubjectAccessReviewREST) Destroy()                {}
func (r *SubjectAccessReviewREST) NamespaceScoped() bool   { return false }
func (r *SubjectAccessReviewREST) GetSingularName() string { return "subjectaccessreview" }

// Create decides whether spec's user may do what spec describes.
func (r *SubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	sar, ok := obj.(*authorizationv1.SubjectAccessReview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SubjectAccessReview: %T", obj))
	}
	errs := validateSpec(sar.Spec, field.NewPath("spec"))
	errs = append(errs, validateEmptyMeta(sar.ObjectMeta, false)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kind("SubjectAccessReview"), "", errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	attrs := attributesFor(sar.Spec)
	sar.Status = decide(ctx, r.authz, attrs)
	return sar, nil
}

// LocalSubjectAccessReviewREST serves localsubjectaccessreviews.
type LocalSubjectAccessReviewREST struct{ authz authorizer.Authorizer }

var (
	_ rest.Creater              = &LocalSubjectAccessReviewREST{}
	_ rest.Scoper               = &LocalSubjectAccessReviewREST{}
	_ rest.SingularNameProvider = &LocalSubjectAccessReviewREST{}
)

func (r *LocalSubjectAccessReviewREST) New() runtime.Object {
	return &authorizationv1.LocalSubjectAccessReview{}
}
func (r *LocalSubjectAccessReviewREST) Destroy()                {}
func (r *LocalSubjectAccessReviewREST) NamespaceScoped() bool   { return true }
func (r *LocalSubjectAccessReviewREST) GetSingularName() string { return "localsubjectaccessreview" }

// Create decides whether spec's user may do what spec describes in the
// request's namespace.
func (r *LocalSubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	sar, ok := obj.(*authorizationv1.LocalSubjectAccessReview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a LocalSubjectAccessReview: %T", obj))
	}
	errs := validateSpec(sar.Spec, field.NewPath("spec"))
	errs = append(errs, validateEmptyMeta(sar.ObjectMeta, true)...)
	if sar.Spec.ResourceAttributes != nil && sar.Spec.ResourceAttributes.Namespace != sar.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("spec.resourceAttributes.namespace"), sar.Spec.ResourceAttributes.Namespace, `must match metadata.namespace`))
	}
	if sar.Spec.NonResourceAttributes != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec.nonResourceAttributes"), sar.Spec.NonResourceAttributes, `disallowed on this kind of request`))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kind("LocalSubjectAccessReview"), "", errs)
	}
	namespace := genericrequest.NamespaceValue(ctx)
	if namespace == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("namespace is required on this type: %v", namespace))
	}
	if namespace != sar.Namespace {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("spec.resourceAttributes.namespace must match namespace: %v", namespace))
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	sar.Status = decide(ctx, r.authz, attributesFor(sar.Spec))
	return sar, nil
}

// SelfSubjectAccessReviewREST serves selfsubjectaccessreviews.
type SelfSubjectAccessReviewREST struct{ authz authorizer.Authorizer }

var (
	_ rest.Creater              = &SelfSubjectAccessReviewREST{}
	_ rest.Scoper               = &SelfSubjectAccessReviewREST{}
	_ rest.SingularNameProvider = &SelfSubjectAccessReviewREST{}
)

func (r *SelfSubjectAccessReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectAccessReview{}
}
func (r *SelfSubjectAccessReviewREST) Destroy()                {}
func (r *SelfSubjectAccessReviewREST) NamespaceScoped() bool   { return false }
func (r *SelfSubjectAccessReviewREST) GetSingularName() string { return "selfsubjectaccessreview" }

// Create decides whether the requesting user may do what spec describes.
func (r *SelfSubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	sar, ok := obj.(*authorizationv1.SelfSubjectAccessReview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectAccessReview: %T", obj))
	}
	path := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, validateOneOf(sar.Spec.ResourceAttributes, sar.Spec.NonResourceAttributes, path)...)
	errs = append(errs, validateResourceAttributes(sar.Spec.ResourceAttributes, path.Child("resourceAttributes"))...)
	errs = append(errs, validateEmptyMeta(sar.ObjectMeta, false)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kind("SelfSubjectAccessReview"), "", errs)
	}
	u, ok := genericrequest.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	var attrs authorizer.AttributesRecord
	if sar.Spec.ResourceAttributes != nil {
		attrs = resourceAttributes(u, *sar.Spec.ResourceAttributes)
	} else {
		attrs = nonResourceAttributes(u, *sar.Spec.NonResourceAttributes)
	}
	sar.Status = decide(ctx, r.authz, attrs)
	return sar, nil
}

// SelfSubjectRulesReviewREST serves selfsubjectrulesreviews.
type SelfSubjectRulesReviewREST struct{ resolver authorizer.RuleResolver }

var (
	_ rest.Creater              = &SelfSubjectRulesReviewREST{}
	_ rest.Scoper               = &SelfSubjectRulesReviewREST{}
	_ rest.SingularNameProvider = &SelfSubjectRulesReviewREST{}
)

func (r *SelfSubjectRulesReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectRulesReview{}
}
func (r *SelfSubjectRulesReviewREST) Destroy()                {}
func (r *SelfSubjectRulesReviewREST) NamespaceScoped() bool   { return false }
func (r *SelfSubjectRulesReviewREST) GetSingularName() string { return "selfsubjectrulesreview" }

// Create lists the rules of the requesting user in spec.namespace.
func (r *SelfSubjectRulesReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SelfSubjectRulesReview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectRulesReview: %T", obj))
	}
	u, ok := genericrequest.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	if review.Spec.Namespace == "" {
		return nil, apierrors.NewBadRequest("no namespace on request")
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	resourceInfo, nonResourceInfo, incomplete, err := r.resolver.RulesFor(ctx, u, review.Spec.Namespace)
	out := &authorizationv1.SelfSubjectRulesReview{
		Status: authorizationv1.SubjectRulesReviewStatus{
			ResourceRules:    make([]authorizationv1.ResourceRule, len(resourceInfo)),
			NonResourceRules: make([]authorizationv1.NonResourceRule, len(nonResourceInfo)),
			Incomplete:       incomplete,
		},
	}
	for i, info := range resourceInfo {
		out.Status.ResourceRules[i] = authorizationv1.ResourceRule{Verbs: info.GetVerbs(), APIGroups: info.GetAPIGroups(),
			Resources: info.GetResources(), ResourceNames: info.GetResourceNames()}
	}
	for i, info := range nonResourceInfo {
		out.Status.NonResourceRules[i] = authorizationv1.NonResourceRule{Verbs: info.GetVerbs(), NonResourceURLs: info.GetNonResourceURLs()}
	}
	if err != nil {
		out.Status.EvaluationError = err.Error()
	}
	return out, nil
}

// decide asks authz and reports as a review's status.
func decide(ctx context.Context, authz authorizer.Authorizer, attrs authorizer.AttributesRecord) authorizationv1.SubjectAccessReviewStatus {
	decision, reason, err := authz.Authorize(ctx, attrs)
	status := authorizationv1.SubjectAccessReviewStatus{
		Allowed: decision == authorizer.DecisionAllow,
		Denied:  decision == authorizer.DecisionDeny,
		Reason:  reason,
	}
	var evalErrs []string
	if err != nil {
		evalErrs = append(evalErrs, err.Error())
	}
	if reqs, err := attrs.GetFieldSelector(); err != nil {
		if len(reqs) > 0 {
			evalErrs = append(evalErrs, "spec.resourceAttributes.fieldSelector partially ignored due to parse error")
		} else {
			evalErrs = append(evalErrs, "spec.resourceAttributes.fieldSelector ignored due to parse error")
		}
	}
	if reqs, err := attrs.GetLabelSelector(); err != nil {
		if len(reqs) > 0 {
			evalErrs = append(evalErrs, "spec.resourceAttributes.labelSelector partially ignored due to parse error")
		} else {
			evalErrs = append(evalErrs, "spec.resourceAttributes.labelSelector ignored due to parse error")
		}
	}
	status.EvaluationError = strings.Join(evalErrs, "; ")
	return status
}

// attributesFor is the request a SubjectAccessReview spec describes.
func attributesFor(spec authorizationv1.SubjectAccessReviewSpec) authorizer.AttributesRecord {
	u := &user.DefaultInfo{Name: spec.User, Groups: spec.Groups, UID: spec.UID}
	if spec.Extra != nil {
		u.Extra = map[string][]string{}
		for k, v := range spec.Extra {
			u.Extra[k] = []string(v)
		}
	}
	if spec.ResourceAttributes != nil {
		return resourceAttributes(u, *spec.ResourceAttributes)
	}
	return nonResourceAttributes(u, *spec.NonResourceAttributes)
}

func nonResourceAttributes(u user.Info, in authorizationv1.NonResourceAttributes) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{User: u, Path: in.Path, Verb: in.Verb}
}

func resourceAttributes(u user.Info, in authorizationv1.ResourceAttributes) authorizer.AttributesRecord {
	version := in.Version
	if version == "" {
		version = "*"
	}
	ret := authorizer.AttributesRecord{User: u, Verb: in.Verb, Namespace: in.Namespace, APIGroup: in.Group, APIVersion: version,
		Resource: in.Resource, Subresource: in.Subresource, Name: in.Name, ResourceRequest: true}
	if s := in.LabelSelector; s != nil {
		if s.RawSelector != "" {
			if sel, err := labels.Parse(s.RawSelector); err != nil {
				ret.LabelSelectorParsingErr = err
			} else {
				ret.LabelSelectorRequirements, _ = sel.Requirements()
			}
		}
		if len(s.Requirements) > 0 {
			ret.LabelSelectorRequirements, ret.LabelSelectorParsingErr = labelRequirements(s.Requirements)
		}
	}
	if s := in.FieldSelector; s != nil {
		if s.RawSelector != "" {
			if sel, err := fields.ParseSelector(s.RawSelector); err != nil {
				ret.FieldSelectorParsingErr = err
			} else {
				ret.FieldSelectorRequirements = sel.Requirements()
			}
		}
		if len(s.Requirements) > 0 {
			ret.FieldSelectorRequirements, ret.FieldSelectorParsingErr = fieldRequirements(s.Requirements)
		}
	}
	return ret
}

var labelOps = map[metav1.LabelSelectorOperator]selection.Operator{
	metav1.LabelSelectorOpIn: selection.In, metav1.LabelSelectorOpNotIn: selection.NotIn,
	metav1.LabelSelectorOpExists: selection.Exists, metav1.LabelSelectorOpDoesNotExist: selection.DoesNotExist,
}

func labelRequirements(in []metav1.LabelSelectorRequirement) (labels.Requirements, error) {
	var reqs []labels.Requirement
	var errs []error
	for _, expr := range in {
		op, ok := labelOps[expr.Operator]
		if !ok {
			errs = append(errs, fmt.Errorf("%q is not a valid label selector operator", expr.Operator))
			continue
		}
		values := expr.Values
		if len(values) == 0 {
			values = nil
		}
		req, err := labels.NewRequirement(expr.Key, op, values)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reqs = append(reqs, *req)
	}
	return labels.Requirements(reqs), utilerrors.NewAggregate(errs)
}

func fieldRequirements(in []metav1.FieldSelectorRequirement) (fields.Requirements, error) {
	var reqs []fields.Requirement
	var errs []error
	for _, expr := range in {
		if len(expr.Values) > 1 {
			errs = append(errs, fmt.Errorf("fieldSelectors do not yet support multiple values"))
			continue
		}
		switch expr.Operator {
		case metav1.FieldSelectorOpIn, metav1.FieldSelectorOpNotIn:
			if len(expr.Values) != 1 {
				word := "in"
				if expr.Operator == metav1.FieldSelectorOpNotIn {
					word = "not in"
				}
				errs = append(errs, fmt.Errorf("fieldSelectors %s must have one value", word))
				continue
			}
			op := selection.Equals
			if expr.Operator == metav1.FieldSelectorOpNotIn {
				op = selection.NotEquals
			}
			reqs = append(reqs, fields.Requirement{Field: expr.Key, Operator: op, Value: expr.Values[0]})
		case metav1.FieldSelectorOpExists, metav1.FieldSelectorOpDoesNotExist:
			errs = append(errs, fmt.Errorf("fieldSelectors do not yet support %v", expr.Operator))
		default:
			errs = append(errs, fmt.Errorf("%q is not a valid field selector operator", expr.Operator))
		}
	}
	return fields.Requirements(reqs), utilerrors.NewAggregate(errs)
}

// Validation, as upstream's pkg/apis/authorization/validation.

func validateOneOf(res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes, path *field.Path) field.ErrorList {
	if (res == nil) == (nonRes == nil) {
		return field.ErrorList{field.Invalid(path, nonRes, `exactly one of nonResourceAttributes or resourceAttributes must be specified`)}
	}
	return nil
}

func validateSpec(spec authorizationv1.SubjectAccessReviewSpec, path *field.Path) field.ErrorList {
	errs := validateOneOf(spec.ResourceAttributes, spec.NonResourceAttributes, path)
	if spec.User == "" && len(spec.Groups) == 0 {
		errs = append(errs, field.Invalid(path.Child("user"), spec.User, `at least one of user or group must be specified`))
	}
	return append(errs, validateResourceAttributes(spec.ResourceAttributes, path.Child("resourceAttributes"))...)
}

func validateEmptyMeta(m metav1.ObjectMeta, namespaced bool) field.ErrorList {
	m.ManagedFields = nil
	msg := "must be empty"
	if namespaced {
		m.Namespace = ""
		msg = "must be empty except for namespace"
	}
	if !equality.Semantic.DeepEqual(metav1.ObjectMeta{}, m) {
		return field.ErrorList{field.Invalid(field.NewPath("metadata"), m, msg)}
	}
	return nil
}

func validateResourceAttributes(a *authorizationv1.ResourceAttributes, path *field.Path) field.ErrorList {
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	if s := a.FieldSelector; s != nil {
		p := path.Child("fieldSelector")
		errs = append(errs, validateSelector(s.RawSelector, len(s.Requirements), p)...)
		for i, r := range s.Requirements {
			errs = append(errs, metav1validation.ValidateFieldSelectorRequirement(r,
				metav1validation.FieldSelectorValidationOptions{AllowUnknownOperatorInRequirement: true}, p.Child("requirements").Index(i))...)
		}
	}
	if s := a.LabelSelector; s != nil {
		p := path.Child("labelSelector")
		errs = append(errs, validateSelector(s.RawSelector, len(s.Requirements), p)...)
		for i, r := range s.Requirements {
			errs = append(errs, metav1validation.ValidateLabelSelectorRequirement(r,
				metav1validation.LabelSelectorValidationOptions{AllowUnknownOperatorInRequirement: true}, p.Child("requirements").Index(i))...)
		}
	}
	return errs
}

func validateSelector(raw string, requirements int, path *field.Path) field.ErrorList {
	switch {
	case raw != "" && requirements > 0:
		return field.ErrorList{field.Invalid(path.Child("rawSelector"), raw, "may not specified at the same time as requirements")}
	case raw == "" && requirements == 0:
		return field.ErrorList{field.Required(path.Child("requirements"), fmt.Sprintf("when %s is specified, requirements or rawSelector is required", path))}
	}
	return nil
}
