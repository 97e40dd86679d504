package endpointslicemirroring

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/testutil"
	endpointsliceutil "k8s.io/endpointslice/util"
)

func newTestReconciler(max int32) (*Reconciler, *fake.Clientset, *record.FakeRecorder) {
	registerAll()
	core := fake.NewClientset()
	rec := record.NewFakeRecorder(10)
	return &Reconciler{Core: core, Recorder: rec, MaxEndpointsPerSubset: max, tracker: endpointsliceutil.NewEndpointSliceTracker()}, core, rec
}

func listSlices(t *testing.T, core *fake.Clientset) []discovery.EndpointSlice {
	t.Helper()
	l, err := core.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// TestMirrorLimitsAndInvalid: at most MaxEndpointsPerSubset addresses a
// subset are mirrored (ready ones first), invalid IPs are skipped, each
// reported by upstream's events; annotations but the trigger time and
// last-applied are copied.
func TestMirrorLimitsAndInvalid(t *testing.T) {
	r, core, rec := newTestReconciler(3)
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ext", UID: "u1",
			Annotations: map[string]string{"keep": "1", corev1.EndpointsLastChangeTriggerTime: "x", corev1.LastAppliedConfigAnnotation: "{}"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "not-an-ip"}, {IP: "10.0.0.2"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.0.0.4"}, {IP: "10.0.0.3"}},
			Ports:             []corev1.EndpointPort{{Name: "p", Port: 80, Protocol: corev1.ProtocolTCP}},
		}},
	}
	if err := r.reconcile(context.Background(), ep, nil); err != nil {
		t.Fatal(err)
	}
	got := listSlices(t, core)
	if len(got) != 1 || len(got[0].Endpoints) != 3 {
		t.Fatalf("slices %+v, want one of 3 endpoints", got)
	}
	// The ready ones first, each kind by IP (upstream's repacking).
	for _, e := range got[0].Endpoints {
		if a := e.Addresses[0]; a == "10.0.0.4" || *e.Conditions.Ready != (a != "10.0.0.3") {
			t.Errorf("endpoint %s ready=%v: want 10.0.0.1, .2 ready, .3 not ready", a, *e.Conditions.Ready)
		}
	}
	s := got[0]
	if s.Annotations["keep"] != "1" || len(s.Annotations) != 1 {
		t.Errorf("annotations %v, want keep only", s.Annotations)
	}
	if s.GenerateName != "ext-" || s.Labels[discovery.LabelServiceName] != "ext" || s.Labels[discovery.LabelManagedBy] != ControllerName {
		t.Errorf("slice meta %+v", s.ObjectMeta)
	}
	var got2 []string
	for len(rec.Events) > 0 {
		got2 = append(got2, <-rec.Events)
	}
	events := strings.Join(got2, "\n")
	for _, want := range []string{
		"Warning InvalidIPAddress Skipped 1 invalid IP addresses when mirroring to EndpointSlices",
		"Warning TooManyAddressesToMirror A max of 3 addresses can be mirrored to EndpointSlices per Endpoints subset. 2 addresses were skipped",
	} {
		if !strings.Contains(events, want) {
			t.Errorf("events:\n%s\nwant %q", events, want)
		}
	}
}

// TestMirrorUpdatesInPlace: a change of ports turns the slice to delete
// and the one to create into an update of the same slice; an unchanged
// Endpoints writes nothing.
func TestMirrorUpdatesInPlace(t *testing.T) {
	r, core, _ := newTestReconciler(DefaultMaxEndpointsPerSubset)
	ctx := context.Background()
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ext", UID: "u1"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}},
			Ports: []corev1.EndpointPort{{Name: "p", Port: 80, Protocol: corev1.ProtocolTCP}}}},
	}
	// The fake clientset does not generate names.
	core.PrependReactor("create", "endpointslices", generateName())
	if err := r.reconcile(ctx, ep, nil); err != nil {
		t.Fatal(err)
	}
	first := listSlices(t, core)
	if len(first) != 1 {
		t.Fatalf("slices %+v", first)
	}
	core.ClearActions()
	if err := r.reconcile(ctx, ep, ptrs(first)); err != nil {
		t.Fatal(err)
	}
	if a := core.Actions(); len(a) != 0 {
		t.Errorf("unchanged Endpoints: actions %v", a)
	}
	updates, _ := testutil.GetCounterMetricValue(sliceChanges.WithLabelValues("update"))
	ep.Subsets[0].Ports[0].Port = 81
	if err := r.reconcile(ctx, ep, ptrs(first)); err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, a := range core.Actions() {
		verbs = append(verbs, a.GetVerb())
	}
	after := listSlices(t, core)
	if fmt.Sprint(verbs) != "[update]" || len(after) != 1 || after[0].Name != first[0].Name || *after[0].Ports[0].Port != 81 {
		t.Errorf("ports changed: actions %v, slices %+v", verbs, after)
	}
	if n, _ := testutil.GetCounterMetricValue(sliceChanges.WithLabelValues("update")); n != updates+1 {
		t.Errorf("endpoint_slice_mirroring_controller_changes{operation=update} went from %v to %v", updates, n)
	}
}

func ptrs(l []discovery.EndpointSlice) []*discovery.EndpointSlice {
	out := make([]*discovery.EndpointSlice, len(l))
	for i := range l {
		out[i] = &l[i]
	}
	return out
}

// generateName names created objects that only have generateName.
func generateName() clienttesting.ReactionFunc {
	n := 0
	return func(action clienttesting.Action) (bool, runtime.Object, error) {
		if o, ok := action.(clienttesting.CreateAction).GetObject().(metav1.Object); ok && o.GetName() == "" {
			n++
			o.SetName(fmt.Sprintf("%s%d", o.GetGenerateName(), n))
		}
		return false, nil, nil
	}
}
