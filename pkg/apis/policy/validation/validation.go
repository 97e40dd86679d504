// Package validation checks policy/v1 PodDisruptionBudgets the way upstream
// Kubernetes' pkg/apis/policy/validation does (same field paths and error
// types), on the versioned types. Metadata is validated by the registry
// strategy.
package validation

import (
	"strconv"

	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedUnhealthyPodEvictionPolicies = []string{string(policyv1.AlwaysAllow), string(policyv1.IfHealthyBudget)}

// ValidatePodDisruptionBudget validates a PDB on create.
func ValidatePodDisruptionBudget(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	return validateSpec(&pdb.Spec, false, field.NewPath("spec"))
}

// ValidatePodDisruptionBudgetUpdate validates the spec (tolerating selector
// label values the stored PDB already has) and the status, which only
// /status changes.
func ValidatePodDisruptionBudgetUpdate(pdb, old *policyv1.PodDisruptionBudget) field.ErrorList {
	allowInvalid := old.Spec.Selector != nil &&
		len(metavalidation.ValidateLabelSelector(old.Spec.Selector, metavalidation.LabelSelectorValidationOptions{}, nil)) > 0
	errs := validateSpec(&pdb.Spec, allowInvalid, field.NewPath("spec"))
	return append(errs, ValidatePodDisruptionBudgetStatus(&pdb.Status, field.NewPath("status"))...)
}

func validateSpec(spec *policyv1.PodDisruptionBudgetSpec, allowInvalidLabelValue bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(fldPath, spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	if spec.MinAvailable != nil {
		errs = append(errs, validateIntOrPercent(*spec.MinAvailable, fldPath.Child("minAvailable"))...)
	}
	if spec.MaxUnavailable != nil {
		errs = append(errs, validateIntOrPercent(*spec.MaxUnavailable, fldPath.Child("maxUnavailable"))...)
	}
	opts := metavalidation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: allowInvalidLabelValue}
	errs = append(errs, metavalidation.ValidateLabelSelector(spec.Selector, opts, fldPath.Child("selector"))...)
	if p := spec.UnhealthyPodEvictionPolicy; p != nil && *p != policyv1.AlwaysAllow && *p != policyv1.IfHealthyBudget {
		errs = append(errs, field.NotSupported(fldPath.Child("unhealthyPodEvictionPolicy"), *p, supportedUnhealthyPodEvictionPolicies))
	}
	return errs
}

// validateIntOrPercent: a non-negative integer or a percentage up to 100%.
func validateIntOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch v.Type {
	case intstr.String:
		msgs := validation.IsValidPercent(v.StrVal)
		for _, msg := range msgs {
			errs = append(errs, field.Invalid(fldPath, v, msg))
		}
		if len(msgs) == 0 {
			if n, _ := strconv.Atoi(v.StrVal[:len(v.StrVal)-1]); n > 100 {
				errs = append(errs, field.Invalid(fldPath, v, "must not be greater than 100%"))
			}
		}
	case intstr.Int:
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(v.IntValue()), fldPath)...)
	default:
		errs = append(errs, field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%%')"))
	}
	return errs
}

// ValidatePodDisruptionBudgetStatus: valid conditions and non-negative
// counts (policy/v1 rules).
func ValidatePodDisruptionBudgetStatus(st *policyv1.PodDisruptionBudgetStatus, fldPath *field.Path) field.ErrorList {
	errs := metavalidation.ValidateConditions(st.Conditions, fldPath.Child("conditions"))
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(st.DisruptionsAllowed), fldPath.Child("disruptionsAllowed"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(st.CurrentHealthy), fldPath.Child("currentHealthy"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(st.DesiredHealthy), fldPath.Child("desiredHealthy"))...)
	return append(errs, apivalidation.ValidateNonnegativeField(int64(st.ExpectedPods), fldPath.Child("expectedPods"))...)
}
