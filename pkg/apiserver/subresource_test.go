package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestDeploymentScale: /scale reads and writes spec.replicas as an
// autoscaling/v1 Scale, honours resourceVersion preconditions and rejects
// negative counts.
func TestDeploymentScale(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	deps := cs.AppsV1().Deployments(ns)
	d, err := deps.Create(ctx, newDeployment("sc", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	scale, err := deps.GetScale(ctx, "sc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if scale.Spec.Replicas != 2 || scale.Name != "sc" || scale.Namespace != ns || scale.UID != d.UID || scale.Status.Selector != "app=sc" {
		t.Errorf("scale %+v, want 2 replicas of sc with selector app=sc", scale)
	}
	// The raw response is an autoscaling/v1 Scale.
	r := do(t, nil, http.MethodGet, "/apis/apps/v1/namespaces/"+ns+"/deployments/sc/scale", nil, nil)
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"kind":"Scale","apiVersion":"autoscaling/v1"`) {
		t.Errorf("GET scale = %d:\n%s", r.code, r.body)
	}

	stale := scale.DeepCopy()
	scale.Spec.Replicas = 5
	updated, err := deps.UpdateScale(ctx, "sc", scale, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Spec.Replicas != 5 {
		t.Errorf("UpdateScale returned %d replicas", updated.Spec.Replicas)
	}
	d2, err := deps.Get(ctx, "sc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d2.Spec.Replicas != 5 || d2.Generation != d.Generation+1 {
		t.Errorf("after scaling: replicas %d generation %d, want 5 and %d", *d2.Spec.Replicas, d2.Generation, d.Generation+1)
	}
	if d2.Spec.Template.Spec.Containers[0].Image != "busybox:1" {
		t.Errorf("scaling changed the template: %+v", d2.Spec.Template)
	}

	// The stale Scale's resourceVersion is a precondition.
	stale.Spec.Replicas = 7
	_, err = deps.UpdateScale(ctx, "sc", stale, metav1.UpdateOptions{})
	wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonConflict)

	// Negative replicas are invalid.
	_, err = deps.UpdateScale(ctx, "sc", &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "sc", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: -1}}, metav1.UpdateOptions{})
	s := wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !hasCause(s, "spec.replicas", metav1.CauseTypeFieldValueInvalid) {
		t.Errorf("no cause on spec.replicas: %+v", s.Details)
	}

	// Patching the scale works too (kubectl scale uses it) and answers a Scale.
	r = do(t, nil, http.MethodPatch, "/apis/apps/v1/namespaces/"+ns+"/deployments/sc/scale",
		map[string]string{"Content-Type": string(types.MergePatchType)}, []byte(`{"spec":{"replicas":3}}`))
	var patched autoscalingv1.Scale
	if err := json.Unmarshal(r.body, &patched); err != nil || r.code != http.StatusOK {
		t.Fatalf("PATCH scale = %d (%v):\n%s", r.code, err, r.body)
	}
	if patched.Kind != "Scale" || patched.Spec.Replicas != 3 {
		t.Errorf("PATCH scale answered %+v", patched)
	}
	if d3, err := deps.Get(ctx, "sc", metav1.GetOptions{}); err != nil || *d3.Spec.Replicas != 3 {
		t.Errorf("after patching /scale: %v %v", d3, err)
	}

	_, err = deps.GetScale(ctx, "missing", metav1.GetOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}

// TestStatusSubresource: /status changes only the status (and bumps no
// generation); the main resource changes only the rest; the generation
// counts spec changes only.
func TestStatusSubresource(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	deps := cs.AppsV1().Deployments(ns)

	// A status sent on create is dropped.
	in := newDeployment("st", 1)
	in.Status = appsv1.DeploymentStatus{Replicas: 9, ObservedGeneration: 9}
	d, err := deps.Create(ctx, in, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 1 || d.Status.Replicas != 0 || d.Status.ObservedGeneration != 0 {
		t.Errorf("created: generation %d status %+v, want 1 and an empty status", d.Generation, d.Status)
	}

	// Status update: status changes; spec, labels and generation do not.
	d.Status.Replicas = 1
	d.Status.ObservedGeneration = 1
	d.Spec.Replicas = ptrInt32(4)
	d.Labels["via"] = "status"
	s, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status.Replicas != 1 || s.Status.ObservedGeneration != 1 {
		t.Errorf("status update did not change the status: %+v", s.Status)
	}
	if *s.Spec.Replicas != 1 || s.Labels["via"] != "" || s.Generation != 1 {
		t.Errorf("status update changed replicas %d / labels %v / generation %d", *s.Spec.Replicas, s.Labels, s.Generation)
	}

	// Main-resource update: spec changes, status does not, generation + 1.
	s.Status.Replicas = 42
	s.Spec.Replicas = ptrInt32(3)
	u, err := deps.Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Status.Replicas != 1 || *u.Spec.Replicas != 3 || u.Generation != 2 {
		t.Errorf("main update: status.replicas %d spec.replicas %d generation %d, want 1, 3, 2", u.Status.Replicas, *u.Spec.Replicas, u.Generation)
	}

	// Label-only update: no generation bump, and a generation the client
	// sends is ignored.
	u.Labels["note"] = "x"
	u.Generation = 100
	m, err := deps.Update(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Generation != 2 || m.Labels["note"] != "x" {
		t.Errorf("label update: generation %d labels %v, want 2", m.Generation, m.Labels)
	}

	// Status patch keeps the spec too.
	p, err := deps.Patch(ctx, "st", types.MergePatchType, []byte(`{"spec":{"replicas":8},"status":{"readyReplicas":1,"availableReplicas":1}}`), metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.AvailableReplicas != 1 || *p.Spec.Replicas != 3 || p.Generation != 2 {
		t.Errorf("status patch: available %d replicas %d generation %d", p.Status.AvailableReplicas, *p.Spec.Replicas, p.Generation)
	}

	// Pods too: status.phase only through /status.
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, newPod("ps"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodPending {
		t.Errorf("new pod phase %q, want Pending", pod.Status.Phase)
	}
	pod.Status.Phase = corev1.PodRunning
	pod, err = cs.CoreV1().Pods(ns).Update(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodPending {
		t.Errorf("a main-resource pod update set the phase to %q", pod.Status.Phase)
	}
	pod.Status.Phase = corev1.PodRunning
	pod, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodRunning {
		t.Errorf("status update left the phase %q", pod.Status.Phase)
	}
}

func ptrInt32(n int32) *int32 { return &n }

// TestPodBinding: pods/binding sets spec.nodeName and PodScheduled once; a
// second binding is a 409 Conflict and leaves the first node.
func TestPodBinding(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	pods := cs.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, newPod("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := func(node string) error {
		return pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
	}
	if err := bind("node-1"); err != nil {
		t.Fatalf("first binding: %v", err)
	}
	p, err := pods.Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "node-1" {
		t.Errorf("nodeName %q after binding, want node-1", p.Spec.NodeName)
	}
	scheduled := false
	for _, c := range p.Status.Conditions {
		scheduled = scheduled || (c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue)
	}
	if !scheduled {
		t.Errorf("no PodScheduled=True condition: %+v", p.Status.Conditions)
	}

	err = bind("node-2")
	s := wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	if !strings.Contains(s.Message, "node-1") {
		t.Errorf("conflict message %q does not name the current node", s.Message)
	}
	if p, err := pods.Get(ctx, "b", metav1.GetOptions{}); err != nil || p.Spec.NodeName != "node-1" {
		t.Errorf("after the second binding: nodeName %q (%v), want node-1", p.Spec.NodeName, err)
	}

	// Bindings of missing pods, to non-nodes and without a target fail.
	err = pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "ghost"}, Target: corev1.ObjectReference{Name: "n"}}, metav1.CreateOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	if _, err := pods.Create(ctx, newPod("b2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "b2"}, Target: corev1.ObjectReference{Kind: "Pod", Name: "n"}}, metav1.CreateOptions{})
	wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	err = pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "b2"}}, metav1.CreateOptions{})
	s = wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !hasCause(s, "target.name", metav1.CauseTypeFieldValueRequired) {
		t.Errorf("no Required cause on target.name: %+v", s.Details)
	}
	// A dry-run binding changes nothing.
	err = pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "b2"}, Target: corev1.ObjectReference{Name: "n"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := pods.Get(ctx, "b2", metav1.GetOptions{}); err != nil || p.Spec.NodeName != "" {
		t.Errorf("dry-run binding set nodeName %q (%v)", p.Spec.NodeName, err)
	}
}

// TestPodBindingAsUpstream: a binding replaces a failed PodScheduled
// condition by a bare True one, clears status.nominatedNodeName, copies the
// node's zone and region labels to the pod (PodTopologyLabels admission)
// and is refused for a pod with scheduling gates.
func TestPodBindingAsUpstream(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	pods := cs.CoreV1().Pods(ns)
	node := "zoned-" + ns
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{
		corev1.LabelTopologyZone: "zone-a", corev1.LabelTopologyRegion: "region-1", "other": "x"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	p, err := pods.Create(ctx, newPod("p"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	failedAt := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	p.Status.NominatedNodeName = node
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/1 nodes are available", LastTransitionTime: failedAt}}
	if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The admission plugin reads Nodes from an informer.
	var bound *corev1.Pod
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if bound, err = pods.Get(ctx, "p", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if bound.Labels[corev1.LabelTopologyZone] != "" || time.Now().After(deadline) {
			break
		}
		// Not seen yet: unbind by recreating the pod and try again.
		if err := pods.Delete(ctx, "p", *metav1.NewDeleteOptions(0)); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Create(ctx, newPod("p"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if bound.Labels[corev1.LabelTopologyZone] != "zone-a" || bound.Labels[corev1.LabelTopologyRegion] != "region-1" || bound.Labels["other"] != "" {
		t.Errorf("labels after binding: %v, want the node's zone and region only", bound.Labels)
	}
	if bound.Status.NominatedNodeName != "" {
		t.Errorf("nominatedNodeName %q after binding, want it cleared", bound.Status.NominatedNodeName)
	}
	var scheduled *corev1.PodCondition
	for i := range bound.Status.Conditions {
		if bound.Status.Conditions[i].Type == corev1.PodScheduled {
			scheduled = &bound.Status.Conditions[i]
		}
	}
	if scheduled == nil || scheduled.Status != corev1.ConditionTrue || scheduled.Reason != "" || scheduled.Message != "" || !scheduled.LastTransitionTime.After(failedAt.Time) {
		t.Errorf("PodScheduled after binding: %+v, want True without reason or message, moved on from %v", scheduled, failedAt)
	}

	gated := newPod("gated")
	gated.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
	if _, err := pods.Create(ctx, gated, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "gated"}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
	s := wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	if !strings.Contains(s.Message, "has non-empty .spec.schedulingGates") {
		t.Errorf("binding a gated pod: %q", s.Message)
	}
}

// TestPodEviction: an eviction deletes the pod; evicting a missing pod is
// 404; a dry-run eviction keeps it.
func TestPodEviction(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	pods := cs.CoreV1().Pods(ns)
	for _, name := range []string{"ev", "dry"} {
		if _, err := pods.Create(ctx, newPod(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	evict := func(name string, dryRun bool) error {
		e := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		if dryRun {
			e.DeleteOptions = &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}
		}
		return pods.EvictV1(ctx, e)
	}
	if err := evict("ev", false); err != nil {
		t.Fatalf("eviction: %v", err)
	}
	_, err := pods.Get(ctx, "ev", metav1.GetOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)

	err = evict("ev", false)
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)

	if err := evict("dry", true); err != nil {
		t.Fatalf("dry-run eviction: %v", err)
	}
	if _, err := pods.Get(ctx, "dry", metav1.GetOptions{}); err != nil {
		t.Errorf("the dry-run eviction deleted the pod: %v", err)
	}

	// The raw answer is a 201 Status Success, as upstream.
	r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/pods/dry/eviction", nil,
		[]byte(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"dry","namespace":"`+ns+`"}}`))
	if r.code != http.StatusCreated {
		t.Fatalf("POST eviction = %d:\n%s", r.code, r.body)
	}
	if s := r.status(t); s.Status != metav1.StatusSuccess {
		t.Errorf("eviction status %+v", s)
	}
	// A name mismatch between URL and body is a 400.
	if _, err := pods.Create(ctx, newPod("other"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/pods/other/eviction", nil,
		[]byte(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"someone-else"}}`))
	if r.code != http.StatusBadRequest {
		t.Errorf("mismatched eviction = %d, want 400:\n%s", r.code, r.body)
	}
	if _, err := pods.Get(ctx, "other", metav1.GetOptions{}); err != nil {
		t.Errorf("the mismatched eviction deleted the pod: %v", err)
	}
}

// TestNodeCreateKeepsStatus: as upstream, a Node is created with the status
// it is sent (a kubelet registers with its addresses and capacity), while
// other kinds with a status subresource start with an empty one.
func TestNodeCreateKeepsStatus(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	name := "registered-" + newNamespace(t)
	status := corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.2.3"}, {Type: corev1.NodeHostName, Address: name}},
		Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourcePods: resource.MustParse("110")},
	}
	created, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: status}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	got, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*corev1.Node{created, got} {
		if len(n.Status.Addresses) != 2 || n.Status.Addresses[0].Address != "10.1.2.3" || !n.Status.Capacity.Cpu().Equal(resource.MustParse("2")) {
			t.Errorf("node status after create: %+v", n.Status)
		}
	}

	ns := newNamespace(t)
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec:   corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("service status kept on create: %+v", svc.Status)
	}
}
