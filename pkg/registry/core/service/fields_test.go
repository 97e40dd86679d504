package service

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"
)

func storedNodePort() *corev1.Service {
	return &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
		ClusterIP: "10.0.0.7", ClusterIPs: []string{"10.0.0.7"},
		IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}, IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicySingleStack),
		ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
		InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
		Ports:                 []corev1.ServicePort{{Port: 80, NodePort: 30007}}}}
}

// Only what the client sent back unchanged is dropped.
func TestDropTypeDependentFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*corev1.Service)
		want   func(*corev1.Service)
	}{{
		name:   "to ExternalName, everything unchanged",
		modify: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName },
		want: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy = "", nil, nil, nil
			s.Spec.Ports[0].NodePort = 0
			s.Spec.ExternalTrafficPolicy = ""
			s.Spec.InternalTrafficPolicy = nil
		},
	}, {
		name: "to ExternalName with a changed clusterIP and policy",
		modify: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ClusterIPs = []string{"10.0.0.8"}
			s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyPreferDualStack)
			s.Spec.Ports[0].NodePort = 30008
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		},
		want: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ClusterIPs = []string{"10.0.0.8"}
			s.Spec.IPFamilies = nil
			s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyPreferDualStack)
			s.Spec.Ports[0].NodePort = 30008
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.InternalTrafficPolicy = nil
		},
	}, {
		name:   "to ClusterIP keeps the address",
		modify: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP },
		want: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.Ports[0].NodePort = 0
			s.Spec.ExternalTrafficPolicy = ""
		},
	}, {
		name:   "same type: nothing",
		modify: func(*corev1.Service) {},
		want:   func(*corev1.Service) {},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := storedNodePort(), storedNodePort()
			tc.modify(got)
			tc.want(want)
			dropTypeDependentFields(got, storedNodePort())
			if !equality.Semantic.DeepEqual(got.Spec, want.Spec) {
				t.Errorf("got  %+v\nwant %+v", got.Spec, want.Spec)
			}
		})
	}
}

func TestNormalizeClusterIPs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ip           string
		ips, wantIPs []string
	}{
		{"singular cleared, plural as stored", "", []string{"10.0.0.7"}, nil},
		{"plural omitted by an old client", "10.0.0.7", nil, []string{"10.0.0.7"}},
		{"singular changed, plural as stored", "10.0.0.9", []string{"10.0.0.7"}, []string{"10.0.0.9"}},
		{"both changed: left to validation", "10.0.0.9", []string{"10.0.0.8"}, []string{"10.0.0.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := storedNodePort()
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = tc.ip, tc.ips
			normalizeClusterIPs(svc, storedNodePort())
			if !equality.Semantic.DeepEqual(svc.Spec.ClusterIPs, tc.wantIPs) {
				t.Errorf("clusterIPs %v, want %v", svc.Spec.ClusterIPs, tc.wantIPs)
			}
		})
	}
}
