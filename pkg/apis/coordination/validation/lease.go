// Package validation checks coordination.k8s.io/v1 Leases the way upstream
// Kubernetes' pkg/apis/coordination/validation does.
package validation

import (
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var validLeaseStrategies = []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion}

// ValidateLease checks the lease spec: leaseDurationSeconds > 0,
// leaseTransitions >= 0, a known (or qualified) strategy, and a preferred
// holder only with a strategy.
func ValidateLease(l *coordinationv1.Lease) field.ErrorList {
	spec := &l.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(p.Child("leaseDurationSeconds"), spec.LeaseDurationSeconds, "must be greater than 0"))
	}
	if t := spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, field.Invalid(p.Child("leaseTransitions"), spec.LeaseTransitions, "must be greater than or equal to 0"))
	}
	if spec.Strategy != nil {
		errs = append(errs, validateStrategy(*spec.Strategy, p.Child("strategy"))...)
	}
	if spec.PreferredHolder != nil && *spec.PreferredHolder != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		errs = append(errs, field.Forbidden(p.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// validateStrategy: a Kubernetes-defined name, or a qualified name. As
// upstream, errors are reported at <fldPath>.strategy.
func validateStrategy(s coordinationv1.CoordinatedLeaseStrategy, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !strings.Contains(string(s), "/") {
		if !slices.Contains(validLeaseStrategies, s) {
			errs = append(errs, field.NotSupported(fldPath.Child("strategy"), s, validLeaseStrategies))
		}
		return errs
	}
	for _, msg := range validation.IsQualifiedName(string(s)) {
		errs = append(errs, field.Invalid(fldPath.Child("strategy"), s, msg))
	}
	return errs
}
