// Package validation checks core/v1 objects the way upstream Kubernetes'
// pkg/apis/core/validation does (same field paths, error types and messages),
// but on the versioned k8s.io/api types and only for the rules skiff needs.
// Metadata is validated by the shared registry strategy; the functions here
// cover the rest of each object. Objects are expected to be defaulted.
package validation

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

const (
	isNegativeErrorMsg    = apimachineryvalidation.IsNegativeErrorMsg
	isNotIntegerErrorMsg  = "must be an integer"
	isNotPositiveErrorMsg = "must be greater than zero"
	fileModeErrorMsg      = "must be a number between 0 and 0777 (octal), both inclusive"
	emptyDirModeErrorMsg  = "must be a number between 0 and 01777 (octal), both inclusive"
)

// ForCreate adapts a typed validation function to store.Resource.Validate.
func ForCreate[T runtime.Object](f func(T) field.ErrorList) func(runtime.Object) field.ErrorList {
	return func(obj runtime.Object) field.ErrorList {
		o, ok := obj.(T)
		if !ok {
			return field.ErrorList{field.InternalError(nil, fmt.Errorf("unexpected object type %T", obj))}
		}
		return f(o)
	}
}

// ForUpdate adapts a typed update validation function to
// store.Resource.ValidateUpdate.
func ForUpdate[T runtime.Object](f func(obj, old T) field.ErrorList) func(obj, old runtime.Object) field.ErrorList {
	return func(obj, old runtime.Object) field.ErrorList {
		o, ok1 := obj.(T)
		p, ok2 := old.(T)
		if !ok1 || !ok2 {
			return field.ErrorList{field.InternalError(nil, fmt.Errorf("unexpected object types %T, %T", obj, old))}
		}
		return f(o, p)
	}
}

// msgs turns validator messages into Invalid errors at fldPath.
func msgs(fldPath *field.Path, value interface{}, messages []string) field.ErrorList {
	var errs field.ErrorList
	for _, m := range messages {
		errs = append(errs, field.Invalid(fldPath, value, m))
	}
	return errs
}

// ValidateDNS1123Label checks value is a DNS label (RFC 1123).
func ValidateDNS1123Label(value string, fldPath *field.Path) field.ErrorList {
	return msgs(fldPath, value, validation.IsDNS1123Label(value))
}

// ValidateDNS1123Subdomain checks value is a DNS subdomain (RFC 1123).
func ValidateDNS1123Subdomain(value string, fldPath *field.Path) field.ErrorList {
	return msgs(fldPath, value, validation.IsDNS1123Subdomain(value))
}

// ValidateQualifiedName checks value is a qualified name ("prefix/name").
func ValidateQualifiedName(value string, fldPath *field.Path) field.ErrorList {
	return msgs(fldPath, value, validation.IsQualifiedName(value))
}

func validateName(fn apimachineryvalidation.ValidateNameFunc, value string, fldPath *field.Path) field.ErrorList {
	return msgs(fldPath, value, fn(value, false))
}

// ValidateNonnegativeField checks value >= 0.
func ValidateNonnegativeField(value int64, fldPath *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateNonnegativeField(value, fldPath)
}

// ValidatePositiveField checks value > 0.
func ValidatePositiveField(value int64, fldPath *field.Path) field.ErrorList {
	if value <= 0 {
		return field.ErrorList{field.Invalid(fldPath, value, isNotPositiveErrorMsg)}
	}
	return nil
}

// ValidateImmutableField reports "field is immutable" when the values differ.
func ValidateImmutableField(newVal, oldVal interface{}, fldPath *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

func validateNonnegativeQuantity(value resource.Quantity, fldPath *field.Path) field.ErrorList {
	if value.Cmp(resource.Quantity{}) < 0 {
		return field.ErrorList{field.Invalid(fldPath, value.String(), isNegativeErrorMsg)}
	}
	return nil
}

func validatePositiveQuantity(value resource.Quantity, fldPath *field.Path) field.ErrorList {
	if value.Cmp(resource.Quantity{}) <= 0 {
		return field.ErrorList{field.Invalid(fldPath, value.String(), isNotPositiveErrorMsg)}
	}
	return nil
}

// validateIP is upstream's IsValidIPForLegacyField with strict validation
// (StrictIPCIDRValidation is on by default in 1.37); oldIPs are tolerated.
func validateIP(fldPath *field.Path, value string, oldIPs []string) field.ErrorList {
	return validation.IsValidIPForLegacyField(fldPath, value, true, oldIPs)
}

func validateCIDR(fldPath *field.Path, value string, oldCIDRs []string) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(fldPath, value, true, oldCIDRs)
}

// ValidateEndpointIP rejects the addresses an endpoint may not have
// (unspecified, loopback, link-local).
func ValidateEndpointIP(ipAddress string, fldPath *field.Path) field.ErrorList {
	ip := netutils.ParseIPSloppy(ipAddress)
	if ip == nil {
		return field.ErrorList{field.Invalid(fldPath, ipAddress, "must be a valid IP address")}
	}
	var errs field.ErrorList
	if ip.IsUnspecified() {
		errs = append(errs, field.Invalid(fldPath, ipAddress, fmt.Sprintf("may not be unspecified (%v)", ipAddress)))
	}
	if ip.IsLoopback() {
		errs = append(errs, field.Invalid(fldPath, ipAddress, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if ip.IsLinkLocalUnicast() {
		errs = append(errs, field.Invalid(fldPath, ipAddress, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if ip.IsLinkLocalMulticast() {
		errs = append(errs, field.Invalid(fldPath, ipAddress, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
}

// ValidatePortNumOrName checks a port number (1-65535) or IANA port name.
func ValidatePortNumOrName(port intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	switch port.Type {
	case intstr.Int:
		return msgs(fldPath, port.IntValue(), validation.IsValidPortNum(port.IntValue()))
	case intstr.String:
		return msgs(fldPath, port.StrVal, validation.IsValidPortName(port.StrVal))
	}
	return field.ErrorList{field.InternalError(fldPath, fmt.Errorf("unknown type: %v", port.Type))}
}

// validateLabelValue reports label value errors joined, as upstream does for
// taints and tolerations.
func labelValueErrors(value string) string {
	if errs := validation.IsValidLabelValue(value); len(errs) != 0 {
		return strings.Join(errs, ";")
	}
	return ""
}
