// Package service adds what the generic store does not do for Services:
// ClusterIPs and NodePorts allocated from the configured ranges (persisted in
// etcd, released on delete and type change, repaired by a loop) and the
// single-stack IP family fields.
package service

import (
	"context"
	"net"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/registry/core/service/allocator"
)

// Allocators hand out ClusterIPs and NodePorts.
type Allocators struct {
	IPs   *allocator.IPs
	Ports *allocator.Ports
	// Destroy closes the etcd client behind them.
	Destroy func()
}

// NewAllocators keeps their state in etcd under upstream's keys
// (/registry/ranges/serviceips, /registry/ranges/servicenodeports).
func NewAllocators(optsGetter generic.RESTOptionsGetter, cidr *net.IPNet, ports utilnet.PortRange) (*Allocators, error) {
	opts, err := optsGetter.GetRESTOptions(schema.GroupResource{Resource: "serviceipallocations"}, &corev1.RangeAllocation{})
	if err != nil {
		return nil, err
	}
	newFunc := func() runtime.Object { return &corev1.RangeAllocation{} }
	store, destroy, err := generic.NewRawStorage(opts.StorageConfig, newFunc, nil, "/ranges")
	if err != nil {
		return nil, err
	}
	ips, err := allocator.NewIPs(store, "/ranges/serviceips", cidr)
	if err != nil {
		return nil, err
	}
	return &Allocators{IPs: ips, Ports: allocator.NewPorts(store, "/ranges/servicenodeports", ports), Destroy: func() { destroy() }}, nil
}

// Install makes the services store allocate on create and update and
// release on delete.
func (a *Allocators) Install(s *genericregistry.Store) {
	s.BeginCreate = a.beginCreate
	s.BeginUpdate = a.beginUpdate
	s.AfterDelete = a.afterDelete
	s.UpdateStrategy = lbStatusStrategy{s.UpdateStrategy}
}

// txn records what one create or update took and must give back: on failure
// what it allocated, on success what the old object held and the new one
// does not.
type txn struct {
	a                  *Allocators
	dryRun             bool
	newIPs, oldIPs     []string
	newPorts, oldPorts []int
}

func (t *txn) finish(ctx context.Context, success bool) {
	ips, ports := t.newIPs, t.newPorts
	if success {
		ips, ports = t.oldIPs, t.oldPorts
	}
	if t.dryRun {
		return
	}
	for _, ip := range ips {
		if err := t.a.IPs.ReleaseIP(ctx, ip); err != nil {
			klog.ErrorS(err, "Releasing a ClusterIP failed; the repair loop reclaims it", "ip", ip)
		}
	}
	for _, p := range ports {
		if err := t.a.Ports.ReleasePort(ctx, p); err != nil {
			klog.ErrorS(err, "Releasing a NodePort failed; the repair loop reclaims it", "port", p)
		}
	}
}

func (a *Allocators) beginCreate(ctx context.Context, obj runtime.Object, options *metav1.CreateOptions) (genericregistry.FinishFunc, error) {
	svc := obj.(*corev1.Service)
	t := &txn{a: a, dryRun: len(options.DryRun) > 0}
	a.defaultFamilies(svc)
	var errs field.ErrorList
	if needsClusterIP(svc) {
		errs = append(errs, t.allocateClusterIP(ctx, svc)...)
	}
	if holdsNodePorts(svc) {
		errs = append(errs, t.allocateNodePorts(ctx, svc, nil)...)
	}
	if len(errs) > 0 {
		t.finish(ctx, false)
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	return t.finish, nil
}

func (a *Allocators) beginUpdate(ctx context.Context, obj, oldObj runtime.Object, options *metav1.UpdateOptions) (genericregistry.FinishFunc, error) {
	svc, old := obj.(*corev1.Service), oldObj.(*corev1.Service)
	t := &txn{a: a, dryRun: len(options.DryRun) > 0}
	keepAllocatedValues(svc, old)
	normalizeClusterIPs(svc, old)
	dropTypeDependentFields(svc, old)
	a.defaultFamilies(svc)
	var errs field.ErrorList
	switch {
	case needsClusterIP(svc) && !needsClusterIP(old):
		errs = append(errs, t.allocateClusterIP(ctx, svc)...)
	case !needsClusterIP(svc) && needsClusterIP(old):
		t.oldIPs = clusterIPs(old)
	}
	if holdsNodePorts(svc) {
		errs = append(errs, t.allocateNodePorts(ctx, svc, nodePorts(old))...)
	}
	kept := map[int]bool{}
	for _, p := range nodePorts(svc) {
		kept[p] = true
	}
	for _, p := range nodePorts(old) {
		if !kept[p] {
			t.oldPorts = append(t.oldPorts, p)
		}
	}
	if len(errs) > 0 {
		t.finish(ctx, false)
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	return t.finish, nil
}

func (a *Allocators) afterDelete(obj runtime.Object, options *metav1.DeleteOptions) {
	if len(options.DryRun) > 0 {
		return
	}
	svc := obj.(*corev1.Service)
	t := &txn{a: a, oldIPs: clusterIPs(svc), oldPorts: nodePorts(svc)}
	t.finish(context.Background(), true)
}

func (t *txn) allocateClusterIP(ctx context.Context, svc *corev1.Service) field.ErrorList {
	// Upstream's allocator reports its failures on the whole list.
	path := field.NewPath("spec", "clusterIPs")
	ip := svc.Spec.ClusterIP
	if ip == "" {
		var err error
		if t.dryRun {
			var i int
			i, err = t.a.IPs.PeekNext(ctx)
			ip = t.a.IPs.IP(i)
		} else {
			ip, err = t.a.IPs.AllocateNextIP(ctx)
		}
		if err != nil {
			return field.ErrorList{field.InternalError(path, err)}
		}
	} else if t.dryRun {
		if free, _ := t.a.IPs.Free(ctx, t.a.IPs.Index(ip)); !free {
			return field.ErrorList{field.Invalid(path, []string{ip}, "failed to allocate IP "+ip+": provided IP is already allocated")}
		}
	} else if err := t.a.IPs.AllocateIP(ctx, ip); err != nil {
		return field.ErrorList{field.Invalid(path, []string{ip}, "failed to allocate IP "+ip+": "+err.Error())}
	}
	if !t.dryRun {
		t.newIPs = append(t.newIPs, ip)
	}
	svc.Spec.ClusterIP = ip
	svc.Spec.ClusterIPs = []string{ip}
	return nil
}

// allocateNodePorts gives every port without a NodePort a free one (unless
// a LoadBalancer opted out) and takes the explicitly requested ones that the
// old object did not hold already.
func (t *txn) allocateNodePorts(ctx context.Context, svc *corev1.Service, held []int) field.ErrorList {
	holds := map[int]bool{}
	for _, p := range held {
		holds[p] = true
	}
	var errs field.ErrorList
	take := func(path *field.Path, port *int32, auto bool) {
		switch {
		case *port == 0 && !auto:
			// Stays without one.
		case *port == 0:
			var p int
			var err error
			if t.dryRun {
				p, err = t.a.Ports.PeekNextPort(ctx)
			} else {
				p, err = t.a.Ports.AllocateNextPort(ctx)
			}
			if err != nil {
				errs = append(errs, field.InternalError(path, err))
				return
			}
			*port = int32(p)
			if !t.dryRun {
				t.newPorts = append(t.newPorts, p)
			}
		case holds[int(*port)]:
			// Already this Service's.
		case t.dryRun:
			if free, _ := t.a.Ports.PortFree(ctx, int(*port)); !free {
				errs = append(errs, field.Invalid(path, *port, "provided port is already allocated"))
			}
		default:
			if err := t.a.Ports.AllocatePort(ctx, int(*port)); err != nil {
				errs = append(errs, field.Invalid(path, *port, err.Error()))
				return
			}
			holds[int(*port)] = true
			t.newPorts = append(t.newPorts, int(*port))
		}
	}
	for i := range svc.Spec.Ports {
		take(field.NewPath("spec", "ports").Index(i).Child("nodePort"), &svc.Spec.Ports[i].NodePort, needsNodePorts(svc))
	}
	if needsHealthCheckNodePort(svc) {
		take(field.NewPath("spec", "healthCheckNodePort"), &svc.Spec.HealthCheckNodePort, true)
	}
	return errs
}
