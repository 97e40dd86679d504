package validation

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateIngressStatusUpdate(t *testing.T) {
	old := &networkingv1.Ingress{}
	old.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "010.0.0.9"}}
	ing := &networkingv1.Ingress{}
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{
		{IP: "010.0.0.9"}, // stored before strict validation: may stay
		{IP: "x"}, {Hostname: "10.0.0.1"}, {Hostname: "Not_DNS"}, {IP: "10.0.0.2", Hostname: "lb.example.com"},
	}
	apitesting.ExpectFieldErrors(t, ValidateIngressStatusUpdate(ing, old),
		"Invalid status.loadBalancer.ingress[1].ip", "Invalid status.loadBalancer.ingress[2].hostname", "Invalid status.loadBalancer.ingress[3].hostname")
}
