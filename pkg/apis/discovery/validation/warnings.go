package validation

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Upstream's EndpointSlice controllers fix their IPs up: no warnings for
// their slices.
var quietManagers = map[string]bool{"endpointslice-controller.k8s.io": true, "endpointslicemirroring-controller.k8s.io": true}

// EndpointSliceWarnings are upstream's warnings on writing an EndpointSlice:
// the deprecated FQDN address type (on create; it is immutable) and
// addresses in non-canonical form.
func EndpointSliceWarnings(obj, old runtime.Object) []string {
	eps := obj.(*discoveryv1.EndpointSlice)
	var warnings []string
	if old == nil && eps.AddressType == discoveryv1.AddressTypeFQDN {
		warnings = append(warnings, field.NewPath("spec").Child("addressType").String()+": FQDN endpoints are deprecated")
	}
	if quietManagers[eps.Labels[discoveryv1.LabelManagedBy]] {
		return warnings
	}
	for i, ep := range eps.Endpoints {
		for j, addr := range ep.Addresses {
			warnings = append(warnings, utilvalidation.GetWarningsForIP(field.NewPath("endpoints").Index(i).Child("addresses").Index(j), addr)...)
		}
	}
	return warnings
}
