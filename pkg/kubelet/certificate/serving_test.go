package certificate

import (
	"net"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestTemplate(t *testing.T) {
	if got := Template("n1", nil); got != nil {
		t.Errorf("no addresses: %+v, want no request", got)
	}
	if got := Template("n1", []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "not-an-ip"}, {Type: corev1.NodeHostName}}); got != nil {
		t.Errorf("no usable addresses: %+v, want no request", got)
	}
	got := Template("n1", []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.0.2"},
		{Type: corev1.NodeHostName, Address: "n1.example"},
		{Type: corev1.NodeExternalIP, Address: "2001:db8::1"},
		{Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
		{Type: corev1.NodeExternalDNS, Address: "a.example"},
		{Type: corev1.NodeInternalDNS, Address: "n1.example"},
		{Type: corev1.NodeExternalIP, Address: "10.0.0.2"},
	})
	if got.Subject.CommonName != "system:node:n1" || !reflect.DeepEqual(got.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject %+v", got.Subject)
	}
	if want := []string{"a.example", "n1.example"}; !reflect.DeepEqual(got.DNSNames, want) {
		t.Errorf("DNS names %v, want %v", got.DNSNames, want)
	}
	want := []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("10.0.0.2"), net.ParseIP("2001:db8::1")}
	if len(got.IPAddresses) != len(want) {
		t.Fatalf("IPs %v, want %v", got.IPAddresses, want)
	}
	for i := range want {
		if !got.IPAddresses[i].Equal(want[i]) {
			t.Errorf("IPs %v, want %v", got.IPAddresses, want)
		}
	}
}
