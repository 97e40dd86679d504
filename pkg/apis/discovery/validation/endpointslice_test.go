package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func slice(mutate func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.1.2.3"}, Hostname: ptr.To("web-0"), NodeName: ptr.To("node-1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "zone-a"}}},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](80), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

func TestValidateEndpointSlice(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*discoveryv1.EndpointSlice)
		want   []string
	}{
		{"valid", nil, nil},
		{"valid fqdn", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints[0].Addresses = []string{"example.com"}
		}, nil},
		{"no address type", func(s *discoveryv1.EndpointSlice) { s.AddressType = "" }, []string{"Required addressType"}},
		{"bad address type", func(s *discoveryv1.EndpointSlice) { s.AddressType = "IPv5" }, []string{"NotSupported addressType"}},
		{"addresses", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints = append(s.Endpoints,
				discoveryv1.Endpoint{},
				discoveryv1.Endpoint{Addresses: []string{"not-an-ip", "::1", "127.0.0.1"}})
		}, []string{
			"Required endpoints[1].addresses",
			"Invalid endpoints[2].addresses[0]",
			"Invalid endpoints[2].addresses",
			"Invalid endpoints[2].addresses[1]",
			"Invalid endpoints[2].addresses[2]",
		}},
		{"endpoint fields", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints[0].Hostname = ptr.To("Bad_Host")
			s.Endpoints[0].NodeName = ptr.To("Bad_Node")
			s.Endpoints[0].Hints.ForZones = append(s.Endpoints[0].Hints.ForZones, discoveryv1.ForZone{Name: "zone-a"})
		}, []string{"Invalid endpoints[0].hostname", "Invalid endpoints[0].nodeName", "Duplicate endpoints[0].hints.forZones[1].name"}},
		{"ports", func(s *discoveryv1.EndpointSlice) {
			s.Ports = append(s.Ports,
				discoveryv1.EndpointPort{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP)},
				discoveryv1.EndpointPort{Name: ptr.To("Bad_Name")},
				discoveryv1.EndpointPort{Protocol: ptr.To[corev1.Protocol]("HTTP"), AppProtocol: ptr.To("a b")},
				discoveryv1.EndpointPort{Protocol: ptr.To(corev1.ProtocolUDP)})
		}, []string{
			"Duplicate ports[1].name",
			"Invalid ports[2].name",
			"Required ports[2].protocol",
			"NotSupported ports[3].protocol",
			"Invalid ports[3].appProtocol",
			"Duplicate ports[4].name",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateEndpointSlice(slice(tc.mutate)), tc.want...)
		})
	}
}

func TestValidateEndpointSliceUpdate(t *testing.T) {
	apitesting.ExpectFieldErrors(t, ValidateEndpointSliceUpdate(slice(func(s *discoveryv1.EndpointSlice) {
		s.Endpoints[0].Addresses = []string{"10.1.2.4"}
	}), slice(nil)))
	apitesting.ExpectFieldErrors(t, ValidateEndpointSliceUpdate(slice(func(s *discoveryv1.EndpointSlice) {
		s.AddressType = discoveryv1.AddressTypeIPv6
		s.Endpoints[0].Addresses = []string{"fd00::1"}
	}), slice(nil)), "Invalid addressType")
	// Stored endpoints that fail newer rules may stay as they are.
	old := slice(func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"127.0.0.1"} })
	apitesting.ExpectFieldErrors(t, ValidateEndpointSliceUpdate(old.DeepCopy(), old))
}
