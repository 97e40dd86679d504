package service

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
)

// A Service is a union discriminated by spec.type (and, for the health
// check port, externalTrafficPolicy). When an update changes it, the fields
// the Service no longer has a use for are dropped, as upstream's strategy
// does, but only those the client sent back unchanged
// (a Get-modify-Update carries them along): a value the client changed
// along with the type is its intent, and validation rejects it. Dropped
// ClusterIPs and NodePorts go back to their allocators once the update is
// stored.
func dropTypeDependentFields(svc, old *corev1.Service) {
	if typeHasClusterIP(old) && !typeHasClusterIP(svc) {
		if svc.Spec.ClusterIP == old.Spec.ClusterIP && slices.Equal(svc.Spec.ClusterIPs, old.Spec.ClusterIPs) {
			svc.Spec.ClusterIP = ""
			svc.Spec.ClusterIPs = nil
		}
		if slices.Equal(svc.Spec.IPFamilies, old.Spec.IPFamilies) {
			svc.Spec.IPFamilies = nil
		}
		if policy(svc) == policy(old) {
			svc.Spec.IPFamilyPolicy = nil
		}
		// ExternalName has no endpoints to route to.
		if a, b := svc.Spec.InternalTrafficPolicy, old.Spec.InternalTrafficPolicy; (a == nil) == (b == nil) && (a == nil || *a == *b) {
			svc.Spec.InternalTrafficPolicy = nil
		}
	}
	if holdsNodePorts(old) && !holdsNodePorts(svc) && noNewNodePorts(svc, old) {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	if needsHealthCheckNodePort(old) && !needsHealthCheckNodePort(svc) && svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if a, b := svc.Spec.AllocateLoadBalancerNodePorts, old.Spec.AllocateLoadBalancerNodePorts; a != nil && b != nil && *a == *b {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if a, b := svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass; (a == nil) == (b == nil) && (a == nil || *a == *b) {
			svc.Spec.LoadBalancerClass = nil
		}
	}
	if externallyAccessible(old) && !externallyAccessible(svc) && svc.Spec.ExternalTrafficPolicy == old.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
}

// typeHasClusterIP: every type but ExternalName has a value in clusterIP,
// "None" included.
func typeHasClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName
}

func policy(svc *corev1.Service) corev1.IPFamilyPolicy {
	if svc.Spec.IPFamilyPolicy == nil {
		return ""
	}
	return *svc.Spec.IPFamilyPolicy
}

// noNewNodePorts: ports may have been added, removed or changed, but none
// carries a NodePort the old object did not hold.
func noNewNodePorts(svc, old *corev1.Service) bool {
	held := map[int32]bool{}
	for _, p := range old.Spec.Ports {
		held[p.NodePort] = true
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && !held[p.NodePort] {
			return false
		}
	}
	return true
}

func externallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

// normalizeClusterIPs reconciles clusterIP and clusterIPs of an update the
// way upstream does, before anything looks at them: a client that knows only
// the singular field (or patches only it) must not trip over the plural one
// it sent back unchanged.
func normalizeClusterIPs(svc, old *corev1.Service) {
	if len(old.Spec.ClusterIPs) > 0 && len(svc.Spec.ClusterIPs) == 0 && svc.Spec.ClusterIP == old.Spec.ClusterIP {
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
	}
	if svc.Spec.ClusterIP == old.Spec.ClusterIP || !slices.Equal(svc.Spec.ClusterIPs, old.Spec.ClusterIPs) {
		return
	}
	if svc.Spec.ClusterIP == "" {
		// Cleared: the plural goes with it.
		svc.Spec.ClusterIPs = nil
	} else {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
}

// lbStatusStrategy clears status.loadBalancer when an update makes a
// Service something other than a LoadBalancer: the generic strategy carries
// the old status over, and a NodePort Service has no load balancer.
type lbStatusStrategy struct {
	rest.RESTUpdateStrategy
}

func (s lbStatusStrategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	s.RESTUpdateStrategy.PrepareForUpdate(ctx, obj, old)
	if svc := obj.(*corev1.Service); svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
	}
}
