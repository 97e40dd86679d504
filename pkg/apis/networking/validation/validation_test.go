package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func port(p intstr.IntOrString, end *int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: &p, EndPort: end}
}

func TestValidateNetworkPolicy(t *testing.T) {
	cases := []struct {
		name string
		spec networkingv1.NetworkPolicySpec
		want []string
	}{
		{"deny all", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}}, nil},
		{"valid rules", networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(80), ptr.To[int32](90)), port(intstr.FromString("http"), nil)},
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{}, NamespaceSelector: &metav1.LabelSelector{}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"10.0.1.0/24"}}},
				},
			}},
		}, nil},
		{"bad ports", networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
			port(intstr.FromInt32(100), ptr.To[int32](90)),
			{Protocol: ptr.To[corev1.Protocol]("ICMP"), Port: ptr.To(intstr.FromString("http")), EndPort: ptr.To[int32](90)},
			{EndPort: ptr.To[int32](90)},
		}}}}, []string{"Invalid spec.egress[0].ports[0].endPort", "NotSupported spec.egress[0].ports[1].protocol",
			"Invalid spec.egress[0].ports[1].endPort", "Invalid spec.egress[0].ports[2].endPort"}},
		{"bad peers", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
			{},
			{PodSelector: &metav1.LabelSelector{}, IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"192.168.0.0/24", "10.0.0.0/8"}}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.1/16"}},
			{IPBlock: &networkingv1.IPBlock{}},
		}}}}, []string{"Required spec.ingress[0].from[0]", "Forbidden spec.ingress[0].from[1]",
			"Invalid spec.ingress[0].from[1].ipBlock.except[0]", "Invalid spec.ingress[0].from[1].ipBlock.except[1]",
			"Invalid spec.ingress[0].from[2].ipBlock.cidr", "Required spec.ingress[0].from[3].ipBlock.cidr"}},
		{"policy types", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Sideways"}},
			[]string{"NotSupported spec.policyTypes[1]"}},
		{"too many policy types", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress", "Ingress"}},
			[]string{"Invalid spec.policyTypes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateNetworkPolicy(&networkingv1.NetworkPolicy{Spec: tc.spec}), tc.want...)
		})
	}

	t.Run("update keeps stored CIDRs", func(t *testing.T) {
		old := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "010.0.0.0/8"}}}}}}}
		apitesting.ExpectFieldErrors(t, ValidateNetworkPolicy(old), "Invalid spec.egress[0].to[0].ipBlock.cidr")
		apitesting.ExpectFieldErrors(t, ValidateNetworkPolicyUpdate(old.DeepCopy(), old))
	})
}

func backend(name string, number int32) *networkingv1.IngressBackend {
	return &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: number}}}
}

func TestValidateIngress(t *testing.T) {
	prefix := ptr.To(networkingv1.PathTypePrefix)
	path := func(p string, pt *networkingv1.PathType, b *networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: p, PathType: pt, Backend: *b}
	}
	rule := func(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
	}
	cases := []struct {
		name string
		ing  networkingv1.Ingress
		want []string
	}{
		{"default backend", networkingv1.Ingress{Spec: networkingv1.IngressSpec{DefaultBackend: backend("web", 80)}}, nil},
		{"rules and TLS", networkingv1.Ingress{Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"example.com", "*.example.com"}, SecretName: "tls"}},
			Rules: []networkingv1.IngressRule{
				rule("example.com", path("/", prefix, backend("1web", 80))), // a DNS label, as RelaxedServiceNameValidation allows
				rule("*.example.com", path("", ptr.To(networkingv1.PathTypeImplementationSpecific), &networkingv1.IngressBackend{
					Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("example.com"), Kind: "Bucket", Name: "static"}})),
			},
		}}, nil},
		{"nothing", networkingv1.Ingress{}, []string{"Invalid spec"}},
		{"class annotation mismatch", networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/ingress.class": "other"}},
			Spec:       networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), DefaultBackend: backend("web", 80)},
		}, []string{"Invalid annotations.kubernetes.io/ingress.class"}},
		{"bad rules", networkingv1.Ingress{Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{SecretName: "Bad_Secret"}},
			Rules: []networkingv1.IngressRule{
				rule("192.0.2.1",
					path("relative", ptr.To(networkingv1.PathTypeExact), backend("web", 80)),
					path("/a/../b/.", prefix, backend("web", 70000)),
					path("/x", nil, backend("web", 80)),
					path("/y", ptr.To[networkingv1.PathType]("Regex"), &networkingv1.IngressBackend{}),
				),
				rule("*.example.com"),
			},
		}}, []string{"Invalid spec.tls[0].secretName", "Invalid spec.rules[0].host",
			"Invalid spec.rules[0].http.paths[0].path",
			"Invalid spec.rules[0].http.paths[1].path", "Invalid spec.rules[0].http.paths[1].path",
			"Invalid spec.rules[0].http.paths[1].backend.service.port.number",
			"Required spec.rules[0].http.paths[2].pathType",
			"NotSupported spec.rules[0].http.paths[3].pathType", "Invalid spec.rules[0].http.paths[3].backend",
			"Required spec.rules[1].http.paths"}},
		{"bad backends", networkingv1.Ingress{Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Port: networkingv1.ServiceBackendPort{Name: "http", Number: 80}},
		}}}, []string{"Required spec.defaultBackend.service.name", "Invalid spec.defaultBackend"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateIngress(&tc.ing), tc.want...)
		})
	}
}

func TestValidateIngressUpdateStatus(t *testing.T) {
	old := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{DefaultBackend: backend("web", 80)}}
	ing := old.DeepCopy()
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}, {IP: "300.1.1.1"}, {Hostname: "192.0.2.2"}, {Hostname: "lb.example.com"}}
	apitesting.ExpectFieldErrors(t, ValidateIngressUpdate(ing, old),
		"Invalid status.loadBalancer.ingress[1].ip", "Invalid status.loadBalancer.ingress[2].hostname")
}

func TestValidateIngressClass(t *testing.T) {
	params := func(scope string, ns *string) *networkingv1.IngressClassParametersReference {
		return &networkingv1.IngressClassParametersReference{Kind: "K", Name: "p", Scope: &scope, Namespace: ns}
	}
	cases := []struct {
		name string
		spec networkingv1.IngressClassSpec
		want []string
	}{
		{"valid", networkingv1.IngressClassSpec{Controller: "example.com/c", Parameters: params("Namespace", ptr.To("default"))}, nil},
		{"controller without domain", networkingv1.IngressClassSpec{Controller: "c"}, []string{"Invalid spec.controller"}},
		{"namespace scope without namespace", networkingv1.IngressClassSpec{Controller: "example.com/c", Parameters: params("Namespace", nil)},
			[]string{"Required spec.parameters.namespace"}},
		{"cluster scope with namespace", networkingv1.IngressClassSpec{Controller: "example.com/c", Parameters: params("Cluster", ptr.To("x"))},
			[]string{"Forbidden spec.parameters.namespace"}},
		{"bad reference", networkingv1.IngressClassSpec{Controller: "example.com/c", Parameters: &networkingv1.IngressClassParametersReference{
			APIGroup: ptr.To("Example.COM"), Name: "a/b"}},
			[]string{"Invalid spec.parameters.apiGroup", "Required spec.parameters.kind", "Invalid spec.parameters.name", "Required spec.parameters.scope"}},
		{"unknown scope", networkingv1.IngressClassSpec{Controller: "example.com/c", Parameters: params("Galaxy", nil)},
			[]string{"NotSupported spec.parameters.scope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateIngressClass(&networkingv1.IngressClass{Spec: tc.spec}), tc.want...)
		})
	}
	old := &networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "example.com/a"}}
	apitesting.ExpectFieldErrors(t, ValidateIngressClassUpdate(&networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "example.com/b"}}, old),
		"Invalid spec.controller")
}
