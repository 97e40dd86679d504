package kubelet

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// InternalIPs are the node's InternalIP addresses, the primary first.
func InternalIPs(addresses []corev1.NodeAddress) []string {
	var ips []string
	for _, a := range addresses {
		if a.Type == corev1.NodeInternalIP {
			ips = append(ips, a.Address)
		}
	}
	return ips
}

// PodCIDRs are the node's spec.podCIDRs (spec.podCIDR when only that is
// set), the unparsable left out.
func PodCIDRs(node *corev1.Node) []netip.Prefix {
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p)
		}
	}
	return out
}
