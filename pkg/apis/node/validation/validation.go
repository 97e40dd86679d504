// Package validation checks node.k8s.io/v1 RuntimeClasses the way upstream
// Kubernetes' pkg/apis/node/validation does. Metadata is validated by the
// registry strategy.
package validation

import (
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// ValidateRuntimeClass: the handler is a DNS label; the pod overhead names
// container resources; scheduling has valid node selector labels and
// distinct, valid tolerations.
func ValidateRuntimeClass(rc *nodev1.RuntimeClass) field.ErrorList {
	var errs field.ErrorList
	if rc.Handler == "" {
		errs = append(errs, field.Required(field.NewPath("handler"), ""))
	} else {
		for _, msg := range apivalidation.NameIsDNSLabel(rc.Handler, false) {
			errs = append(errs, field.Invalid(field.NewPath("handler"), rc.Handler, msg))
		}
	}
	if rc.Overhead != nil {
		// Upstream checks the overhead as a container's limits, hence the
		// "limits" in the path.
		p := field.NewPath("overhead", "limits")
		for name, q := range rc.Overhead.PodFixed {
			errs = append(errs, corevalidation.ValidateContainerResourceName(name, p.Key(string(name)))...)
			errs = append(errs, corevalidation.ValidateResourceQuantityValue(name, q, p.Key(string(name)))...)
		}
	}
	if s := rc.Scheduling; s != nil {
		p := field.NewPath("scheduling")
		if s.NodeSelector != nil {
			errs = append(errs, metavalidation.ValidateLabels(s.NodeSelector, p.Child("nodeSelector"))...)
		}
		errs = append(errs, corevalidation.ValidateTolerations(s.Tolerations, p.Child("tolerations"))...)
		seen := map[corev1.Toleration]bool{}
		for i, t := range s.Tolerations {
			key := corev1.Toleration{Key: t.Key, Operator: t.Operator, Value: t.Value, Effect: t.Effect}
			if seen[key] {
				errs = append(errs, field.Duplicate(p.Child("tolerations").Index(i), t))
			}
			seen[key] = true
		}
	}
	return errs
}

// ValidateRuntimeClassUpdate: the handler is immutable.
func ValidateRuntimeClassUpdate(rc, old *nodev1.RuntimeClass) field.ErrorList {
	errs := ValidateRuntimeClass(rc)
	return append(errs, apivalidation.ValidateImmutableField(rc.Handler, old.Handler, field.NewPath("handler"))...)
}
