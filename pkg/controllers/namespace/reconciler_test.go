package namespace

import (
	"context"
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// stubDiscovery answers with lists and err.
type stubDiscovery struct {
	lists []*metav1.APIResourceList
	err   error
}

func (s *stubDiscovery) ServerPreferredNamespacedResources() ([]*metav1.APIResourceList, error) {
	return s.lists, s.err
}

func condition(ns *corev1.Namespace, t corev1.NamespaceConditionType) *corev1.NamespaceCondition {
	for i := range ns.Status.Conditions {
		if ns.Status.Conditions[i].Type == t {
			return &ns.Status.Conditions[i]
		}
	}
	return nil
}

// While a group fails discovery the kubernetes finalizer stays (its objects
// would be orphaned) and NamespaceDeletionDiscoveryFailure says why; once
// discovery works the namespace is finalized.
func TestDiscoveryFailureKeepsTheFinalizer(t *testing.T) {
	ctx := context.Background()
	now := metav1.Now()
	core := fake.NewClientset(&corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "going", DeletionTimestamp: &now},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
	})
	failed := &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{
		{Group: "metrics.k8s.io", Version: "v1beta1"}: errors.New("the server is currently unable to handle the request")}}
	disco := &stubDiscovery{lists: []*metav1.APIResourceList{{GroupVersion: "v1"}}, err: failed}
	r := &Reconciler{Core: core, Metadata: metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()), Discovery: disco}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Name: "going"}}

	if _, err := r.Reconcile(ctx, req); err == nil {
		t.Fatal("Reconcile succeeded while discovery failed")
	}
	ns, err := core.CoreV1().Namespaces().Get(ctx, "going", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		t.Fatalf("finalizers %v: the kubernetes finalizer was removed while discovery failed", ns.Spec.Finalizers)
	}
	c := condition(ns, corev1.NamespaceDeletionDiscoveryFailure)
	want := "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: the server is currently unable to handle the request"
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "DiscoveryFailed" || c.Message != want {
		t.Errorf("NamespaceDeletionDiscoveryFailure %+v, want True DiscoveryFailed %q", c, want)
	}
	if c := condition(ns, corev1.NamespaceContentRemaining); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "ContentRemoved" {
		t.Errorf("NamespaceContentRemaining %+v, want False ContentRemoved", c)
	}
	if len(ns.Status.Conditions) != 5 {
		t.Errorf("%d conditions, want upstream's 5: %+v", len(ns.Status.Conditions), ns.Status.Conditions)
	}

	// Discovery works again: the namespace is finalized.
	disco.err = nil
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	var finalized bool
	for _, a := range core.Actions() {
		if a.GetSubresource() == "finalize" {
			finalized = true
		}
	}
	if !finalized {
		t.Errorf("the namespace was not finalized once discovery worked")
	}
}

// The ok variant of every condition; the transition time moves only with
// the status.
func TestUpdateConditions(t *testing.T) {
	var status corev1.NamespaceStatus
	if !updateConditions(&status, nil) || len(status.Conditions) != 5 {
		t.Fatalf("first update: %+v", status.Conditions)
	}
	for _, c := range status.Conditions {
		if c.Status != corev1.ConditionFalse || c.Reason != okReasons[c.Type] || c.Message != okMessages[c.Type] {
			t.Errorf("ok condition %+v", c)
		}
	}
	if updateConditions(&status, nil) {
		t.Errorf("a second identical update reported a change")
	}
	d := &deletion{remainingByResource: map[schema.GroupVersionResource]int{{Version: "v1", Resource: "pods"}: 2},
		remainingByFinalizer: map[string]int{"example.com/hold": 1}}
	if !updateConditions(&status, d.conditions()) {
		t.Fatal("remaining content changed nothing")
	}
	got := map[corev1.NamespaceConditionType]corev1.NamespaceCondition{}
	for _, c := range status.Conditions {
		got[c.Type] = c
	}
	if c := got[corev1.NamespaceContentRemaining]; c.Status != corev1.ConditionTrue || c.Reason != "SomeResourcesRemain" || c.Message != "Some resources are remaining: pods. has 2 resource instances" {
		t.Errorf("NamespaceContentRemaining %+v", c)
	}
	if c := got[corev1.NamespaceFinalizersRemaining]; c.Status != corev1.ConditionTrue || c.Reason != "SomeFinalizerRemain" || c.Message != "Some finalizers are remaining: example.com/hold in 1 resource instances" {
		t.Errorf("NamespaceFinalizersRemaining %+v", c)
	}
}
