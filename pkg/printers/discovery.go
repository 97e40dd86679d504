package printers

import (
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
)

var endpointSliceTable = newTable(
	cols(
		nameColumn(),
		column("AddressType", "string", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["addressType"]),
		column("Ports", "string", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["ports"]),
		column("Endpoints", "string", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["endpoints"]),
		ageColumn(),
	),
	func(s *discoveryv1.EndpointSlice) []any {
		ports := truncatedList{max: 3}
		for _, p := range s.Ports {
			switch {
			case p.Port != nil:
				ports.add(strconv.Itoa(int(*p.Port)))
			case p.Name != nil:
				ports.add(*p.Name)
			default:
				ports.add("*")
			}
		}
		endpoints := truncatedList{max: 3}
		for _, ep := range s.Endpoints {
			for _, a := range ep.Addresses {
				endpoints.add(a)
			}
		}
		return []any{s.Name, string(s.AddressType), ports.String(), endpoints.String(), age(s.CreationTimestamp)}
	},
)
