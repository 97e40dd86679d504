package tracker

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func service(name string, mutate func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Ports:      []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

type ep struct {
	ip, node               string
	ready, serving, termin bool
}

func slice(service, name string, port int32, eps ...ep) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discovery.LabelServiceName: service}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{
			Addresses:  []string{e.ip},
			NodeName:   ptr.To(e.node),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.termin)},
		})
	}
	return s
}

var httpPort = ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "web"}, Port: "http", Protocol: v1.ProtocolTCP}

func TestServiceSkips(t *testing.T) {
	for name, svc := range map[string]*v1.Service{
		"headless": service("web", func(s *v1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = v1.ClusterIPNone, []string{v1.ClusterIPNone}
		}),
		"externalName": service("web", func(s *v1.Service) { s.Spec.Type, s.Spec.ExternalName = v1.ServiceTypeExternalName, "example.com" }),
		"other proxy":  service("web", func(s *v1.Service) { s.Labels = map[string]string{LabelServiceProxyName: "other"} }),
		"ipv6 only":    service("web", func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::10", []string{"fd00::10"} }),
	} {
		t.Run(name, func(t *testing.T) {
			tr := New(v1.IPv4Protocol, "node1")
			if tr.ServiceUpdate(nil, svc) {
				t.Error("a skipped service left a pending change")
			}
			tr.Apply()
			if len(tr.Services) != 0 {
				t.Errorf("skipped service proxied: %v", tr.Services)
			}
		})
	}
}

func TestServicePortFields(t *testing.T) {
	tr := New(v1.IPv4Protocol, "node1")
	svc := service("web", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"192.0.2.1", "2001:db8::1"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 31000
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.7"}, {IP: "198.51.100.8", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)}}
	})
	if !tr.ServiceUpdate(nil, svc) {
		t.Fatal("no pending change for a new service")
	}
	res := tr.Apply()
	if !res.UpdatedServices.Has(httpPort.NamespacedName) {
		t.Errorf("updated services %v lack ns/web", res.UpdatedServices)
	}
	p := tr.Services[httpPort]
	if p == nil {
		t.Fatalf("no port %s in %v", httpPort, tr.Services)
	}
	if p.ClusterIP.String() != "10.96.0.10" || p.Port != 80 || p.NodePort != 30080 || p.StickyMaxAgeSeconds != 60 ||
		p.HealthCheckNodePort != 31000 || !p.ExternalPolicyLocal || p.InternalPolicyLocal {
		t.Errorf("port %+v", p)
	}
	if len(p.ExternalIPs) != 1 || p.ExternalIPs[0].String() != "192.0.2.1" {
		t.Errorf("external IPs %v, want only the IPv4 one", p.ExternalIPs)
	}
	if len(p.LoadBalancerVIPs) != 1 || p.LoadBalancerVIPs[0].String() != "198.51.100.7" {
		t.Errorf("LB VIPs %v, want the VIP-mode one", p.LoadBalancerVIPs)
	}
	if httpPort.String() != "ns/web:http" {
		t.Errorf("port name %q", httpPort.String())
	}

	// Deleted: gone at the next Apply; an unchanged update is no change.
	if tr.ServiceUpdate(svc, svc.DeepCopy()) {
		t.Error("an unchanged update left a pending change")
	}
	tr.ServiceUpdate(svc, nil)
	tr.Apply()
	if len(tr.Services) != 0 {
		t.Errorf("deleted service still proxied: %v", tr.Services)
	}
}

func TestEndpointsAcrossSlices(t *testing.T) {
	tr := New(v1.IPv4Protocol, "node1")
	a := slice("web", "web-a", 8080, ep{"10.0.0.2", "node1", true, true, false}, ep{"10.0.0.1", "node2", true, true, false})
	b := slice("web", "web-b", 8080, ep{"10.0.0.3", "node2", false, true, true}, ep{"10.0.0.1", "node2", false, true, true})
	if !tr.EndpointSliceUpdate(a, false) || !tr.EndpointSliceUpdate(b, false) {
		t.Fatal("new slices were no change")
	}
	if tr.EndpointSliceUpdate(a.DeepCopy(), false) {
		t.Error("an unchanged slice was a change")
	}
	res := tr.Apply()
	if !res.UpdatedServices.Has(httpPort.NamespacedName) {
		t.Errorf("updated services %v", res.UpdatedServices)
	}
	eps := tr.Endpoints[httpPort]
	var got []string
	for _, e := range eps {
		got = append(got, e.String())
	}
	if want := []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("endpoints %v, want %v (deduplicated, sorted)", got, want)
	}
	if !eps[0].Ready || eps[0].Terminating {
		t.Errorf("10.0.0.1 in a ready and a terminating slice: %+v, want the ready entry", eps[0])
	}
	if !eps[1].Local || eps[0].Local {
		t.Errorf("locality: %+v %+v", eps[0], eps[1])
	}

	// Slices removed: no endpoints.
	tr.EndpointSliceUpdate(a, true)
	tr.EndpointSliceUpdate(b, true)
	tr.Apply()
	if len(tr.Endpoints) != 0 {
		t.Errorf("endpoints after removing the slices: %v", tr.Endpoints)
	}
	// A slice of another family, or without the service label, is ignored.
	v6 := slice("web", "web-6", 80)
	v6.AddressType = discovery.AddressTypeIPv6
	noLabel := slice("web", "x", 80)
	noLabel.Labels = nil
	if tr.EndpointSliceUpdate(v6, false) || tr.EndpointSliceUpdate(noLabel, false) {
		t.Error("an ignored slice was a change")
	}
}

func ips(eps []*Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.IP)
	}
	return out
}

func TestCategorize(t *testing.T) {
	ready1 := &Endpoint{IP: "10.0.0.1", Port: 80, Ready: true, Serving: true}
	ready2Local := &Endpoint{IP: "10.0.0.2", Port: 80, Ready: true, Serving: true, Local: true}
	termLocal := &Endpoint{IP: "10.0.0.3", Port: 80, Serving: true, Terminating: true, Local: true}
	notServing := &Endpoint{IP: "10.0.0.4", Port: 80, Terminating: true}
	cluster := &ServicePort{Port: 80}
	for name, tc := range map[string]struct {
		eps                       []*Endpoint
		svc                       *ServicePort
		cluster, local, reachable []string
		any                       bool
	}{
		"ready only":                          {[]*Endpoint{ready1, ready2Local, termLocal}, cluster, []string{"10.0.0.1", "10.0.0.2"}, nil, []string{"10.0.0.1", "10.0.0.2"}, true},
		"serving terminating when none ready": {[]*Endpoint{termLocal, notServing}, cluster, []string{"10.0.0.3"}, nil, []string{"10.0.0.3"}, true},
		"nothing usable":                      {[]*Endpoint{notServing}, cluster, nil, nil, nil, false},
		"internal local":                      {[]*Endpoint{ready1, ready2Local}, &ServicePort{InternalPolicyLocal: true}, nil, []string{"10.0.0.2"}, []string{"10.0.0.2"}, true},
		"internal local, none local":          {[]*Endpoint{ready1}, &ServicePort{InternalPolicyLocal: true}, nil, nil, nil, true},
		"external local":                      {[]*Endpoint{ready1, ready2Local}, &ServicePort{NodePort: 30000, ExternalPolicyLocal: true}, []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.2"}, []string{"10.0.0.1", "10.0.0.2"}, true},
		"external local, local terminating":   {[]*Endpoint{ready1, termLocal}, &ServicePort{NodePort: 30000, ExternalPolicyLocal: true}, []string{"10.0.0.1"}, []string{"10.0.0.3"}, []string{"10.0.0.1", "10.0.0.3"}, true},
	} {
		t.Run(name, func(t *testing.T) {
			c, l, r, any := Categorize(tc.eps, tc.svc)
			if g, w := ips(c), tc.cluster; !equal(g, w) {
				t.Errorf("cluster %v, want %v", g, w)
			}
			if g, w := ips(l), tc.local; !equal(g, w) {
				t.Errorf("local %v, want %v", g, w)
			}
			if g, w := ips(r), tc.reachable; !equal(g, w) {
				t.Errorf("reachable %v, want %v", g, w)
			}
			if any != tc.any {
				t.Errorf("any %v, want %v", any, tc.any)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
