package validation

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// ValidateIngressStatusUpdate is upstream's: load balancer IPs (stored
// invalid ones may stay) and hostnames.
func ValidateIngressStatusUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	var errs field.ErrorList
	var existing []string
	for _, in := range old.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			existing = append(existing, in.IP)
		}
	}
	for i, in := range ing.Status.LoadBalancer.Ingress {
		p := field.NewPath("status", "loadBalancer", "ingress").Index(i)
		if in.IP != "" {
			// StrictIPCIDRValidation is on in 1.37.
			errs = append(errs, validation.IsValidIPForLegacyField(p.Child("ip"), in.IP, true, existing)...)
		}
		if in.Hostname != "" {
			for _, msg := range validation.IsDNS1123Subdomain(in.Hostname) {
				errs = append(errs, field.Invalid(p.Child("hostname"), in.Hostname, msg))
			}
			if netutils.ParseIPSloppy(in.Hostname) != nil {
				errs = append(errs, field.Invalid(p.Child("hostname"), in.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return errs
}
