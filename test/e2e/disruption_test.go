package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const msgViolatesBudget = "Cannot evict pod as it would violate the pod's disruption budget."

// guardedPod is a pod labelled app=guarded bound to node, which the
// agent's simulation runs and reports Ready; it stops at once when deleted.
func guardedPod(name, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: guarded}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
`, name, node)
}

// TestDisruption: with stock kubectl against skiff server and two
// simulated nodes, a PDB with minAvailable 2 over 2 Ready pods shows
// ALLOWED DISRUPTIONS 0; the eviction API answers 429 with upstream's
// message and DisruptionBudget cause; `kubectl drain` says it cannot
// evict, retries and fails at its timeout, the pods untouched. With a
// third pod (on the other node) the PDB allows 1 and a drain evicts
// exactly one of the two pods of the node, then waits on the other.
func TestDisruption(t *testing.T) {
	bin := firstKubectl(t)
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	agent := startAgent(t, srv, "--simulate", "2")
	defer agent.stop(t)
	k := newKctl(t, bin, srv)
	ctx := context.Background()

	k.ok(t, "create", "poddisruptionbudget", "guard", "--selector=app=guarded", "--min-available=2")
	k.okStdin(t, guardedPod("g-0", "sim-0")+"---\n"+guardedPod("g-1", "sim-0"), "create", "-f", "-")
	waitAllowed := func(want string) {
		t.Helper()
		eventually(t, 30*time.Second, func() string {
			out := k.run("get", "pdb", "guard", "--no-headers")
			// NAME MIN-AVAILABLE MAX-UNAVAILABLE ALLOWED-DISRUPTIONS AGE
			if f := strings.Fields(out.stdout); len(f) != 5 || f[1] != "2" || f[2] != "N/A" || f[3] != want {
				return "kubectl get pdb: " + out.combined()
			}
			return ""
		})
	}
	eventually(t, 30*time.Second, func() string {
		pdb, err := admin.PolicyV1().PodDisruptionBudgets(k.ns).Get(ctx, "guard", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if pdb.Status.CurrentHealthy != 2 || pdb.Status.ExpectedPods != 2 {
			return fmt.Sprintf("PDB status %+v", pdb.Status)
		}
		return ""
	})
	waitAllowed("0")
	header := k.ok(t, "get", "pdb", "guard")
	assertContains(t, header, "ALLOWED DISRUPTIONS")

	// The eviction API: kubectl create --raw, then client-go for the cause.
	eviction := fmt.Sprintf(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"g-0","namespace":"%s"}}`, k.ns)
	out := k.failStdin(t, eviction, "create", "--raw", "/api/v1/namespaces/"+k.ns+"/pods/g-0/eviction", "-f", "-")
	assertContains(t, out, msgViolatesBudget)
	err = admin.CoreV1().Pods(k.ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "g-0", Namespace: k.ns}})
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction: %v, want 429", err)
	}
	if s := err.(apierrors.APIStatus).Status(); s.Message != msgViolatesBudget || s.Details == nil || len(s.Details.Causes) != 1 ||
		s.Details.Causes[0].Type != policyv1.DisruptionBudgetCause || s.Details.Causes[0].Message != "The disruption budget guard needs 2 healthy pods and has 2 currently" {
		t.Errorf("eviction refused with %+v", s)
	}

	// kubectl drain: cordons, cannot evict, retries every 5s, gives up.
	started := time.Now()
	r := k.run("drain", "sim-0", "--ignore-daemonsets", "--force", "--timeout=10s")
	if r.err == nil {
		t.Fatalf("kubectl drain succeeded:\n%s", r.combined())
	}
	took := time.Since(started)
	for _, want := range []string{
		fmt.Sprintf(`error when evicting pods/"g-0" -n %q (will retry after 5s): %s`, k.ns, msgViolatesBudget),
		fmt.Sprintf(`error when evicting pods/"g-1" -n %q (will retry after 5s): %s`, k.ns, msgViolatesBudget),
		"global timeout reached: 10s",
	} {
		assertContains(t, r.combined(), want)
	}
	if n := strings.Count(r.combined(), `error when evicting pods/"g-0"`); n < 2 || took < 10*time.Second {
		t.Errorf("drain tried g-0 %d times in %s, want retries until its 10s timeout:\n%s", n, took, r.combined())
	}
	for _, name := range []string{"g-0", "g-1"} {
		if p, problem := getPod(k, name); problem != "" || p.DeletionTimestamp != nil {
			t.Errorf("pod %s after the refused drain: %s %v", name, problem, p)
		}
	}
	if unsched := k.jsonpath(t, "{.spec.unschedulable}", "node", "sim-0"); unsched != "true" {
		t.Errorf("sim-0 unschedulable=%q after the drain, want cordoned", unsched)
	}
	k.ok(t, "uncordon", "sim-0")

	// A third pod elsewhere: one disruption allowed.
	k.okStdin(t, guardedPod("g-2", "sim-1"), "create", "-f", "-")
	waitAllowed("1")
	r = k.run("drain", "sim-0", "--ignore-daemonsets", "--force", "--timeout=10s")
	evicted := 0
	var kept string
	for _, name := range []string{"g-0", "g-1"} {
		if strings.Contains(r.stdout, "pod/"+name+" evicted") {
			evicted++
		} else {
			kept = name
		}
	}
	if r.err == nil || evicted != 1 {
		t.Fatalf("second drain: %v, %d evicted, want 1 and a timeout on the other:\n%s", r.err, evicted, r.combined())
	}
	assertContains(t, r.combined(), fmt.Sprintf(`error when evicting pods/%q -n %q (will retry after 5s): %s`, kept, k.ns, msgViolatesBudget))
	pods, err := admin.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			left = append(left, p.Name)
		}
	}
	if len(left) != 2 {
		t.Errorf("pods left running %v, want the kept one and g-2", left)
	}
	waitAllowed("0")
}
