package disruption_test

// Against a real skiff API server (apiserver.Run on its embedded etcd), the
// disruption controller as skiff runs it (controllers.Run as its
// ServiceAccount, so its role is exercised), and the server's
// pods/eviction. The test plays the kubelet: it binds pods to a node name
// and posts their status; nothing finishes a deletion, so evicted pods stay
// terminating.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/test/integration"
)

var labels = map[string]string{"app": "guarded"}

type env struct {
	t  *testing.T
	cs kubernetes.Interface
	ns string
}

// TestDisruption runs the subtests against one API server and controller,
// each in a namespace of its own.
func TestDisruption(t *testing.T) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{Verbosity: 2, LogFilter: func(l string) bool {
		return strings.Contains(l, "isruption") || strings.Contains(l, "PDB") || strings.Contains(l, "evict")
	}})
	integration.RunControllers(t, cfg, controllers.Options{Controllers: []string{"disruption-controller"}, UseServiceAccountCredentials: true})
	cs := kubernetes.NewForConfigOrDie(cfg)
	for _, tc := range []struct {
		name string
		test func(*testing.T, *env)
	}{
		{"MinAvailableAndEviction", testMinAvailableAndEviction},
		{"EvictionWithoutBudget", testEvictionWithoutBudget},
		{"ScaleOfControllers", testScaleOfControllers},
		{"StaleDisruptionTarget", testStaleDisruptionTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{t: t, cs: cs, ns: strings.ToLower(tc.name)}
			ctx := context.Background()
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			// No ServiceAccount controller runs.
			if _, err := cs.CoreV1().ServiceAccounts(e.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			tc.test(t, e)
		})
	}
}

// pod creates a pod bound to node-a, Running, Ready as ready says.
func (e *env) pod(name string, ready bool, owner *metav1.OwnerReference, lbls map[string]string) *corev1.Pod {
	e.t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	p, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	p, err = e.cs.CoreV1().Pods(e.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) pdb(name string, minAvailable, maxUnavailable *intstr.IntOrString, lbls map[string]string) {
	e.t.Helper()
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: minAvailable, MaxUnavailable: maxUnavailable,
			Selector: &metav1.LabelSelector{MatchLabels: lbls}}}
	if _, err := e.cs.PolicyV1().PodDisruptionBudgets(e.ns).Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// want waits for the PDB's status to be (healthy, desired, expected,
// allowed), observed at its generation, with the matching condition.
func (e *env) want(name string, healthy, desired, expected, allowed int32) *policyv1.PodDisruptionBudget {
	e.t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pdb, err := e.cs.PolicyV1().PodDisruptionBudgets(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		s := pdb.Status
		c := apimeta.FindStatusCondition(s.Conditions, policyv1.DisruptionAllowedCondition)
		wantReason, wantStatus := policyv1.InsufficientPodsReason, metav1.ConditionFalse
		if allowed > 0 {
			wantReason, wantStatus = policyv1.SufficientPodsReason, metav1.ConditionTrue
		}
		last = fmt.Sprintf("healthy %d desired %d expected %d allowed %d observedGeneration %d/%d condition %+v",
			s.CurrentHealthy, s.DesiredHealthy, s.ExpectedPods, s.DisruptionsAllowed, s.ObservedGeneration, pdb.Generation, c)
		if s.CurrentHealthy == healthy && s.DesiredHealthy == desired && s.ExpectedPods == expected && s.DisruptionsAllowed == allowed &&
			s.ObservedGeneration == pdb.Generation && c != nil && c.Reason == wantReason && c.Status == wantStatus {
			return pdb
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("PDB %s: %s; want healthy %d desired %d expected %d allowed %d", name, last, healthy, desired, expected, allowed)
	return nil
}

// updatePDB changes the PDB's spec, retrying conflicts with the
// controller's status writes.
func (e *env) updatePDB(name string, change func(*policyv1.PodDisruptionBudget)) {
	e.t.Helper()
	pdbs := e.cs.PolicyV1().PodDisruptionBudgets(e.ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pdb, err := pdbs.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(pdb)
		_, err = pdbs.Update(context.Background(), pdb, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// evict posts an Eviction; an answer with Retry-After is not retried.
func (e *env) evict(name string, opts *metav1.DeleteOptions) error {
	body := &policyv1.Eviction{TypeMeta: metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, DeleteOptions: opts}
	return e.cs.CoreV1().RESTClient().Post().Namespace(e.ns).Resource("pods").Name(name).SubResource("eviction").
		Body(body).MaxRetries(0).Do(context.Background()).Error()
}

// wantRefused checks err is upstream's 429 with the DisruptionBudget cause
// message.
func wantRefused(t *testing.T, err error, cause string) {
	t.Helper()
	var status apierrors.APIStatus
	if err == nil || !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction: %v, want 429", err)
	}
	status = err.(apierrors.APIStatus)
	s := status.Status()
	if s.Message != "Cannot evict pod as it would violate the pod's disruption budget." {
		t.Errorf("message %q", s.Message)
	}
	if s.Details == nil || len(s.Details.Causes) != 1 || s.Details.Causes[0].Type != policyv1.DisruptionBudgetCause || s.Details.Causes[0].Message != cause {
		t.Errorf("details %+v, want the cause %q", s.Details, cause)
	}
}

func (e *env) getPod(name string) *corev1.Pod {
	e.t.Helper()
	p, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func disruptionTarget(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// testMinAvailableAndEviction: minAvailable 2 over 2 Ready pods allows no
// disruption and an eviction is refused with upstream's 429; a third pod
// allows one: the eviction marks the pod (DisruptionTarget), deletes it
// and records it in disruptedPods until the controller sees it
// terminating; the next eviction is refused. A dry run changes nothing.
func testMinAvailableAndEviction(t *testing.T, e *env) {
	ctx := context.Background()
	e.pdb("web", ptr.To(intstr.FromInt32(2)), nil, labels)
	e.want("web", 0, 2, 0, 0)
	e.pod("web-0", true, nil, labels)
	e.pod("web-1", true, nil, labels)
	e.want("web", 2, 2, 2, 0)
	wantRefused(t, e.evict("web-0", nil), "The disruption budget web needs 2 healthy pods and has 2 currently")

	e.pod("web-2", true, nil, labels)
	e.want("web", 3, 2, 3, 1)
	// Dry run: allowed, nothing written.
	if err := e.evict("web-0", &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run eviction: %v", err)
	}
	if p := e.getPod("web-0"); p.DeletionTimestamp != nil || disruptionTarget(p) != nil {
		t.Errorf("dry run: deletionTimestamp %v, DisruptionTarget %+v", p.DeletionTimestamp, disruptionTarget(p))
	}
	if pdb := e.want("web", 3, 2, 3, 1); len(pdb.Status.DisruptedPods) != 0 {
		t.Errorf("dry run recorded disruptedPods %v", pdb.Status.DisruptedPods)
	}

	// Watch the PDB to see the eviction's write.
	w, err := e.cs.PolicyV1().PodDisruptionBudgets(e.ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := e.evict("web-0", nil); err != nil {
		t.Fatalf("eviction: %v", err)
	}
	p := e.getPod("web-0")
	c := disruptionTarget(p)
	if p.DeletionTimestamp == nil || c == nil || c.Status != corev1.ConditionTrue || c.Reason != "EvictionByEvictionAPI" || c.Message != "Eviction API: evicting" {
		t.Errorf("evicted pod: deletionTimestamp %v, DisruptionTarget %+v", p.DeletionTimestamp, c)
	}
	sawDisrupted := false
	timeout := time.After(10 * time.Second)
	for !sawDisrupted {
		select {
		case ev := <-w.ResultChan():
			if pdb, ok := ev.Object.(*policyv1.PodDisruptionBudget); ok {
				if _, ok := pdb.Status.DisruptedPods["web-0"]; ok && pdb.Status.DisruptionsAllowed == 0 {
					sawDisrupted = true
				}
			}
		case <-timeout:
			t.Fatal("the eviction did not record web-0 in disruptedPods with disruptionsAllowed 0")
		}
	}
	// The controller: web-0 terminating, not healthy; gone from the map.
	// (Until it sees the pod's deletion, it keeps the entry.)
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		pdb := e.want("web", 2, 2, 3, 0)
		if len(pdb.Status.DisruptedPods) == 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("disruptedPods %v after web-0 was seen terminating", pdb.Status.DisruptedPods)
		}
	}
	wantRefused(t, e.evict("web-1", nil), "The disruption budget web needs 2 healthy pods and has 2 currently")
	// Terminating pods are evicted (deleted again) without a budget.
	if err := e.evict("web-0", nil); err != nil {
		t.Errorf("evicting the terminating pod: %v", err)
	}
}

// testEvictionWithoutBudget: pending pods, unready pods (IfHealthyBudget
// with a healthy budget, or AlwaysAllow) are deleted without using the
// budget; several PDBs answer upstream's 500; bad delete options a 4xx.
func testEvictionWithoutBudget(t *testing.T, e *env) {
	ctx := context.Background()
	// A pending pod.
	pending := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pending", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, pending, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.pdb("strict", ptr.To(intstr.FromInt32(5)), nil, labels)
	e.want("strict", 0, 5, 1, 0)
	if err := e.evict("pending", nil); err != nil {
		t.Errorf("evicting a pending pod: %v", err)
	}
	if _, err := e.cs.CoreV1().Pods(e.ns).Get(ctx, "pending", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pending pod after eviction: %v", err)
	}

	// Unready pods: IfHealthyBudget (default) refuses while the budget is
	// not healthy...
	e.pod("r-0", true, nil, labels)
	e.pod("u-0", false, nil, labels)
	e.want("strict", 1, 5, 2, 0)
	wantRefused(t, e.evict("u-0", nil), "The disruption budget strict needs 5 healthy pods and has 1 currently")
	// ... allows once it is; AlwaysAllow always does.
	e.updatePDB("strict", func(pdb *policyv1.PodDisruptionBudget) { pdb.Spec.MinAvailable = ptr.To(intstr.FromInt32(1)) })
	e.want("strict", 1, 1, 2, 0)
	if err := e.evict("u-0", nil); err != nil {
		t.Errorf("evicting an unready pod of a healthy budget: %v", err)
	}
	// u-0 terminating still counts as expected (minAvailable is an int).
	e.want("strict", 1, 1, 2, 0)
	e.pod("u-1", false, nil, labels)
	e.updatePDB("strict", func(pdb *policyv1.PodDisruptionBudget) {
		pdb.Spec.MinAvailable = ptr.To(intstr.FromInt32(3))
		pdb.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
	})
	e.want("strict", 1, 3, 3, 0)
	if err := e.evict("u-1", nil); err != nil {
		t.Errorf("evicting an unready pod with AlwaysAllow: %v", err)
	}
	if c := disruptionTarget(e.getPod("u-1")); c == nil || c.Reason != "EvictionByEvictionAPI" {
		t.Errorf("u-1 DisruptionTarget %+v", c)
	}

	// A second PDB over r-0: upstream's 500.
	e.pdb("second", ptr.To(intstr.FromInt32(0)), nil, labels)
	err := e.evict("r-0", nil)
	if s, ok := err.(apierrors.APIStatus); !ok || s.Status().Code != http.StatusInternalServerError ||
		s.Status().Message != "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." {
		t.Errorf("eviction of a pod of two PDBs: %v, want upstream's 500", err)
	}
	if e.getPod("r-0").DeletionTimestamp != nil {
		t.Error("r-0 deleted")
	}
	// Bad input.
	err = e.cs.CoreV1().Pods(e.ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "r-0", Namespace: e.ns},
		DeleteOptions: &metav1.DeleteOptions{IgnoreStoreReadErrorWithClusterBreakingPotential: ptr.To(true)}})
	if !apierrors.IsInvalid(err) {
		t.Errorf("ignoreStoreReadErrorWithClusterBreakingPotential: %v, want 422", err)
	}
	// A pod of no PDB: deleted with the eviction's preconditions.
	e.pod("free", true, nil, nil)
	if err := e.evict("free", &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To[types.UID]("nope")}}); !apierrors.IsConflict(err) {
		t.Errorf("eviction with a wrong UID precondition: %v, want 409", err)
	}
	if p := e.getPod("free"); p.DeletionTimestamp != nil || disruptionTarget(p) != nil {
		t.Errorf("free after a refused eviction: deletionTimestamp %v, DisruptionTarget %+v", p.DeletionTimestamp, disruptionTarget(p))
	}
	if err := e.evict("free", nil); err != nil {
		t.Errorf("evicting a pod of no PDB: %v", err)
	}
}

// testScaleOfControllers: maxUnavailable and percentages count the
// replicas of the pods' controllers (a ReplicaSet here, a Deployment
// through its ReplicaSet); unmanaged pods with a percentage count nothing;
// a pod of a controller of unknown kind fails the sync (SyncFailed) and
// the eviction says so.
func testScaleOfControllers(t *testing.T, e *env) {
	ctx := context.Background()
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	rs, err := e.cs.AppsV1().ReplicaSets(e.ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner := metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	for i := range 3 {
		e.pod(fmt.Sprintf("rs-%d", i), true, owner, labels)
	}
	e.pdb("mu", nil, ptr.To(intstr.FromString("25%")), labels)
	// 4 expected, 25% of 4 rounded up is 1: 3 desired, 3 healthy.
	e.want("mu", 3, 3, 4, 0)
	// Scaled to 3: 1 allowed.
	rs.Spec.Replicas = ptr.To[int32](3)
	if _, err := e.cs.AppsV1().ReplicaSets(e.ns).Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.want("mu", 3, 2, 3, 1)

	// A Deployment's ReplicaSet: the Deployment's replicas count.
	other := map[string]string{"app": "other"}
	tmpl.Labels = other
	d, err := e.cs.AppsV1().Deployments(e.ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](10), Selector: &metav1.LabelSelector{MatchLabels: other}, Template: tmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	drs, err := e.cs.AppsV1().ReplicaSets(e.ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "d-1",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: other}, Template: tmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.pod("d-0", true, metav1.NewControllerRef(drs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet")), other)
	e.pdb("pct", ptr.To(intstr.FromString("50%")), nil, other)
	e.want("pct", 1, 5, 10, 0)

	// Unmanaged pods and a percentage: nothing expected.
	lone := map[string]string{"app": "lone"}
	e.pod("lone", true, nil, lone)
	e.pdb("lone", ptr.To(intstr.FromString("50%")), nil, lone)
	e.want("lone", 1, 0, 0, 0)

	// A controller of a kind nobody serves.
	odd := map[string]string{"app": "odd"}
	e.pod("odd", true, &metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w", UID: "1234", Controller: ptr.To(true)}, odd)
	e.pdb("odd", nil, ptr.To(intstr.FromInt32(1)), odd)
	var cond *metav1.Condition
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pdb, err := e.cs.PolicyV1().PodDisruptionBudgets(e.ns).Get(ctx, "odd", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cond = apimeta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition); cond != nil && cond.Reason == policyv1.SyncFailedReason {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cond == nil || cond.Reason != policyv1.SyncFailedReason || cond.Status != metav1.ConditionFalse || cond.Message == "" {
		t.Fatalf("odd PDB condition %+v, want SyncFailed", cond)
	}
	// The PDB's status never was computed: its observedGeneration is
	// behind, so the eviction waits for the server.
	wantRefused(t, e.evict("odd", nil), "The disruption budget odd is still being processed by the server.")
}

// testStaleDisruptionTarget: a True DisruptionTarget condition of a pod
// that was not deleted within 2 minutes turns False.
func testStaleDisruptionTarget(t *testing.T, e *env) {
	ctx := context.Background()
	p := e.pod("stale", true, nil, nil)
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: metav1.NewTime(time.Now().Add(-3 * time.Minute))})
	if _, err := e.cs.CoreV1().Pods(e.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	fresh := e.pod("fresh", true, nil, nil)
	fresh.Status.Conditions = append(fresh.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI", LastTransitionTime: metav1.Now()})
	if _, err := e.cs.CoreV1().Pods(e.ns).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var c *corev1.PodCondition
	for time.Now().Before(deadline) {
		if c = disruptionTarget(e.getPod("stale")); c != nil && c.Status == corev1.ConditionFalse {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "" || c.Message != "" {
		t.Errorf("stale condition %+v, want False without reason", c)
	}
	if c := disruptionTarget(e.getPod("fresh")); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("fresh condition %+v, want it kept True", c)
	}
}
