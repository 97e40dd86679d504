package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// stuckDeploymentYAML never becomes ready (the simulated pods stay not
// Ready), with a short progress deadline.
const stuckDeploymentYAML = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 1
  progressDeadlineSeconds: 4
  selector: {matchLabels: {app: stuck}}
  template:
    metadata:
      labels: {app: stuck}
      annotations: {skiff.dev/sim-ready: "false"}
    spec:
      containers:
      - {name: nginx, image: nginx}
`

// TestDeploymentController: with skiff server and three simulated nodes
// whose pods take 1.5s to start, through stock kubectl: `create
// deployment --replicas=3` is 3/3, `scale --replicas=5` 5/5; `set image`
// makes a second ReplicaSet and, counting pods all along, never more than
// 5+maxSurge(2) pods nor fewer than 5-maxUnavailable(1) ready ones;
// `rollout status` returns once done; `rollout undo` brings revision 1's
// template back as revision 3, `rollout restart` makes revision 4,
// `rollout history` lists them; paused, a new image waits for `rollout
// resume`; pods that never get ready make `rollout
// status` fail on the progress deadline.
func TestDeploymentController(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "3", "--simulate-start-delay", "1500ms")
	k := newKctl(t, firstKubectl(t), srv)
	eventually(t, 30*time.Second, func() string {
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 3 {
			return "nodes:\n" + out
		}
		return ""
	})

	assertContains(t, k.ok(t, "create", "deployment", "web", "--image=nginx", "--replicas=3"), "deployment.apps/web created")
	waitDeploy(t, k, "web", "3/3", "3", "3")
	rs1 := k.jsonpath(t, "{.items[0].metadata.name}", "rs", "-l", "app=web")
	hash := k.jsonpath(t, "{.metadata.labels.pod-template-hash}", "rs", rs1)
	assertEqual(t, "ReplicaSet name", rs1, "web-"+hash)
	assertEqual(t, "ReplicaSet's owner, revision, desired/max",
		k.jsonpath(t, `{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller} {.metadata.annotations.deployment\.kubernetes\.io/revision} {.metadata.annotations.deployment\.kubernetes\.io/desired-replicas}/{.metadata.annotations.deployment\.kubernetes\.io/max-replicas}`, "rs", rs1),
		"Deployment/web/true 1 3/4")
	if pods := rsPods(t, k, "app=web"); len(pods) != 3 || !strings.HasPrefix(pods[0], rs1+"-") {
		t.Errorf("pods %v, want 3 of %s", pods, rs1)
	}

	k.ok(t, "scale", "deployment", "web", "--replicas=5")
	waitDeploy(t, k, "web", "5/5", "5", "5")

	// Count the pods during the rollout.
	c := countPods(t, adminClient(t, srv), k.ns, "app=web")
	k.ok(t, "set", "image", "deployment/web", "nginx=nginx:1.27")
	out := k.ok(t, "rollout", "status", "deployment/web", "--timeout=60s")
	assertContains(t, out, `deployment "web" successfully rolled out`)
	most, fewestReady := c.stop()
	if most > 7 || fewestReady < 4 {
		t.Errorf("during the rollout: up to %d pods (5 + maxSurge 2 allows 7), down to %d ready (5 - maxUnavailable 1 allows 4)", most, fewestReady)
	}
	if most < 6 {
		t.Errorf("during the rollout at most %d pods: no surge was used", most)
	}
	waitDeploy(t, k, "web", "5/5", "5", "5")
	rss := k.ok(t, "get", "rs", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}/{.metadata.annotations.deployment\.kubernetes\.io/revision}/{.spec.template.spec.containers[0].image}{"\n"}{end}`)
	lines := strings.Fields(rss)
	// By replicas: the old one first.
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[strings.Index(a, "="):], b[strings.Index(b, "="):]) })
	if len(lines) != 2 || lines[0] != rs1+"=0/1/nginx" || !strings.HasSuffix(lines[1], "=5/2/nginx:1.27") {
		t.Errorf("ReplicaSets after set image:\n%s", rss)
	}
	assertEqual(t, "deployment revision", k.jsonpath(t, `{.metadata.annotations.deployment\.kubernetes\.io/revision}`, "deployment", "web"), "2")
	events := k.ok(t, "get", "events", "--field-selector", "involvedObject.name=web,reason=ScalingReplicaSet", "-o", `jsonpath={range .items[*]}{.source.component}: {.message}{"\n"}{end}`)
	assertContains(t, events, "deployment-controller: Scaled up replica set "+rs1+" from 0 to 3", "deployment-controller: Scaled up replica set "+rs1+" from 3 to 5",
		"deployment-controller: Scaled down replica set "+rs1+" from 5 to 4")
	assertMatches(t, k.ok(t, "describe", "deployment", "web"),
		`Replicas:\s+5 desired \| 5 updated \| 5 total \| 5 available \| 0 unavailable`,
		`StrategyType:\s+RollingUpdate`, `RollingUpdateStrategy:\s+25% max unavailable, 25% max surge`,
		`Available\s+True\s+MinimumReplicasAvailable`, `Progressing\s+True\s+NewReplicaSetAvailable`,
		`NewReplicaSet:\s+web-\S+ \(5/5 replicas created\)`)

	// Undo: revision 1's template, as revision 3, by its old ReplicaSet.
	assertContains(t, k.ok(t, "rollout", "undo", "deployment/web"), "deployment.apps/web rolled back")
	assertContains(t, k.ok(t, "rollout", "status", "deployment/web", "--timeout=60s"), "successfully rolled out")
	assertEqual(t, "image after undo", k.jsonpath(t, "{.spec.template.spec.containers[0].image}", "deployment", "web"), "nginx")
	assertEqual(t, "revision after undo", k.jsonpath(t, `{.metadata.annotations.deployment\.kubernetes\.io/revision}`, "deployment", "web"), "3")
	assertEqual(t, "revision of "+rs1, k.jsonpath(t, `{.spec.replicas} {.metadata.annotations.deployment\.kubernetes\.io/revision} {.metadata.annotations.deployment\.kubernetes\.io/revision-history}`, "rs", rs1), "5 3 1")

	k.ok(t, "rollout", "restart", "deployment/web")
	assertContains(t, k.ok(t, "rollout", "status", "deployment/web", "--timeout=60s"), "successfully rolled out")
	assertEqual(t, "revision after restart", k.jsonpath(t, `{.metadata.annotations.deployment\.kubernetes\.io/revision}`, "deployment", "web"), "4")
	history := k.ok(t, "rollout", "history", "deployment/web")
	assertMatches(t, history, `(?m)^2\s`, `(?m)^3\s`, `(?m)^4\s`)
	if strings.Contains(history, "\n1 ") {
		t.Errorf("revision 1 is still listed (it became 3):\n%s", history)
	}
	assertContains(t, k.ok(t, "rollout", "history", "deployment/web", "--revision=2"), "Image:\tnginx:1.27")

	assertEqual(t, "terminating replicas", k.jsonpath(t, "{.status.terminatingReplicas}", "deployment", "web"), "0")

	// Paused, a new image makes no ReplicaSet; resumed, it rolls out.
	k.ok(t, "rollout", "pause", "deployment/web")
	k.ok(t, "set", "image", "deployment/web", "nginx=nginx:1.28")
	eventually(t, 10*time.Second, func() string {
		if c := k.jsonpath(t, `{.status.conditions[?(@.type=="Progressing")].reason}`, "deployment", "web"); c != "DeploymentPaused" {
			return "Progressing reason " + c
		}
		return ""
	})
	time.Sleep(time.Second)
	if n := len(strings.Fields(k.jsonpath(t, "{.items[*].metadata.name}", "rs", "-l", "app=web"))); n != 3 {
		t.Errorf("%d ReplicaSets while paused, want the 3 of before", n)
	}
	k.ok(t, "rollout", "resume", "deployment/web")
	assertContains(t, k.ok(t, "rollout", "status", "deployment/web", "--timeout=60s"), "successfully rolled out")
	assertEqual(t, "revision after resume", k.jsonpath(t, `{.metadata.annotations.deployment\.kubernetes\.io/revision} {.spec.template.spec.containers[0].image}`, "deployment", "web"), "5 nginx:1.28")

	// No progress within progressDeadlineSeconds.
	k.okStdin(t, stuckDeploymentYAML, "apply", "-f", "-")
	r := k.run("rollout", "status", "deployment/stuck", "--timeout=40s")
	if r.err == nil || !strings.Contains(r.stderr, `deployment "stuck" exceeded its progress deadline`) {
		t.Errorf("rollout status of a stuck deployment:\n%s", r)
	}
	assertMatches(t, k.ok(t, "describe", "deployment", "stuck"), `Progressing\s+False\s+ProgressDeadlineExceeded`, `Available\s+False\s+MinimumReplicasUnavailable`)
}

// waitDeploy waits for `kubectl get deployment` to show READY, UP-TO-DATE
// and AVAILABLE.
func waitDeploy(t *testing.T, k *kctl, name, ready, upToDate, available string) {
	t.Helper()
	eventually(t, 40*time.Second, func() string {
		out := k.ok(t, "get", "deployment", name)
		assertHeaders(t, out, "NAME READY UP-TO-DATE AVAILABLE AGE")
		if row := tableRow(out, name); len(row) < 4 || row[1] != ready || row[2] != upToDate || row[3] != available {
			return fmt.Sprintf("want %s %s %s:\n%s", ready, upToDate, available, out)
		}
		return ""
	})
}

// podCounter watches the pods of a selector: the most that are not being
// deleted, and the fewest of those that are Ready, at any time.
type podCounter struct {
	stopCh            chan struct{}
	mu                sync.Mutex
	most, fewestReady int
}

func countPods(t *testing.T, client kubernetes.Interface, ns, selector string) *podCounter {
	t.Helper()
	c := &podCounter{stopCh: make(chan struct{}), fewestReady: 1 << 30}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := f.Core().V1().Pods().Informer()
	count := func() {
		live, ready := 0, 0
		for _, o := range inf.GetStore().List() {
			p := o.(*corev1.Pod)
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			live++
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		c.mu.Lock()
		c.most, c.fewestReady = max(c.most, live), min(c.fewestReady, ready)
		c.mu.Unlock()
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { count() }, UpdateFunc: func(any, any) { count() }, DeleteFunc: func(any) { count() },
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(c.stopCh)
	if !cache.WaitForCacheSync(c.stopCh, inf.HasSynced) {
		t.Fatal("pod informer did not sync")
	}
	t.Cleanup(func() {
		select {
		case <-c.stopCh:
		default:
			close(c.stopCh)
		}
	})
	return c
}

func (c *podCounter) stop() (most, fewestReady int) {
	close(c.stopCh)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.most, c.fewestReady
}
