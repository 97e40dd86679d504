package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateService(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []string
	}{
		{"valid", nil, nil},
		{"valid with cluster IP only", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.10" }, nil},
		{"valid headless without ports", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.Ports = "None", []string{"None"}, nil
		}, nil},
		{"valid node port", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports[0].NodePort = 30080
		}, nil},
		{"valid external name", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.Selector, s.Spec.Ports, s.Spec.InternalTrafficPolicy = corev1.ServiceTypeExternalName, "example.com.", nil, nil, nil
		}, nil},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil }, []string{"Required spec.ports"}},
		{"bad port", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0; s.Spec.Ports[0].Protocol = "HTTP" },
			[]string{"Invalid spec.ports[0].port", "NotSupported spec.ports[0].protocol"}},
		{"unnamed ports", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 81, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(81)})
		}, []string{"Required spec.ports[0].name", "Required spec.ports[1].name"}},
		{"duplicate port names and ports", func(s *corev1.Service) {
			s.Spec.Ports[0].Name = "a"
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "a", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(81)})
		}, []string{"Duplicate spec.ports[1].name", "Duplicate spec.ports[1]"}},
		{"bad target port", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("Not_A_Name") },
			[]string{"Invalid spec.ports[0].targetPort"}},
		{"bad type", func(s *corev1.Service) { s.Spec.Type = "Magic" }, []string{"NotSupported spec.type"}},
		{"external name missing", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.InternalTrafficPolicy = corev1.ServiceTypeExternalName, nil
		}, []string{"Required spec.externalName"}},
		{"session affinity", func(s *corev1.Service) { s.Spec.SessionAffinity = "Sticky" }, []string{"NotSupported spec.sessionAffinity"}},
		{"client IP affinity needs config", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP },
			[]string{"Required spec.sessionAffinityConfig"}},
		{"node port on cluster IP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30000 },
			[]string{"Forbidden spec.ports[0].nodePort"}},
		{"headless load balancer", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ClusterIP = corev1.ServiceTypeLoadBalancer, "None"
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(true)
		}, []string{"Invalid spec.clusterIPs[0]"}},
		{"cluster IPs mismatch", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.1", []string{"10.0.0.2"} },
			[]string{"Invalid spec.clusterIPs"}},
		{"bad cluster IP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.300" }, []string{"Invalid spec.clusterIPs[0]"}},
		{"bad selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"a": "b c"} }, []string{"Invalid spec.selector"}},
		{"missing traffic policy", func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = nil },
			[]string{"Required spec.internalTrafficPolicy"}},
		{"external traffic policy on cluster IP", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal },
			[]string{"Invalid spec.externalTrafficPolicy"}},
		{"bad external IP", func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"127.0.0.1"}
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}, []string{"Invalid spec.externalIPs[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateService(service(tc.mutate)), tc.want...)
		})
	}
}

func TestValidateServiceUpdate(t *testing.T) {
	allocated := func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.10", []string{"10.0.0.10"}
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	}
	cases := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []string
		detail string
	}{
		{"unchanged", allocated, nil, ""},
		{"cluster IP left out", func(s *corev1.Service) {}, nil, ""},
		{"cluster IP changed", func(s *corev1.Service) {
			allocated(s)
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.11", []string{"10.0.0.11"}
		}, []string{"Invalid spec.clusterIPs[0]"}, "may not change once set"},
		{"family changed", func(s *corev1.Service) {
			allocated(s)
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		}, []string{"Invalid spec.ipFamilies[0]", "Invalid spec.clusterIPs[0]"}, "may not change once set"},
		{"type change to external name", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.InternalTrafficPolicy = corev1.ServiceTypeExternalName, "example.com", nil
		}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateServiceUpdate(service(tc.mutate), service(allocated))
			apitesting.ExpectFieldErrors(t, errs, tc.want...)
			if tc.detail != "" {
				apitesting.ExpectErrorDetail(t, errs, tc.detail)
			}
		})
	}
}
