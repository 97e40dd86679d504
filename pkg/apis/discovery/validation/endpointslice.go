// Package validation checks discovery.k8s.io/v1 EndpointSlices the way
// upstream Kubernetes' pkg/apis/discovery/validation does.
package validation

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

var (
	supportedAddressTypes  = sets.New(discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)
	supportedPortProtocols = sets.New(corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)
)

const (
	maxTopologyLabels = 16
	maxAddresses      = 100
	maxPorts          = 20000
	maxEndpoints      = 1000
	maxZoneHints      = 8
	maxNodeHints      = 8
)

// ValidateEndpointSlice validates an EndpointSlice on create.
func ValidateEndpointSlice(s *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateAddressType(s.AddressType)
	errs = append(errs, validatePorts(s.Ports, field.NewPath("ports"))...)
	return append(errs, validateEndpoints(s.Endpoints, s.AddressType, field.NewPath("endpoints"))...)
}

// ValidateEndpointSliceUpdate: the address type is immutable; unchanged
// endpoints are not re-validated.
func ValidateEndpointSliceUpdate(s, old *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateAddressType(s.AddressType)
	errs = append(errs, validatePorts(s.Ports, field.NewPath("ports"))...)
	if !apiequality.Semantic.DeepEqual(s.Endpoints, old.Endpoints) {
		errs = append(errs, validateEndpoints(s.Endpoints, s.AddressType, field.NewPath("endpoints"))...)
	}
	return append(errs, corevalidation.ValidateImmutableField(s.AddressType, old.AddressType, field.NewPath("addressType"))...)
}

func validateAddressType(t discoveryv1.AddressType) field.ErrorList {
	p := field.NewPath("addressType")
	switch {
	case t == "":
		return field.ErrorList{field.Required(p, "")}
	case !supportedAddressTypes.Has(t):
		return field.ErrorList{field.NotSupported(p, t, sets.List(supportedAddressTypes))}
	}
	return nil
}

func validateEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, fldPath *field.Path) field.ErrorList {
	if len(endpoints) > maxEndpoints {
		return field.ErrorList{field.TooMany(fldPath, len(endpoints), maxEndpoints)}
	}
	var errs field.ErrorList
	for i, ep := range endpoints {
		p := fldPath.Index(i)
		ap := p.Child("addresses")
		if len(ep.Addresses) == 0 {
			errs = append(errs, field.Required(ap, "must contain at least 1 address"))
		} else if len(ep.Addresses) > maxAddresses {
			errs = append(errs, field.TooMany(ap, len(ep.Addresses), maxAddresses))
		}
		for j, addr := range ep.Addresses {
			switch addrType {
			case discoveryv1.AddressTypeIPv4:
				if e := validation.IsValidIPForLegacyField(ap.Index(j), addr, true, nil); len(e) > 0 {
					errs = append(errs, e...)
				} else {
					if !netutils.IsIPv4String(addr) {
						errs = append(errs, field.Invalid(ap, addr, "must be an IPv4 address"))
					}
					errs = append(errs, corevalidation.ValidateEndpointIP(addr, ap.Index(j))...)
				}
			case discoveryv1.AddressTypeIPv6:
				if e := validation.IsValidIP(ap.Index(j), addr); len(e) > 0 {
					errs = append(errs, e...)
				} else {
					if !netutils.IsIPv6String(addr) {
						errs = append(errs, field.Invalid(ap, addr, "must be an IPv6 address"))
					}
					errs = append(errs, corevalidation.ValidateEndpointIP(addr, ap.Index(j))...)
				}
			case discoveryv1.AddressTypeFQDN:
				errs = append(errs, validation.IsFullyQualifiedDomainName(ap.Index(j), addr)...)
			}
		}
		if ep.NodeName != nil {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(*ep.NodeName, false) {
				errs = append(errs, field.Invalid(p.Child("nodeName"), *ep.NodeName, msg))
			}
		}
		tp := p.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxTopologyLabels {
			errs = append(errs, field.TooMany(tp, len(ep.DeprecatedTopology), maxTopologyLabels))
		}
		errs = append(errs, metavalidation.ValidateLabels(ep.DeprecatedTopology, tp)...)
		if ep.Hostname != nil {
			errs = append(errs, corevalidation.ValidateDNS1123Label(*ep.Hostname, p.Child("hostname"))...)
		}
		if ep.Hints != nil {
			errs = append(errs, validateHints(ep.Hints, p.Child("hints"))...)
		}
	}
	return errs
}

func validatePorts(ports []discoveryv1.EndpointPort, fldPath *field.Path) field.ErrorList {
	if len(ports) > maxPorts {
		return field.ErrorList{field.TooMany(fldPath, len(ports), maxPorts)}
	}
	var errs field.ErrorList
	names := sets.New[string]()
	for i, port := range ports {
		p := fldPath.Index(i)
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if name != "" {
			errs = append(errs, corevalidation.ValidateDNS1123Label(name, p.Child("name"))...)
		}
		if names.Has(name) {
			errs = append(errs, field.Duplicate(p.Child("name"), name))
		}
		names.Insert(name)
		if port.Protocol == nil {
			errs = append(errs, field.Required(p.Child("protocol"), ""))
		} else if !supportedPortProtocols.Has(*port.Protocol) {
			errs = append(errs, field.NotSupported(p.Child("protocol"), *port.Protocol, sets.List(supportedPortProtocols)))
		}
		if port.AppProtocol != nil {
			errs = append(errs, corevalidation.ValidateQualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return errs
}

func validateHints(h *discoveryv1.EndpointHints, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	zp := fldPath.Child("forZones")
	if len(h.ForZones) > maxZoneHints {
		return field.ErrorList{field.TooMany(zp, len(h.ForZones), maxZoneHints)}
	}
	zones := sets.New[string]()
	for i, z := range h.ForZones {
		p := zp.Index(i).Child("name")
		if zones.Has(z.Name) {
			errs = append(errs, field.Duplicate(p, z.Name))
		}
		zones.Insert(z.Name)
		for _, msg := range validation.IsValidLabelValue(z.Name) {
			errs = append(errs, field.Invalid(p, z.Name, msg))
		}
	}
	np := fldPath.Child("forNodes")
	if len(h.ForNodes) > maxNodeHints {
		return append(errs, field.TooMany(np, len(h.ForNodes), maxNodeHints))
	}
	nodes := sets.New[string]()
	for i, n := range h.ForNodes {
		p := np.Index(i).Child("name")
		if nodes.Has(n.Name) {
			errs = append(errs, field.Duplicate(p, n.Name))
		}
		nodes.Insert(n.Name)
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(n.Name, false) {
			errs = append(errs, field.Invalid(p, n.Name, msg))
		}
	}
	return errs
}
