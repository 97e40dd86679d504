package service

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
)

func slice(family discoveryv1.AddressType, port string, num int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{AddressType: family, Endpoints: eps,
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(port), Port: ptr.To(num)}}}
}

func ep(addr string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestRandomEndpoint(t *testing.T) {
	v4 := slice(discoveryv1.AddressTypeIPv4, "http", 8080, ep("10.0.0.1", ptr.To(false)), ep("10.0.0.2", nil))
	v6 := slice(discoveryv1.AddressTypeIPv6, "http", 8080, ep("fd00::1", ptr.To(true)))
	other := slice(discoveryv1.AddressTypeIPv4, "metrics", 9090, ep("10.0.0.3", ptr.To(true)))
	for range 20 {
		// Not-ready endpoints are skipped; unknown readiness counts as ready.
		if got, err := randomEndpoint("s", []*discoveryv1.EndpointSlice{v4}, "http", corev1.IPv4Protocol, nil); err != nil || got != "10.0.0.2:8080" {
			t.Fatalf("v4: %q %v", got, err)
		}
		// The service's family first.
		if got, _ := randomEndpoint("s", []*discoveryv1.EndpointSlice{v4, v6}, "http", corev1.IPv6Protocol, nil); got != "[fd00::1]:8080" {
			t.Fatalf("v6 preferred: %q", got)
		}
		if got, _ := randomEndpoint("s", []*discoveryv1.EndpointSlice{v6, v4, other}, "metrics", corev1.IPv4Protocol, nil); got != "10.0.0.3:9090" {
			t.Fatalf("by port name: %q", got)
		}
	}
	// The validity check (a pod of the namespace) filters too.
	_, err := randomEndpoint("s", []*discoveryv1.EndpointSlice{v4}, "http", corev1.IPv4Protocol, func(*discoveryv1.Endpoint) bool { return false })
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), `no endpoints available for service "s"`) {
		t.Errorf("none valid: %v", err)
	}
	if _, err := randomEndpoint("s", []*discoveryv1.EndpointSlice{other}, "http", corev1.IPv4Protocol, nil); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("no such port: %v", err)
	}
}
