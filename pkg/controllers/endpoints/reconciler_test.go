package endpoints

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	endpointsliceutil "k8s.io/endpointslice/util"
	"sigs.k8s.io/controller-runtime/pkg/client"
	fakeclient "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func addr(ip, uid string) corev1.EndpointAddress {
	return corev1.EndpointAddress{IP: ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", UID: types.UID(uid)}}
}

// TestRepackSubsets: one subset per set of addresses, whatever the input's
// order; an address both ready and not on a port is not ready.
func TestRepackSubsets(t *testing.T) {
	http := corev1.EndpointPort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}
	dns := corev1.EndpointPort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	in := []corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{http}},
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{http, dns}},
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{dns}},
		{NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.3", "c")}, Ports: []corev1.EndpointPort{http, dns}},
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.3", "c")}, Ports: []corev1.EndpointPort{http, dns}},
	}
	want := RepackSubsets(clone(in))
	if len(want) != 1 {
		t.Fatalf("want one subset (same addresses on both ports), got %+v", want)
	}
	s := want[0]
	if len(s.Addresses) != 2 || s.Addresses[0].IP != "10.0.0.1" || s.Addresses[1].IP != "10.0.0.2" ||
		len(s.NotReadyAddresses) != 1 || s.NotReadyAddresses[0].IP != "10.0.0.3" || len(s.Ports) != 2 {
		t.Errorf("repacked %+v", s)
	}
	for i := range 20 {
		shuffled := clone(in)
		rand.New(rand.NewSource(int64(i))).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := RepackSubsets(shuffled); !reflect.DeepEqual(got, want) {
			t.Fatalf("order-dependent: %+v vs %+v", got, want)
		}
	}
	// Different address sets stay apart; ports of the same set are sorted.
	two := RepackSubsets([]corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{http}},
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{dns}},
	})
	if len(two) != 2 {
		t.Errorf("want two subsets, got %+v", two)
	}
	if got := RepackSubsets(nil); got == nil || len(got) != 0 {
		t.Errorf("nil repacks to %#v, want an empty list", got)
	}
}

func clone(in []corev1.EndpointSubset) []corev1.EndpointSubset {
	out := make([]corev1.EndpointSubset, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

func addrs(n int, prefix string) []corev1.EndpointAddress {
	out := make([]corev1.EndpointAddress, n)
	for i := range out {
		out[i] = corev1.EndpointAddress{IP: fmt.Sprintf("%s.%d.%d", prefix, i/250, i%250)}
	}
	return out
}

// TestTruncate: beyond 1000 addresses, ready ones are kept first and each
// subset keeps its share.
func TestTruncate(t *testing.T) {
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{
		{Addresses: addrs(900, "10.1"), NotReadyAddresses: addrs(200, "10.2")},
		{NotReadyAddresses: addrs(200, "10.3")},
	}}
	if !truncate(ep) {
		t.Fatal("1300 addresses not truncated")
	}
	if a, n0, n1 := len(ep.Subsets[0].Addresses), len(ep.Subsets[0].NotReadyAddresses), len(ep.Subsets[1].NotReadyAddresses); a != 900 || n0 != 50 || n1 != 50 {
		t.Errorf("kept %d ready, %d+%d not ready; want 900, 50+50", a, n0, n1)
	}
	ep = &corev1.Endpoints{Subsets: []corev1.EndpointSubset{
		{Addresses: addrs(700, "10.1"), NotReadyAddresses: addrs(5, "10.2")},
		{Addresses: addrs(701, "10.3")},
	}}
	truncate(ep)
	if a0, a1, n := len(ep.Subsets[0].Addresses), len(ep.Subsets[1].Addresses), len(ep.Subsets[0].NotReadyAddresses); a0 != 500 || a1 != 500 || n != 0 {
		t.Errorf("kept %d+%d ready, %d not ready; want 500+500 (shares rounded up, the last one capped), 0", a0, a1, n)
	}
	if truncate(&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: addrs(1000, "10.1")}}}) {
		t.Error("1000 addresses truncated")
	}
}

// TestOverCapacity: a Service over 1001 ready pods gets an Endpoints of
// 1000 addresses annotated over-capacity: truncated; back to fewer pods,
// the annotation goes.
func TestOverCapacity(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "big", UID: "svc"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Selector: map[string]string{"app": "big"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}}}
	objs := []client.Object{svc}
	for i := range 1001 {
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p%d", i), UID: types.UID(fmt.Sprint(i)), Labels: map[string]string{"app": "big"}},
			Spec:       corev1.PodSpec{NodeName: "n"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.9.%d.%d", i/250, i%250),
				PodIPs:     []corev1.PodIP{{IP: fmt.Sprintf("10.9.%d.%d", i/250, i%250)}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		})
	}
	cached := fakeclient.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
	core := fake.NewClientset()
	r := &Reconciler{Client: cached, Core: core, Recorder: record.NewFakeRecorder(10),
		triggerTimes: endpointsliceutil.NewTriggerTimeTracker(), stale: staleTracker{versions: map[types.NamespacedName]string{}}}
	ctx := context.Background()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "big"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	ep, err := core.CoreV1().Endpoints("ns").Get(ctx, "big", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range ep.Subsets {
		n += len(s.Addresses) + len(s.NotReadyAddresses)
	}
	if n != MaxCapacity || ep.Annotations[corev1.EndpointsOverCapacity] != "truncated" {
		t.Errorf("%d addresses, annotations %v; want 1000 and over-capacity: truncated", n, ep.Annotations)
	}
	if ep.Labels[LabelManagedBy] != ControllerName {
		t.Errorf("labels %v", ep.Labels)
	}

	// One pod fewer: under capacity, the annotation goes.
	if err := cached.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p0"}}); err != nil {
		t.Fatal(err)
	}
	if err := cached.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	ep, _ = core.CoreV1().Endpoints("ns").Get(ctx, "big", metav1.GetOptions{})
	if _, ok := ep.Annotations[corev1.EndpointsOverCapacity]; ok {
		t.Errorf("1000 pods, annotations %v", ep.Annotations)
	}
}
