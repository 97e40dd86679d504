// Package networking installs the networking.k8s.io/v1 types into a scheme.
package networking

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/core"
	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
)

// Install registers networking.k8s.io/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, networkingv1.AddToScheme, networkingv1.SchemeGroupVersion, &networkingv1.NetworkPolicy{}); err != nil {
		return err
	}
	RegisterDefaults(scheme)
	return nil
}

// RegisterDefaults adds the networking/v1 defaulters to scheme, as
// upstream's pkg/apis/networking/v1 defaults.go. Ingresses have none.
func RegisterDefaults(scheme *runtime.Scheme) {
	core.AddDefaulters(scheme, &networkingv1.NetworkPolicy{}, &networkingv1.NetworkPolicyList{},
		func(l *networkingv1.NetworkPolicyList) []networkingv1.NetworkPolicy { return l.Items }, setDefaultsNetworkPolicy)
	core.AddDefaulters(scheme, &networkingv1.IngressClass{}, &networkingv1.IngressClassList{},
		func(l *networkingv1.IngressClassList) []networkingv1.IngressClass { return l.Items }, setDefaultsIngressClass)
}

// setDefaultsNetworkPolicy: ports default to TCP; without policyTypes a
// policy is an Ingress policy, and an Egress one too when it has egress
// rules.
func setDefaultsNetworkPolicy(np *networkingv1.NetworkPolicy) {
	spec := &np.Spec
	if len(spec.PolicyTypes) == 0 {
		spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(spec.Egress) != 0 {
			spec.PolicyTypes = append(spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	for i := range spec.Ingress {
		setPortDefaults(spec.Ingress[i].Ports)
	}
	for i := range spec.Egress {
		setPortDefaults(spec.Egress[i].Ports)
	}
}

func setPortDefaults(ports []networkingv1.NetworkPolicyPort) {
	for i := range ports {
		if ports[i].Protocol == nil {
			ports[i].Protocol = ptr.To(corev1.ProtocolTCP)
		}
	}
}

// setDefaultsIngressClass: parameters are cluster-scoped unless said
// otherwise.
func setDefaultsIngressClass(ic *networkingv1.IngressClass) {
	if p := ic.Spec.Parameters; p != nil && p.Scope == nil {
		p.Scope = ptr.To(networkingv1.IngressClassParametersReferenceScopeCluster)
	}
}
