// Package kubernetesservice keeps the `kubernetes` Service in the default
// namespace, with Endpoints and an EndpointSlice listing every live
// apiserver: the in-cluster entry point to the API. Each apiserver renews a
// Lease in kube-system naming its address; addresses whose Lease expired (or
// was removed at shutdown) drop out, and their Leases are deleted.
package kubernetesservice

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controlplane/apiserveridentity"
)

const (
	name = "kubernetes"
	// endpointLabel marks the Leases that announce apiserver endpoints.
	endpointLabel = "skiff.dev/apiserver-endpoint"
	leaseDuration = 30 * time.Second
	interval      = 10 * time.Second
)

// Reconciler announces one apiserver.
type Reconciler struct {
	Client    kubernetes.Interface
	ServiceIP string
	Address   net.IP
	Port      int
}

func (r *Reconciler) endpoint() string {
	return net.JoinHostPort(r.Address.String(), strconv.Itoa(r.Port))
}

func (r *Reconciler) leaseName() string {
	return fmt.Sprintf("apiserver-endpoint-%x", sha256.Sum256([]byte(r.endpoint())))[:40]
}

// Run reconciles every few seconds until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := r.reconcile(ctx, true); err != nil {
			klog.ErrorS(err, "Reconciling the kubernetes Service failed")
		}
	}, interval)
}

// Withdraw removes this apiserver from the endpoints; called while shutting
// down, before the server stops serving.
func (r *Reconciler) Withdraw() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.reconcile(ctx, false)
}

func (r *Reconciler) reconcile(ctx context.Context, alive bool) error {
	if alive {
		if err := r.ensureService(ctx); err != nil {
			return err
		}
		if err := r.renewLease(ctx); err != nil {
			return err
		}
	} else if err := r.Client.CoordinationV1().Leases(metav1.NamespaceSystem).Delete(ctx, r.leaseName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	live, err := r.liveEndpoints(ctx)
	if err != nil {
		return err
	}
	if err := r.writeEndpoints(ctx, live); err != nil {
		return err
	}
	return r.writeEndpointSlice(ctx, live)
}

func (r *Reconciler) ensureService(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			ClusterIP:       r.ServiceIP,
			SessionAffinity: corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(r.Port))}},
		},
	}
	services := r.Client.CoreV1().Services(metav1.NamespaceDefault)
	if _, err := services.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err
	}
	_, err := services.Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (r *Reconciler) renewLease(ctx context.Context) error {
	leases := r.Client.CoordinationV1().Leases(metav1.NamespaceSystem)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, r.leaseName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: r.leaseName(), Labels: map[string]string{endpointLabel: "true"}},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(r.endpoint()),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
				AcquireTime:          &now,
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// liveEndpoints are the host:port of every apiserver whose Lease is current.
func (r *Reconciler) liveEndpoints(ctx context.Context) ([]string, error) {
	list, err := r.Client.CoordinationV1().Leases(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: endpointLabel + "=true"})
	if err != nil {
		return nil, err
	}
	var live []string
	for _, l := range list.Items {
		if !apiserveridentity.Expired(&l, time.Now()) && l.Spec.HolderIdentity != nil {
			live = append(live, *l.Spec.HolderIdentity)
			continue
		}
		// Its apiserver is gone: drop the Lease, unless renewed meanwhile.
		err := r.Client.CoordinationV1().Leases(metav1.NamespaceSystem).Delete(ctx, l.Name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion}})
		switch {
		case err == nil:
			klog.InfoS("Removed a gone apiserver from the kubernetes Service", "lease", l.Name, "endpoint", ptr.Deref(l.Spec.HolderIdentity, ""))
		case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
			klog.ErrorS(err, "Deleting the Lease of a gone apiserver", "lease", l.Name)
		}
	}
	sort.Strings(live)
	return live, nil
}

// byPort groups endpoints' addresses by port (apiservers on one host differ
// only by port).
func byPort(endpoints []string) (ports []int, addresses map[int][]string) {
	addresses = map[int][]string{}
	for _, ep := range endpoints {
		host, portStr, err := net.SplitHostPort(ep)
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(portStr)
		if _, seen := addresses[port]; !seen {
			ports = append(ports, port)
		}
		addresses[port] = append(addresses[port], host)
	}
	sort.Ints(ports)
	return ports, addresses
}

func (r *Reconciler) writeEndpoints(ctx context.Context, live []string) error {
	ports, addresses := byPort(live)
	want := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault,
		Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}}}
	for _, port := range ports {
		subset := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}}}
		for _, ip := range addresses[port] {
			subset.Addresses = append(subset.Addresses, corev1.EndpointAddress{IP: ip})
		}
		want.Subsets = append(want.Subsets, subset)
	}
	client := r.Client.CoreV1().Endpoints(metav1.NamespaceDefault)
	got, err := client.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil || apiequality.Semantic.DeepEqual(got.Subsets, want.Subsets) {
		return err
	}
	got.Subsets = want.Subsets
	got.Labels = want.Labels
	_, err = client.Update(ctx, got, metav1.UpdateOptions{})
	return err
}

func (r *Reconciler) writeEndpointSlice(ctx context.Context, live []string) error {
	ports, addresses := byPort(live)
	client := r.Client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	if r.Address.To4() == nil {
		want.AddressType = discoveryv1.AddressTypeIPv6
	}
	// One slice holds one port set; with several ports (apiservers on one
	// host) the first port's apiservers are listed, as Endpoints do per subset.
	if len(ports) > 0 {
		port := ports[0]
		want.Ports = []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}}
		for _, ip := range addresses[port] {
			want.Endpoints = append(want.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
		}
	}
	got, err := client.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil || (apiequality.Semantic.DeepEqual(got.Endpoints, want.Endpoints) && apiequality.Semantic.DeepEqual(got.Ports, want.Ports)) {
		return err
	}
	got.Endpoints, got.Ports, got.Labels = want.Endpoints, want.Ports, want.Labels
	_, err = client.Update(ctx, got, metav1.UpdateOptions{})
	return err
}
