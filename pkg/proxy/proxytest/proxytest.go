// Package proxytest holds what the proxy modes' unit tests build and
// check alike: Services, EndpointSlices and lines of a rules dump. Only
// tests import it.
package proxytest

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Service is the ClusterIP Service ns/name at clusterIP with the port
// p80 (80/TCP), then changed by mutate unless nil.
func Service(ns, name, clusterIP string, mutate func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP,
			Ports: []v1.ServicePort{{Name: "p80", Port: 80, Protocol: v1.ProtocolTCP}}},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

// EndpointSlice is the IPv4 slice of the Service ns/name with its port
// p80 at port/protocol and endpoints.
func EndpointSlice(ns, name string, port int32, protocol v1.Protocol, endpoints ...discovery.Endpoint) *discovery.EndpointSlice {
	return &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("p80"), Port: ptr.To(port), Protocol: ptr.To(protocol)}},
		Endpoints:   endpoints,
	}
}

// Endpoint is an endpoint at ip with conditions, on node unless that is "".
func Endpoint(ip, node string, conditions discovery.EndpointConditions) discovery.Endpoint {
	e := discovery.Endpoint{Addresses: []string{ip}, Conditions: conditions}
	if node != "" {
		e.NodeName = ptr.To(node)
	}
	return e
}

// HasLine fails t unless data has the line.
func HasLine(t testing.TB, data, line string) {
	t.Helper()
	for _, l := range strings.Split(data, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("no line\n  %s\nin\n%s", line, data)
}

// Lacks fails t when data holds substr.
func Lacks(t testing.TB, data, substr string) {
	t.Helper()
	if strings.Contains(data, substr) {
		t.Errorf("unexpected %q in\n%s", substr, data)
	}
}
