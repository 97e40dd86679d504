package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// ServiceName is the Service of the cluster DNS, kubeadm's name (e2e
// tests and users look for it).
const ServiceName = "kube-dns"

// managedBy marks the EndpointSlices this package writes (the
// EndpointSlice controllers leave them alone).
const managedBy = "skiff-dns"

// ServiceOptions describe the kube-dns Service of a DNS server that runs
// outside pods (skiff server's): a selector-less Service with endpoints
// where the server listens.
type ServiceOptions struct {
	// ClusterIP is the Service's, conventionally the 10th address of the
	// service range (ClusterDNSIP).
	ClusterIP net.IP
	// EndpointIPs are where the DNS server answers (the server's
	// advertise address); one family each.
	EndpointIPs []net.IP
	// Port is the DNS server's port (the Service's is 53); 0: 53.
	Port int32
	// MetricsPort, if set, is published as the metrics port (9153).
	MetricsPort int32
	// NodeName, if set, is the endpoints' node.
	NodeName string
}

// ClusterDNSIP is the n-th address of a service range, kube-dns's by
// convention the 10th: 10.96.0.10 of 10.96.0.0/12.
func ClusterDNSIP(serviceCIDR string, n int) (net.IP, error) {
	prefix, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service range %q: %w", serviceCIDR, err)
	}
	addr := prefix.Masked().Addr()
	for range n {
		addr = addr.Next()
	}
	if !prefix.Contains(addr) {
		return nil, fmt.Errorf("service range %s has no %d-th address", serviceCIDR, n)
	}
	return net.IP(addr.AsSlice()), nil
}

// EnsureService creates or updates kube-system/kube-dns (labels and ports
// as kubeadm's CoreDNS Service), its Endpoints (not mirrored) and its
// EndpointSlices. A Service of another ClusterIP is an error: ClusterIPs
// are immutable, and pods' --cluster-dns names the wanted one.
func EnsureService(ctx context.Context, client kubernetes.Interface, o ServiceOptions) error {
	if o.ClusterIP == nil || len(o.EndpointIPs) == 0 {
		return fmt.Errorf("the %s Service needs a ClusterIP and endpoint IPs", ServiceName)
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	ns := metav1.NamespaceSystem
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	labels := map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}
	ports := []corev1.ServicePort{
		{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(o.Port)},
		{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(o.Port)},
	}
	epPorts := []corev1.EndpointPort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: o.Port}, {Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: o.Port}}
	if o.MetricsPort != 0 {
		ports = append(ports, corev1.ServicePort{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9153, TargetPort: intstr.FromInt32(o.MetricsPort)})
		epPorts = append(epPorts, corev1.EndpointPort{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: o.MetricsPort})
	}
	svcs := client.CoreV1().Services(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := svcs.Get(ctx, ServiceName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = svcs.Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Labels: labels},
				Spec:       corev1.ServiceSpec{ClusterIP: o.ClusterIP.String(), ClusterIPs: []string{o.ClusterIP.String()}, Ports: ports},
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if svc.Spec.ClusterIP != o.ClusterIP.String() {
			return fmt.Errorf("service %s/%s has ClusterIP %s, not %s (delete it, or point --cluster-dns at it)", ns, ServiceName, svc.Spec.ClusterIP, o.ClusterIP)
		}
		if svc.Labels == nil {
			svc.Labels = map[string]string{}
		}
		for k, v := range labels {
			svc.Labels[k] = v
		}
		svc.Spec.Ports, svc.Spec.Selector = ports, nil
		_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("service %s/%s: %w", ns, ServiceName, err)
	}

	// Endpoints for their readers (kubectl get endpoints), not mirrored:
	// the EndpointSlices below are written directly.
	var addrs []corev1.EndpointAddress
	for _, ip := range o.EndpointIPs {
		a := corev1.EndpointAddress{IP: ip.String()}
		if o.NodeName != "" {
			a.NodeName = ptr.To(o.NodeName)
		}
		addrs = append(addrs, a)
	}
	endpoints := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Labels: map[string]string{"k8s-app": "kube-dns", discoveryv1.LabelSkipMirror: "true"}},
		Subsets:    []corev1.EndpointSubset{{Addresses: addrs, Ports: epPorts}},
	}
	if err := apply(func() error {
		_, err := client.CoreV1().Endpoints(ns).Create(ctx, endpoints, metav1.CreateOptions{})
		return err
	}, func() error {
		cur, err := client.CoreV1().Endpoints(ns).Get(ctx, ServiceName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Labels, cur.Subsets = endpoints.Labels, endpoints.Subsets
		_, err = client.CoreV1().Endpoints(ns).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("endpoints %s/%s: %w", ns, ServiceName, err)
	}

	for _, family := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName + "-skiff-" + map[discoveryv1.AddressType]string{discoveryv1.AddressTypeIPv4: "v4", discoveryv1.AddressTypeIPv6: "v6"}[family],
				Labels: map[string]string{discoveryv1.LabelServiceName: ServiceName, discoveryv1.LabelManagedBy: managedBy, "k8s-app": "kube-dns"}},
			AddressType: family,
		}
		for _, p := range epPorts {
			slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(p.Port)})
		}
		for _, ip := range o.EndpointIPs {
			if (ip.To4() != nil) != (family == discoveryv1.AddressTypeIPv4) {
				continue
			}
			ep := discoveryv1.Endpoint{Addresses: []string{ip.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}}
			if o.NodeName != "" {
				ep.NodeName = ptr.To(o.NodeName)
			}
			slice.Endpoints = append(slice.Endpoints, ep)
		}
		slices := client.DiscoveryV1().EndpointSlices(ns)
		if len(slice.Endpoints) == 0 {
			if err := slices.Delete(ctx, slice.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			continue
		}
		if err := apply(func() error {
			_, err := slices.Create(ctx, slice, metav1.CreateOptions{})
			return err
		}, func() error {
			cur, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Labels, cur.Ports, cur.Endpoints = slice.Labels, slice.Ports, slice.Endpoints
			_, err = slices.Update(ctx, cur, metav1.UpdateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("endpointslice %s/%s: %w", ns, slice.Name, err)
		}
	}
	return nil
}

// apply creates, or updates what exists (retried on conflicts).
func apply(create, update func() error) error {
	err := create()
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, update)
}
