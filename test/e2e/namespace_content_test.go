package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// namespaceContentCRD is a namespaced custom resource the namespace's
// content includes.
const namespaceContentCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.nsc.e2e.example.com}
spec:
  group: nsc.e2e.example.com
  names: {kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// namespaceContentKinds: how many objects of each kind the namespace gets
// (50 in all, besides what the controllers make of them: ReplicaSets,
// pods, Endpoints, EndpointSlices, the default ServiceAccount,
// kube-root-ca.crt, events).
var namespaceContentKinds = []struct {
	kind string
	n    int
	yaml func(i int) string
}{
	{"ConfigMap", 8, func(i int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {k: v%d}\n", i, i)
	}},
	{"Secret", 6, func(i int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: secret-%d}\nstringData: {password: p%d}\n", i, i)
	}},
	{"Service", 5, func(i int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d}\nspec:\n  selector: {app: web-%d}\n  ports: [{port: 80}]\n", i, i%3)
	}},
	// Running pods with upstream's default grace period of 30 s.
	{"Deployment", 3, func(i int) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web-%d}
spec:
  replicas: 2
  selector: {matchLabels: {app: web-%d}}
  template:
    metadata: {labels: {app: web-%d}}
    spec:
      terminationGracePeriodSeconds: 30
      containers: [{name: c, image: nginx}]
`, i, i, i)
	}},
	// Pods still running, with the job-tracking finalizer.
	{"Job", 3, func(i int) string {
		return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: job-%d}
spec:
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 30
      containers: [{name: c, image: busybox}]
`, i)
	}},
	{"ServiceAccount", 5, func(i int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa-%d}\n", i)
	}},
	{"Role", 5, func(i int) string {
		return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: role-%d}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
`, i)
	}},
	{"RoleBinding", 5, func(i int) string {
		return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb-%d}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-%d}
subjects: [{kind: ServiceAccount, name: sa-%d}]
`, i, i, i)
	}},
	// Pending (local-path waits for a consumer), with the pvc-protection
	// finalizer.
	{"PersistentVolumeClaim", 5, func(i int) string {
		return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim-%d}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`, i)
	}},
	{"Gadget", 5, func(i int) string {
		return fmt.Sprintf("apiVersion: nsc.e2e.example.com/v1\nkind: Gadget\nmetadata: {name: gadget-%d}\nspec: {size: %d}\n", i, i)
	}},
}

// TestNamespaceDeletionContent: `kubectl delete ns` of a namespace holding
// 50 objects of 10 kinds (a custom resource among them), with Deployments'
// and Jobs' pods running on simulated nodes, removes the namespace within
// 10 s, and afterwards no namespaced resource has anything left in it (nor
// is a PersistentVolume left claimed from it).
func TestNamespaceDeletionContent(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "2")
	admin := adminClient(t, srv)
	k := newKctl(t, firstKubectl(t), srv)
	ctx := context.Background()
	eventually(t, 30*time.Second, func() string {
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 2 {
			return "nodes:\n" + out
		}
		return ""
	})
	k.okStdin(t, namespaceContentCRD, "apply", "-f", "-")
	k.ok(t, "wait", "--for=condition=Established", "crd/gadgets.nsc.e2e.example.com", "--timeout=30s")

	const ns = "e2e-content"
	k.ok(t, "create", "namespace", ns)
	var docs []string
	total := 0
	for _, kind := range namespaceContentKinds {
		for i := range kind.n {
			docs = append(docs, kind.yaml(i))
		}
		total += kind.n
	}
	if total != 50 || len(namespaceContentKinds) != 10 {
		t.Fatalf("%d objects of %d kinds, want 50 of 10", total, len(namespaceContentKinds))
	}
	manifest := strings.Join(docs, "---\n")
	// The CR's resource may take a moment to be served after Established.
	eventually(t, 20*time.Second, func() string {
		if r := k.runWith(procOpts{stdin: manifest}, "apply", "-n", ns, "-f", "-"); r.err != nil {
			return r.String()
		}
		return ""
	})

	// Every Deployment's and Job's pod runs before the namespace goes.
	const pods = 3*2 + 3
	eventually(t, 40*time.Second, func() string {
		list, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
				running++
			}
		}
		if running != pods {
			return fmt.Sprintf("%d of %d pods Running", running, pods)
		}
		return ""
	})
	eventually(t, 20*time.Second, func() string {
		if out := k.ok(t, "get", "endpointslices", "-n", ns, "-o", "name"); len(strings.Fields(out)) < 5 {
			return "EndpointSlices: " + out
		}
		return ""
	})
	// The query that must find nothing afterwards finds all of it now.
	resources := strings.Fields(k.ok(t, "api-resources", "--namespaced=true", "--verbs=list", "-o", "name"))
	for _, want := range []string{"configmaps", "pods", "replicasets.apps", "gadgets.nsc.e2e.example.com", "endpointslices.discovery.k8s.io", "events"} {
		if !contains(resources, want) {
			t.Fatalf("api-resources lacks %s: %v", want, resources)
		}
	}
	inNamespace := func() []string {
		return strings.Fields(k.ok(t, "get", strings.Join(resources, ","), "--all-namespaces", "--field-selector", "metadata.namespace="+ns, "-o", "name"))
	}
	before := inNamespace()
	for _, want := range []string{"configmap/cm-7", "secret/secret-5", "service/svc-4", "deployment.apps/web-2", "job.batch/job-2", "serviceaccount/sa-4",
		"role.rbac.authorization.k8s.io/role-4", "rolebinding.rbac.authorization.k8s.io/rb-4", "persistentvolumeclaim/claim-4", "gadget.nsc.e2e.example.com/gadget-4"} {
		if !contains(before, want) {
			t.Fatalf("listing the namespace's content across namespaces misses %s:\n%s", want, strings.Join(before, "\n"))
		}
	}
	t.Logf("namespace %s holds %d objects before the delete", ns, len(before))

	tl := watchDeletion(t, admin, ns)
	started := time.Now()
	out := k.ok(t, "delete", "namespace", ns, "--timeout=60s")
	took := time.Since(started)
	assertContains(t, out, `namespace "`+ns+`" deleted`)
	if _, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace still there after kubectl delete returned: %v", err)
	}
	gone := tl.stop()
	t.Logf("kubectl delete namespace took %s; the namespace was gone %s after the delete", took.Round(time.Millisecond), gone.Round(time.Millisecond))
	t.Logf("timeline:\n%s", tl)
	if gone > 10*time.Second || took > 10*time.Second {
		t.Errorf("the namespace took %s to go (kubectl %s), want at most 10s", gone.Round(time.Millisecond), took.Round(time.Millisecond))
	}

	// Nothing of it is left in any namespaced resource, nor comes back
	// (a late event, a controller re-creating what it keeps).
	time.Sleep(time.Second)
	if left := inNamespace(); len(left) > 0 {
		t.Errorf("left in namespace %s after its deletion:\n%s", ns, strings.Join(left, "\n"))
	}
	pvs := k.ok(t, "get", "pv", "-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.claimRef.namespace}{"\n"}{end}`)
	for _, line := range strings.Split(pvs, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == ns {
			t.Errorf("PersistentVolume %s still claimed from %s", f[0], ns)
		}
	}
}

// deletionTimeline records, from the moment it starts, when the
// namespace's pods were marked deleted and were gone, and the namespace's
// phase and condition changes up to its removal.
type deletionTimeline struct {
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	events []string
	gone   time.Duration
}

func watchDeletion(t *testing.T, admin kubernetes.Interface, ns string) *deletionTimeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tl := &deletionTimeline{cancel: cancel, done: make(chan struct{})}
	podWatch, err := admin.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsWatch, err := admin.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ns})
	if err != nil {
		t.Fatal(err)
	}
	tl.start = time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		marked := map[string]bool{}
		for ev := range podWatch.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			switch {
			case ev.Type == watch.Deleted:
				tl.add(fmt.Sprintf("pod %s gone (phase %s)", p.Name, p.Status.Phase))
			case p.DeletionTimestamp != nil && !marked[p.Name]:
				marked[p.Name] = true
				tl.add(fmt.Sprintf("pod %s marked deleted (grace %ds)", p.Name, ptr.Deref(p.DeletionGracePeriodSeconds, -1)))
			}
		}
	}()
	go func() {
		defer wg.Done()
		last := ""
		for ev := range nsWatch.ResultChan() {
			n, ok := ev.Object.(*corev1.Namespace)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted {
				tl.mu.Lock()
				tl.gone = time.Since(tl.start)
				tl.mu.Unlock()
				tl.add("namespace gone")
				continue
			}
			var conds []string
			for _, c := range n.Status.Conditions {
				if c.Status == corev1.ConditionTrue {
					conds = append(conds, fmt.Sprintf("%s: %s", c.Type, c.Message))
				}
			}
			sort.Strings(conds)
			state := fmt.Sprintf("namespace %s, finalizers %v; %s", n.Status.Phase, n.Spec.Finalizers, strings.Join(conds, "; "))
			if state != last {
				last = state
				tl.add(state)
			}
		}
	}()
	go func() {
		wg.Wait()
		close(tl.done)
	}()
	t.Cleanup(func() { tl.cancel(); <-tl.done })
	return tl
}

func (tl *deletionTimeline) add(what string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, fmt.Sprintf("+%6.2fs %s", time.Since(tl.start).Seconds(), what))
}

// stop waits a moment for the namespace's DELETED event, stops watching
// and returns when the namespace went (the elapsed time if no event came).
func (tl *deletionTimeline) stop() time.Duration {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		tl.mu.Lock()
		gone := tl.gone
		tl.mu.Unlock()
		if gone > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tl.cancel()
	<-tl.done
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.gone == 0 {
		return time.Since(tl.start)
	}
	return tl.gone
}

func (tl *deletionTimeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.events, "\n")
}
