package printers

import (
	"fmt"
	"strings"

	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var networkPolicyTable = newTable(
	cols(nameColumn(), column("Pod-Selector", "string", extensionsv1beta1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]), ageColumn()),
	func(np *networkingv1.NetworkPolicy) []any {
		return []any{np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), age(np.CreationTimestamp)}
	},
)

var ingressTable = newTable(
	cols(
		nameColumn(),
		column("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
		column("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
		column("Address", "string", "Address is a list containing ingress points for the load-balancer"),
		column("Ports", "string", "Ports of TLS configurations that open"),
		ageColumn(),
	),
	func(ing *networkingv1.Ingress) []any {
		lb := ing.Status.LoadBalancer.Ingress
		address := loadBalancerAddresses(len(lb), func(i int) (string, string) { return lb[i].IP, lb[i].Hostname })
		ports := "80"
		if len(ing.Spec.TLS) != 0 {
			ports = "80, 443"
		}
		return []any{ing.Name, strPtrOr(ing.Spec.IngressClassName, none), ingressHosts(ing.Spec.Rules), address, ports, age(ing.CreationTimestamp)}
	},
)

// ingressHosts lists up to three rule hosts, "*" when no rule has a host.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var list []string
	for _, r := range rules {
		if len(list) == max {
			return fmt.Sprintf("%s + %d more...", strings.Join(list, ","), len(rules)-max)
		}
		if r.Host != "" {
			list = append(list, r.Host)
		}
	}
	if len(list) == 0 {
		return "*"
	}
	return strings.Join(list, ",")
}

var ingressClassTable = newTable(
	cols(
		nameColumn(),
		column("Controller", "string", "Controller that is responsible for handling this class"),
		column("Parameters", "string", "A reference to a resource with additional parameters"),
		ageColumn(),
	),
	func(ic *networkingv1.IngressClass) []any {
		parameters := none
		if p := ic.Spec.Parameters; p != nil {
			parameters = p.Kind
			if p.APIGroup != nil {
				parameters += "." + *p.APIGroup
			}
			parameters += "/" + p.Name
		}
		return []any{ic.Name, ic.Spec.Controller, parameters, age(ic.CreationTimestamp)}
	},
)
