package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/pkg/apis/core/helper"
)

const (
	hugePagesPrefix         = corev1.ResourceHugePagesPrefix
	requestsHugePagesPrefix = "requests." + corev1.ResourceHugePagesPrefix
	requestsPrefix          = corev1.DefaultResourceRequestsPrefix
)

var (
	standardContainerResources = sets.New(corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage)
	standardQuotaResources     = sets.New(
		corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage,
		corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsStorage, corev1.ResourceRequestsEphemeralStorage,
		corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage,
		corev1.ResourcePods, corev1.ResourceQuotas, corev1.ResourceServices, corev1.ResourceReplicationControllers,
		corev1.ResourceSecrets, corev1.ResourcePersistentVolumeClaims, corev1.ResourceConfigMaps,
		corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
	)
	standardResources = standardQuotaResources.Union(sets.New(corev1.ResourceStorage))
	integerResources  = sets.New(
		corev1.ResourcePods, corev1.ResourceQuotas, corev1.ResourceServices, corev1.ResourceReplicationControllers,
		corev1.ResourceSecrets, corev1.ResourceConfigMaps, corev1.ResourcePersistentVolumeClaims,
		corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
	)
	podLevelResources = sets.New(corev1.ResourceCPU, corev1.ResourceMemory)
)

func isHugePageResourceName(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), hugePagesPrefix)
}

func isOvercommitAllowed(name corev1.ResourceName) bool {
	return helper.IsNativeResource(name) && !isHugePageResourceName(name)
}

func isStandardResourceName(name corev1.ResourceName) bool {
	return standardResources.Has(name) || isQuotaHugePageResourceName(name)
}

func isQuotaHugePageResourceName(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), hugePagesPrefix) || strings.HasPrefix(string(name), requestsHugePagesPrefix)
}

func isIntegerResourceName(name corev1.ResourceName) bool {
	return integerResources.Has(name) || helper.IsExtendedResourceName(name)
}

// validateResourceName: a qualified name, standard when unprefixed.
func validateResourceName(value corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	if errs := ValidateQualifiedName(string(value), fldPath); len(errs) != 0 {
		return errs
	}
	if !strings.Contains(string(value), "/") && !isStandardResourceName(value) {
		return field.ErrorList{field.Invalid(fldPath, value, "must be a standard resource type or fully qualified")}
	}
	return nil
}

// ValidateContainerResourceName checks a resource a container may request.
func ValidateContainerResourceName(value corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	errs := validateResourceName(value, fldPath)
	if !strings.Contains(string(value), "/") {
		if !standardContainerResources.Has(value) && !isHugePageResourceName(value) {
			return append(errs, field.Invalid(fldPath, value, "must be a standard resource for containers"))
		}
	} else if !helper.IsNativeResource(value) && !helper.IsExtendedResourceName(value) {
		return append(errs, field.Invalid(fldPath, value, "doesn't follow extended resource name standard"))
	}
	return errs
}

func validatePodResourceName(value corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	if errs := validateResourceName(value, fldPath); len(errs) != 0 {
		return errs
	}
	if !podLevelResources.Has(value) && !isHugePageResourceName(value) {
		supported := append(sets.List(podLevelResources), hugePagesPrefix+"<size>")
		return field.ErrorList{field.NotSupported(fldPath, value, supported)}
	}
	return nil
}

// ValidateResourceQuotaResourceName checks a resource a quota may track.
func ValidateResourceQuotaResourceName(value corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	errs := validateResourceName(value, fldPath)
	if !strings.Contains(string(value), "/") && !standardQuotaResources.Has(value) && !isQuotaHugePageResourceName(value) {
		return append(errs, field.Invalid(fldPath, value, "must be a standard resource for quota"))
	}
	return errs
}

// ValidateResourceQuantityValue: non-negative, and whole for countable resources.
func ValidateResourceQuantityValue(name corev1.ResourceName, value resource.Quantity, fldPath *field.Path) field.ErrorList {
	errs := validateNonnegativeQuantity(value, fldPath)
	if isIntegerResourceName(name) && value.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(fldPath, value, isNotIntegerErrorMsg))
	}
	return errs
}

func hugePageValueError(name corev1.ResourceName, q resource.Quantity) error {
	if !isHugePageResourceName(name) {
		return nil
	}
	pageSize, err := resource.ParseQuantity(strings.TrimPrefix(string(name), hugePagesPrefix))
	if err != nil || pageSize.Sign() <= 0 || pageSize.MilliValue()%1000 != 0 || q.Value()%pageSize.Value() != 0 {
		return fmt.Errorf("%s is not positive integer multiple of %s", q.String(), name)
	}
	return nil
}

// validateResourceRequirements checks names, quantities and requests <= limits.
func validateResourceRequirements(req *corev1.ResourceRequirements, nameFn func(corev1.ResourceName, *field.Path) field.ErrorList, podClaims sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	limPath, reqPath := fldPath.Child("limits"), fldPath.Child("requests")
	var cpuOrMemory, hugePages bool
	for name, q := range req.Limits {
		p := limPath.Key(string(name))
		errs = append(errs, nameFn(name, p)...)
		errs = append(errs, ValidateResourceQuantityValue(name, q, p)...)
		if isHugePageResourceName(name) {
			hugePages = true
			if err := hugePageValueError(name, q); err != nil {
				errs = append(errs, field.Invalid(p, q.String(), err.Error()))
			}
		}
		if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
			cpuOrMemory = true
		}
	}
	for name, q := range req.Requests {
		p := reqPath.Key(string(name))
		errs = append(errs, nameFn(name, p)...)
		errs = append(errs, ValidateResourceQuantityValue(name, q, p)...)
		if limit, ok := req.Limits[name]; ok {
			if q.Cmp(limit) != 0 && !isOvercommitAllowed(name) {
				errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, limit.String())))
			} else if q.Cmp(limit) > 0 {
				errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
			}
		} else if !isOvercommitAllowed(name) {
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
		if isHugePageResourceName(name) {
			hugePages = true
			if err := hugePageValueError(name, q); err != nil {
				errs = append(errs, field.Invalid(p, q.String(), err.Error()))
			}
		}
		if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
			cpuOrMemory = true
		}
	}
	if hugePages && !cpuOrMemory {
		errs = append(errs, field.Forbidden(fldPath, "HugePages require cpu or memory"))
	}
	errs = append(errs, validateResourceClaimNames(req.Claims, podClaims, fldPath.Child("claims"))...)
	return errs
}

// validateResourceClaimNames: container claims must name pod claims, once.
func validateResourceClaimNames(claims []corev1.ResourceClaim, podClaims sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, claim := range claims {
		p := fldPath.Index(i)
		if claim.Name == "" {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		key := claim.Name
		if claim.Request != "" {
			errs = append(errs, ValidateDNS1123Label(claim.Request, p.Child("request"))...)
			key += "/" + claim.Request
		}
		if seen.Has(claim.Name) || seen.Has(key) {
			errs = append(errs, field.Duplicate(p, key))
		}
		seen.Insert(key)
		if !podClaims.Has(claim.Name) {
			e := field.NotFound(p, claim.Name)
			e.Detail = "must be one of the names in pod.spec.resourceClaims"
			if len(podClaims) == 0 {
				e.Detail += " which is empty"
			} else {
				e.Detail += ": " + strings.Join(sets.List(podClaims), ", ")
			}
			errs = append(errs, e)
		}
	}
	return errs
}
