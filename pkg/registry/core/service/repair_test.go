package service

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage/storagebackend"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/etcd"
	"github.com/skiff-dev/skiff/pkg/registry/core/service/allocator"
)

// allocatorsOnEtcd are allocators for 10.0.0.0/24 and ports 30000-30099 on
// a real etcd.
func allocatorsOnEtcd(t *testing.T) *Allocators {
	t.Helper()
	e, err := etcd.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cfg := storagebackend.NewDefaultConfig("/registry", apis.Codecs.LegacyCodec(corev1.SchemeGroupVersion))
	cfg.Transport.ServerList = []string{e.ClientURL}
	newFunc := func() runtime.Object { return &corev1.RangeAllocation{} }
	store, destroy, err := generic.NewRawStorage(cfg.ForResource(schema.GroupResource{Resource: "serviceipallocations"}), newFunc, nil, "/ranges")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(destroy)
	_, cidr, _ := net.ParseCIDR("10.0.0.0/24")
	ips, err := allocator.NewIPs(store, "/ranges/serviceips", cidr)
	if err != nil {
		t.Fatal(err)
	}
	ports, _ := utilnet.ParsePortRange("30000-30099")
	return &Allocators{IPs: ips, Ports: allocator.NewPorts(store, "/ranges/servicenodeports", *ports)}
}

func nodePortService(name, ip string, port int32) corev1.Service {
	return corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: port}}}}
}

type recorded struct{ service, reason, note string }

type recorder struct{ events []recorded }

func (r *recorder) Eventf(regarding, _ runtime.Object, _, reason, _, note string, args ...interface{}) {
	r.events = append(r.events, recorded{regarding.(*corev1.Service).Name, reason, fmt.Sprintf(note, args...)})
}

// TestRepair: a leaked ClusterIP and NodePort are released on the third
// round that finds no Service holding them (not before: an allocation's
// Service may not be written yet); allocations Services hold but the
// bitmaps lack are taken again; double and out-of-range allocations are
// reported as upstream reports them.
func TestRepair(t *testing.T) {
	ctx := context.Background()
	a := allocatorsOnEtcd(t)
	leakedIP, err := a.IPs.AllocateNextIP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leakedPort, err := a.Ports.AllocateNextPort(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// "held" holds 10.0.0.5 and 30005, which the bitmaps lack; "twin"
	// holds them too; "outside" holds addresses out of both ranges.
	services := []corev1.Service{
		nodePortService("held", "10.0.0.5", 30005),
		nodePortService("twin", "10.0.0.5", 30005),
		nodePortService("outside", "10.9.0.1", 31000),
	}
	events := &recorder{}
	r := &Repairer{Allocators: a, IPEvents: events, PortEvents: events,
		List: func(context.Context) ([]corev1.Service, error) { return services, nil }}

	taken := func(ip string, port int) (bool, bool) {
		freeIP := a.IPs.AllocateIP(ctx, ip) == nil
		if freeIP {
			_ = a.IPs.ReleaseIP(ctx, ip)
		}
		freePort, err := a.Ports.PortFree(ctx, port)
		if err != nil {
			t.Fatal(err)
		}
		return !freeIP, !freePort
	}
	for round := 1; round <= 3; round++ {
		if err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		ipTaken, portTaken := taken(leakedIP, leakedPort)
		if wantTaken := round < 3; ipTaken != wantTaken || portTaken != wantTaken {
			t.Errorf("round %d: leaked %s taken %v, leaked port %d taken %v; want %v", round, leakedIP, ipTaken, leakedPort, portTaken, wantTaken)
		}
		if ipTaken, portTaken := taken("10.0.0.5", 30005); !ipTaken || !portTaken {
			t.Errorf("round %d: held 10.0.0.5 taken %v, 30005 taken %v", round, ipTaken, portTaken)
		}
	}
	want := []recorded{
		{"held", "ClusterIPNotAllocated", "Cluster IP [IPv4]:10.0.0.5 is not allocated; repairing"},
		{"held", "PortNotAllocated", "Port 30005 is not allocated; repairing"},
		{"twin", "ClusterIPAlreadyAllocated", "Cluster IP [IPv4]:10.0.0.5 was assigned to multiple services; please recreate service"},
		{"twin", "PortAlreadyAllocated", "Port 30005 was assigned to multiple services; please recreate service"},
		{"outside", "ClusterIPOutOfRange", "Cluster IP [IPv4]:10.9.0.1 is not within the service CIDR 10.0.0.0/24; please recreate service"},
		{"outside", "PortOutOfRange", "Port 31000 is not within the port range 30000-30099; please recreate service"},
	}
	for _, w := range want {
		if !slices.Contains(events.events, w) {
			t.Errorf("no event %+v; got %+v", w, events.events)
		}
	}
	// Taken again once, not every round.
	if n := countReason(events.events, "ClusterIPNotAllocated"); n != 1 {
		t.Errorf("%d ClusterIPNotAllocated events over three rounds, want 1", n)
	}
}

// An item held again before its third unheld round starts counting over.
func TestRepairLeakCountStartsOver(t *testing.T) {
	ctx := context.Background()
	a := allocatorsOnEtcd(t)
	ip, err := a.IPs.AllocateNextIP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var services []corev1.Service
	r := &Repairer{Allocators: a, List: func(context.Context) ([]corev1.Service, error) { return services, nil }}
	run := func() {
		t.Helper()
		if err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run()
	run()
	services = []corev1.Service{nodePortService("late", ip, 0)} // its Service was written after all
	services[0].Spec.Type = corev1.ServiceTypeClusterIP
	run()
	services = nil
	run()
	run()
	if err := a.IPs.AllocateIP(ctx, ip); err == nil {
		t.Fatalf("%s released after two unheld rounds following a held one", ip)
	}
	run()
	if err := a.IPs.AllocateIP(ctx, ip); err != nil {
		t.Fatalf("%s not released after three unheld rounds: %v", ip, err)
	}
}

func countReason(events []recorded, reason string) int {
	n := 0
	for _, e := range events {
		if e.reason == reason {
			n++
		}
	}
	return n
}
