package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const dsWebYAML = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - {name: c, image: busybox}
`

const dsTolerantYAML = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: tolerant}
spec:
  selector: {matchLabels: {app: tolerant}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata: {labels: {app: tolerant}}
    spec:
      tolerations:
      - {key: dedicated, operator: Exists, effect: NoSchedule}
      containers:
      - {name: c, image: busybox}
`

// TestDaemonSet: with skiff server and three simulated nodes, one of them
// tainted dedicated=infra:NoSchedule, through stock kubectl: a DaemonSet
// covers the two untainted nodes (rollout status returns), its pods
// requiring their node by matchFields metadata.name, bound by the default
// scheduler, with upstream's automatic tolerations and the
// controller-revision-hash and pod-template-generation labels; one
// tolerating the taint covers all three; a node added later (another
// agent) gets a pod of each; a new image rolls out (maxUnavailable 1:
// never more than one node without a ready pod; maxSurge 1: the new pod
// before the old one goes), with a second ControllerRevision.
func TestDaemonSet(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "3", "--simulate-start-delay", "1s")
	k := newKctl(t, firstKubectl(t), srv)
	admin := adminClient(t, srv)
	eventually(t, 30*time.Second, func() string {
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 3 {
			return "nodes:\n" + out
		}
		return ""
	})
	waitServiceAccount(t, k)
	dumpOnFailure(t, k, "ds,pods,controllerrevisions,events")
	k.ok(t, "taint", "node", "sim-2", "dedicated=infra:NoSchedule")

	k.okStdin(t, dsWebYAML, "apply", "-f", "-")
	k.ok(t, "rollout", "status", "ds/agent", "--timeout=60s")
	waitDS(t, k, "agent", "2", "2", "2", "2", "2")
	assertEqual(t, "nodes of agent's pods", podNodes(t, k, "app=agent"), "sim-0 sim-1")
	pod := strings.Fields(k.jsonpath(t, "{.items[0].metadata.name}", "pods", "-l", "app=agent"))[0]
	hash := k.jsonpath(t, `{.metadata.labels.controller-revision-hash}`, "pod", pod)
	node := k.jsonpath(t, "{.spec.nodeName}", "pod", pod)
	assertEqual(t, "agent's pod", k.jsonpath(t, `{.metadata.generateName}|{.metadata.labels.pod-template-generation}|{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion}|{.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key} {.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].operator} {.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]}`, "pod", pod),
		"agent-|1|DaemonSet/agent/true/true|metadata.name In "+node)
	assertEqual(t, "agent's pod's tolerations", k.jsonpath(t, `{range .spec.tolerations[*]}{.key}:{.operator}:{.effect}:{.tolerationSeconds} {end}`, "pod", pod),
		"node.kubernetes.io/not-ready:Exists:NoExecute: node.kubernetes.io/unreachable:Exists:NoExecute: node.kubernetes.io/disk-pressure:Exists:NoSchedule: node.kubernetes.io/memory-pressure:Exists:NoSchedule: node.kubernetes.io/pid-pressure:Exists:NoSchedule: node.kubernetes.io/unschedulable:Exists:NoSchedule:")
	assertEqual(t, "agent's ControllerRevision", k.jsonpath(t, `{range .items[*]}{.metadata.name}:{.revision}:{.metadata.labels.controller-revision-hash} {end}`, "controllerrevisions", "-l", "app=agent"), "agent-"+hash+":1:"+hash)
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "-o", `jsonpath={range .items[*]}{.involvedObject.name}|{.reason}|{.message}{"\n"}{end}`)
		if !strings.Contains(out, "agent|SuccessfulCreate|Created pod: "+pod) ||
			!strings.Contains(out, pod+"|Scheduled|Successfully assigned "+k.ns+"/"+pod+" to "+node) {
			return "events:\n" + out
		}
		return ""
	})

	k.okStdin(t, dsTolerantYAML, "apply", "-f", "-")
	k.ok(t, "rollout", "status", "ds/tolerant", "--timeout=60s")
	waitDS(t, k, "tolerant", "3", "3", "3", "3", "3")
	assertEqual(t, "nodes of tolerant's pods", podNodes(t, k, "app=tolerant"), "sim-0 sim-1 sim-2")

	// A node added later.
	startAgent(t, srv, "--simulate", "1", "--simulate-prefix", "late-", "--simulate-start-delay", "1s")
	waitDS(t, k, "agent", "3", "3", "3", "3", "3")
	waitDS(t, k, "tolerant", "4", "4", "4", "4", "4")
	assertEqual(t, "nodes of agent's pods", podNodes(t, k, "app=agent"), "late-0 sim-0 sim-1")

	// Rolling updates: maxUnavailable 1 (the default), then maxSurge 1.
	counter := countPods(t, admin, k.ns, "app=agent")
	k.ok(t, "set", "image", "ds/agent", "c=busybox:1.37")
	k.ok(t, "rollout", "status", "ds/agent", "--timeout=90s")
	most, fewestReady := counter.stop()
	if most > 3 || fewestReady < 2 {
		t.Errorf("during agent's rollout: at most %d pods, at least %d ready; want at most 3 and at least 2 (maxUnavailable 1)", most, fewestReady)
	}
	hash2 := k.jsonpath(t, "{.items[0].metadata.labels.controller-revision-hash}", "pods", "-l", "app=agent")
	assertEqual(t, "agent's pods after the update", k.jsonpath(t, `{range .items[*]}{.metadata.labels.controller-revision-hash}:{.metadata.labels.pod-template-generation}:{.spec.containers[0].image} {end}`, "pods", "-l", "app=agent"),
		strings.TrimSpace(strings.Repeat(hash2+":2:busybox:1.37 ", 3)))
	revs := k.jsonpath(t, `{range .items[*]}{.metadata.name}:{.revision} {end}`, "controllerrevisions", "-l", "app=agent", "--sort-by=.revision")
	assertEqual(t, "agent's ControllerRevisions", revs, "agent-"+hash+":1 agent-"+hash2+":2")
	waitDS(t, k, "agent", "3", "3", "3", "3", "3")

	counter = countPods(t, admin, k.ns, "app=tolerant")
	k.ok(t, "set", "image", "ds/tolerant", "c=busybox:1.37")
	k.ok(t, "rollout", "status", "ds/tolerant", "--timeout=90s")
	most, fewestReady = counter.stop()
	if most != 5 || fewestReady < 4 {
		t.Errorf("during tolerant's rollout: at most %d pods, at least %d ready; want 5 and 4 (maxSurge 1, maxUnavailable 0)", most, fewestReady)
	}
	waitDS(t, k, "tolerant", "4", "4", "4", "4", "4")
	out := k.ok(t, "rollout", "history", "ds/agent")
	assertMatches(t, out, `(?m)^1\s`, `(?m)^2\s`)
}

// waitDS waits for `kubectl get ds` to show DESIRED, CURRENT, READY,
// UP-TO-DATE and AVAILABLE.
func waitDS(t *testing.T, k *kctl, name string, want ...string) {
	t.Helper()
	eventually(t, 60*time.Second, func() string {
		out := k.ok(t, "get", "ds", name)
		assertHeaders(t, out, "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE")
		if row := tableRow(out, name); len(row) < 6 || !slices.Equal(row[1:6], want) {
			return fmt.Sprintf("want %v:\n%s", want, out)
		}
		return ""
	})
}

// podNodes are the nodes of the selector's pods, sorted.
func podNodes(t *testing.T, k *kctl, selector string) string {
	t.Helper()
	nodes := strings.Fields(k.jsonpath(t, "{.items[*].spec.nodeName}", "pods", "-l", selector))
	slices.Sort(nodes)
	return strings.Join(nodes, " ")
}
