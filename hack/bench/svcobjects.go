package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The Services of the proxy and dns scenarios: svc-NNNNN in one namespace,
// ClusterIP, port 80 → 8080, without selector; each has one EndpointSlice
// (written by the bench, as the endpointslice controller would; no
// controller runs) of some ready endpoints in benchEndpointRange.
const (
	benchSvcPort      = 80
	benchTargetPort   = 8080
	benchSliceManager = "bench.skiff.dev"
)

// benchEndpointBase is where the endpoints' addresses start (10.214.0.0,
// counting up: 5 endpoints of 10 000 Services fit in 10.214.0.0/15).
var benchEndpointBase = net.IPv4(10, 214, 0, 0).To4()

func svcName(i int) string { return fmt.Sprintf("svc-%05d", i) }

func sliceName(i int) string { return svcName(i) + "-bench" }

// endpointIP is the n-th address counting from base.
func endpointIP(base net.IP, n int) string {
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(n)
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String()
}

// benchService is Service i.
func benchService(i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svcName(i)},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{
			Name: "http", Port: benchSvcPort, TargetPort: intstr.FromInt32(benchTargetPort), Protocol: corev1.ProtocolTCP}}},
	}
}

// benchSlice is Service i's EndpointSlice with the given addresses.
func benchSlice(i int, addrs []string) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: sliceName(i), Labels: map[string]string{
			discovery.LabelServiceName: svcName(i), discovery.LabelManagedBy: benchSliceManager}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](benchTargetPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{a},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}})
	}
	return s
}

// benchAddrs are the addresses of Service i's n endpoints.
func benchAddrs(i, n int) []string {
	out := make([]string, n)
	for j := range n {
		out[j] = endpointIP(benchEndpointBase, i*n+j)
	}
	return out
}

// createServices creates Services from..to-1 of namespace ns, each with an
// EndpointSlice of endpoints addresses, with the clients in parallel
// (objects already there are kept), and returns the ClusterIPs by index.
func createServices(ctx context.Context, cs []kubernetes.Interface, ns string, from, to, endpoints int) (map[int]string, error) {
	ips := map[int]string{}
	var mu sync.Mutex
	var next atomic.Int64
	next.Store(int64(from))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for c, client := range cs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				svc, err := client.CoreV1().Services(ns).Create(ctx, benchService(i), metav1.CreateOptions{})
				if apierrors.IsAlreadyExists(err) {
					svc, err = client.CoreV1().Services(ns).Get(ctx, svcName(i), metav1.GetOptions{})
				}
				if err != nil {
					errs[c] = fmt.Errorf("service %s: %w", svcName(i), err)
					return
				}
				if endpoints > 0 {
					_, err = client.DiscoveryV1().EndpointSlices(ns).Create(ctx, benchSlice(i, benchAddrs(i, endpoints)), metav1.CreateOptions{})
					if err != nil && !apierrors.IsAlreadyExists(err) {
						errs[c] = fmt.Errorf("endpointslice %s: %w", sliceName(i), err)
						return
					}
				}
				mu.Lock()
				ips[i] = svc.Spec.ClusterIP
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ips, ctx.Err()
}

// ensureNamespace creates namespace name unless it exists.
func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}
