package service

import (
	corev1 "k8s.io/api/core/v1"
)

func needsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

// holdsNodePorts: the types whose NodePorts are allocations; those of any
// other type are left over from a type change the client insisted on.
func holdsNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// needsNodePorts: ports without a NodePort get one allocated (a
// LoadBalancer may opt out, keeping only those it asks for).
func needsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

func needsHealthCheckNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// clusterIPs are the allocated addresses a Service holds.
func clusterIPs(svc *corev1.Service) []string {
	if !needsClusterIP(svc) {
		return nil
	}
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	if svc.Spec.ClusterIP != "" {
		return []string{svc.Spec.ClusterIP}
	}
	return nil
}

// nodePorts are the allocated ports a Service holds.
func nodePorts(svc *corev1.Service) []int {
	if !holdsNodePorts(svc) {
		return nil
	}
	var ports []int
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			ports = append(ports, int(p.NodePort))
		}
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		ports = append(ports, int(svc.Spec.HealthCheckNodePort))
	}
	return ports
}

// keepAllocatedValues carries the old object's allocations into an update
// that omits them (`kubectl replace` of a manifest without clusterIP), as
// upstream does; a changed value is left for validation to reject.
func keepAllocatedValues(svc, old *corev1.Service) {
	// Each of the pair on its own, as upstream's patchAllocatedValues: ""
	// sent with the stored clusterIPs (a headless Service's ["None"])
	// keeps both. Headless counts: "None" is its value.
	if typeHasClusterIP(svc) && typeHasClusterIP(old) {
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
		}
		if len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName {
		if len(svc.Spec.IPFamilies) == 0 {
			svc.Spec.IPFamilies = old.Spec.IPFamilies
		}
		if svc.Spec.IPFamilyPolicy == nil {
			svc.Spec.IPFamilyPolicy = old.Spec.IPFamilyPolicy
		}
	}
	if holdsNodePorts(svc) && holdsNodePorts(old) {
		for i := range svc.Spec.Ports {
			port := &svc.Spec.Ports[i]
			if port.NodePort != 0 {
				continue
			}
			for _, was := range old.Spec.Ports {
				if was.Port == port.Port && was.Protocol == port.Protocol {
					port.NodePort = was.NodePort
				}
			}
		}
	}
	if needsHealthCheckNodePort(svc) && needsHealthCheckNodePort(old) && svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

// defaultFamilies fills the dual-stack fields for a single-stack cluster, as
// upstream's REST layer does: one family (the range's), SingleStack, except
// headless Services without a selector, which get RequireDualStack.
func (a *Allocators) defaultFamilies(svc *corev1.Service) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) > 0 {
		svc.Spec.ClusterIP = svc.Spec.ClusterIPs[0]
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	}
	if svc.Spec.IPFamilyPolicy == nil {
		policy := corev1.IPFamilyPolicySingleStack
		if svc.Spec.ClusterIP == corev1.ClusterIPNone && len(svc.Spec.Selector) == 0 {
			policy = corev1.IPFamilyPolicyRequireDualStack
		}
		svc.Spec.IPFamilyPolicy = &policy
	}
	if len(svc.Spec.IPFamilies) == 0 {
		family := corev1.IPv4Protocol
		if a.IPs.IPv6() {
			family = corev1.IPv6Protocol
		}
		svc.Spec.IPFamilies = []corev1.IPFamily{family}
	}
}
