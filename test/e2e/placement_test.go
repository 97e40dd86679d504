package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/test/harness"
)

// The placement tests' simulated nodes, one agent each (capacity, labels
// and taints are per agent). Sizes are chosen so that the default scores
// put an unconstrained pod elsewhere than each constraint does:
//
//	node       cpu  memory  zone    tier    taint
//	big-0       16   32Gi   zone-a  gold
//	small-0      1    2Gi   zone-b  silver
//	tainted-0   64  128Gi   zone-b  gold    dedicated=infra:NoSchedule
//	huge-0      32   64Gi   zone-a  bronze  (added while a pod waits for it)
//
// Left alone, a small pod goes to big-0 or huge-0 (LeastAllocated 99
// against small-0's 91; the two tie), a pod of 1 cpu and 1Gi to huge-0
// (97 against big-0's 94), and a pod tolerating the taint to tainted-0.
var placementNodes = []struct{ prefix, capacity, labels, taints string }{
	{"big-", "cpu=16,memory=32Gi,pods=110", "topology.kubernetes.io/zone=zone-a,tier=gold", ""},
	{"small-", "cpu=1,memory=2Gi,pods=110", "topology.kubernetes.io/zone=zone-b,tier=silver", ""},
	{"tainted-", "cpu=64,memory=128Gi,pods=110", "topology.kubernetes.io/zone=zone-b,tier=gold", "dedicated=infra:NoSchedule"},
	{"huge-", "cpu=32,memory=64Gi,pods=110", "topology.kubernetes.io/zone=zone-a,tier=bronze", ""},
}

// startPlacementNode starts the agent of placementNodes[i]: one simulated
// node, <prefix>0.
func startPlacementNode(t *testing.T, srv *harness.Server, i int) string {
	t.Helper()
	n := placementNodes[i]
	args := []string{"--simulate", "1", "--simulate-prefix", n.prefix, "--simulate-capacity", n.capacity, "--simulate-labels", n.labels}
	if n.taints != "" {
		args = append(args, "--simulate-taints", n.taints)
	}
	startAgent(t, srv, args...)
	return n.prefix + "0"
}

// waitSchedulableNodes waits until `kubectl get nodes` shows the nodes
// Ready, with a podCIDR and without the not-ready taint of their
// admission.
func waitSchedulableNodes(t *testing.T, k *kctl, timeout time.Duration, names ...string) {
	t.Helper()
	eventually(t, timeout, func() string {
		nodes, problem := getNodes(k)
		if problem != "" {
			return problem
		}
		for _, name := range names {
			n := nodes[name]
			if s := readyStatus(n); s != corev1.ConditionTrue {
				return fmt.Sprintf("%s Ready=%s", name, s)
			}
			if n.Spec.PodCIDR == "" {
				return name + " has no podCIDR"
			}
			for _, taint := range n.Spec.Taints {
				if taint.Key == corev1.TaintNodeNotReady {
					return name + " still has the not-ready taint"
				}
			}
		}
		return ""
	})
	out := k.ok(t, "get", "nodes")
	for _, name := range names {
		if row := tableRow(out, name); len(row) < 2 || row[1] != "Ready" {
			t.Errorf("kubectl get nodes does not show %s Ready:\n%s", name, out)
		}
	}
}

// placedPod is a pod labeled app=<app> requesting cpu and memory, with
// spec (YAML lines at the indentation of the pod's spec fields) added.
func placedPod(name, app, cpu, memory string, spec ...string) string {
	var extra strings.Builder
	for _, line := range spec {
		extra.WriteString(line + "\n")
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: %s}
spec:
%s  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
    resources: {requests: {cpu: "%s", memory: %s}}
---
`, name, app, extra.String(), cpu, memory)
}

// placedPods is n pods <app>-0 ... <app>-<n-1> of placedPod.
func placedPods(n int, app, cpu, memory string, spec ...string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(placedPod(fmt.Sprintf("%s-%d", app, i), app, cpu, memory, spec...))
	}
	return b.String()
}

// placements is spec.nodeName by pod name of the pods labeled app=<app>.
func placements(t *testing.T, k *kctl, app string) map[string]string {
	t.Helper()
	out := k.ok(t, "get", "pods", "-l", "app="+app, "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{"\n"}{end}`)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if name, node, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[name] = node
		}
	}
	return m
}

// waitPlaced waits until bound of the want pods labeled app=<app> are
// bound and returns their placements ("" for the unbound).
func waitPlaced(t *testing.T, k *kctl, app string, want, bound int) map[string]string {
	t.Helper()
	var m map[string]string
	eventually(t, 20*time.Second, func() string {
		m = placements(t, k, app)
		n := 0
		for _, node := range m {
			if node != "" {
				n++
			}
		}
		if len(m) != want || n < bound {
			return fmt.Sprintf("%d of %d pods app=%s bound, want %d: %v", n, len(m), app, bound, m)
		}
		return ""
	})
	return m
}

// perNode counts the pods of placements on each node.
func perNode(m map[string]string) map[string]int {
	counts := map[string]int{}
	for _, node := range m {
		counts[node]++
	}
	return counts
}

// assertPlacedOn checks that each pod (of placements m) is on its node.
func assertPlacedOn(t *testing.T, m map[string]string, want map[string]string) {
	t.Helper()
	for pod, node := range want {
		if m[pod] != node {
			t.Errorf("pod %s is on %q, want %s (placements %v)", pod, m[pod], node, m)
		}
	}
}

// waitUnschedulable waits for the pod's PodScheduled=False Unschedulable
// condition with message want and a FailedScheduling Warning of
// default-scheduler saying the same, and checks it is Pending and unbound.
func waitUnschedulable(t *testing.T, k *kctl, pod, want string) {
	t.Helper()
	eventually(t, 20*time.Second, func() string {
		cond := k.jsonpath(t, `{.status.conditions[?(@.type=="PodScheduled")].status}/{.status.conditions[?(@.type=="PodScheduled")].reason}/{.status.conditions[?(@.type=="PodScheduled")].message}`, "pod", pod)
		if cond != "False/Unschedulable/"+want {
			return fmt.Sprintf("PodScheduled of %s: %q, want False/Unschedulable/%s", pod, cond, want)
		}
		events := k.ok(t, "get", "events", "--field-selector", "reason=FailedScheduling,involvedObject.name="+pod,
			"-o", `jsonpath={range .items[*]}{.type}|{.reportingComponent}|{.message}{"\n"}{end}`)
		if !strings.Contains(events, "Warning|default-scheduler|"+want) {
			return "FailedScheduling events of " + pod + ":\n" + events
		}
		return ""
	})
	if got := k.jsonpath(t, "{.status.phase}|{.spec.nodeName}", "pod", pod); got != "Pending|" {
		t.Errorf("pod %s: phase|node %q, want Pending and unbound", pod, got)
	}
}

// deletePodsOnCleanup deletes the namespace's pods when t ends (the
// simulated nodes confirm it at once), so that the next test finds the
// nodes empty.
func deletePodsOnCleanup(t *testing.T, k *kctl) {
	t.Cleanup(func() {
		if r := k.run("delete", "pods", "--all", "--timeout=60s"); r.err != nil {
			t.Errorf("deleting the pods of %s:\n%s", k.ns, r)
		}
	})
}

// startSchedulingServer starts a skiff server of t's own (the nodes and
// PriorityClasses are cluster-wide) and a kubectl in a namespace of it.
func startSchedulingServer(t *testing.T) (*harness.Server, *kctl) {
	t.Helper()
	srv, err := harness.StartSkiff(context.Background(), harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	return srv, newKctl(t, firstKubectl(t), srv)
}

// TestPlacement: skiff server's scheduler places pods on simulated nodes
// of `skiff agent --simulate` as upstream's default profile would, seen
// by stock kubectl. Three nodes of different sizes, one tainted, are Ready
// with podCIDRs within 10s; ten pods of a Service spread over the two
// untainted ones as LeastAllocated, BalancedAllocation and the system
// default topology spreading score them; a pod that fits nowhere is
// Unschedulable in upstream's words until a fourth node is added. Then
// nodeSelector, required and preferred node affinity, required pod
// anti-affinity, zone topology spread and taints each decide a placement
// that the scores alone would not make.
func TestPlacement(t *testing.T) {
	srv, k := startSchedulingServer(t)

	started := time.Now()
	var names []string
	for i := range 3 {
		names = append(names, startPlacementNode(t, srv, i))
	}
	waitSchedulableNodes(t, k, 10*time.Second, names...)
	t.Logf("%v Ready with podCIDRs %s after their agents started", names, time.Since(started).Round(100*time.Millisecond))

	// Ten pods selected by a Service: the system default constraints
	// (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) spread them by
	// its selector. Scored one after the other (LeastAllocated and
	// BalancedAllocation weight 1, PodTopologySpread 2), big-0 and
	// small-0 take turns until small-0's LeastAllocated has fallen too
	// far: 6 and 4. Without the spreading all ten would go to big-0
	// (LeastAllocated alone); with the taint ignored, tainted-0 (scoring
	// as big-0 does) would take about as many as big-0.
	k.ok(t, "create", "service", "clusterip", "spread", "--tcp=80:80")
	// The scheduler's Service informer sees it well before the first pod.
	time.Sleep(time.Second)
	k.okStdin(t, placedPods(10, "spread", "100m", "128Mi"), "create", "-f", "-")
	spread := waitPlaced(t, k, "spread", 10, 10)
	if got, want := perNode(spread), map[string]int{"big-0": 6, "small-0": 4}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ten pods of a Service spread as %v, want %v (placements %v)", got, want, spread)
	}

	// 20 cpu: more than big-0 and small-0 have at all, and tainted-0 is
	// tainted. A node of 32 cpu, added, takes it within seconds.
	k.okStdin(t, placedPod("nowhere", "nowhere", "20", "128Mi"), "create", "-f", "-")
	waitUnschedulable(t, k, "nowhere", "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu. "+
		"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
	added := time.Now()
	huge := startPlacementNode(t, srv, 3)
	if node := waitNode(t, k, "nowhere", 15*time.Second); node != huge {
		t.Errorf("nowhere bound to %s, want the new node %s", node, huge)
	}
	t.Logf("nowhere bound %s after the agent of %s started", time.Since(added).Round(100*time.Millisecond), huge)
	k.ok(t, "delete", "pods", "--all", "--timeout=60s")

	t.Run("NodeSelector", func(t *testing.T) {
		deletePodsOnCleanup(t, k)
		k.okStdin(t, placedPod("selected", "selected", "100m", "128Mi", "  nodeSelector: {tier: silver}"), "create", "-f", "-")
		assertPlacedOn(t, waitPlaced(t, k, "selected", 1, 1), map[string]string{"selected": "small-0"})
	})

	t.Run("RequiredNodeAffinity", func(t *testing.T) {
		deletePodsOnCleanup(t, k)
		required := func(expr string) []string {
			return []string{"  affinity:", "    nodeAffinity:", "      requiredDuringSchedulingIgnoredDuringExecution:",
				"        nodeSelectorTerms:", "        - matchExpressions:", "          - " + expr}
		}
		// zone-b is small-0 and tainted-0; huge-0 excluded, a pod of 1 cpu
		// goes to the next best, big-0 (small-0 has no room for it).
		k.okStdin(t, placedPod("in", "affinity", "100m", "128Mi", required("{key: topology.kubernetes.io/zone, operator: In, values: [zone-b]}")...)+
			placedPod("not-in", "affinity", "1", "1Gi", required("{key: kubernetes.io/hostname, operator: NotIn, values: [huge-0]}")...),
			"create", "-f", "-")
		assertPlacedOn(t, waitPlaced(t, k, "affinity", 2, 2), map[string]string{"in": "small-0", "not-in": "big-0"})
	})

	t.Run("PreferredNodeAffinity", func(t *testing.T) {
		deletePodsOnCleanup(t, k)
		// NodeAffinity (weight 2) normalizes the matched weights: small-0
		// 100, big-0 25, huge-0 0; that outweighs small-0's lower
		// LeastAllocated (91 against 99). With the weights swapped big-0
		// would win.
		k.okStdin(t, placedPod("preferred", "preferred", "100m", "128Mi",
			"  affinity:", "    nodeAffinity:", "      preferredDuringSchedulingIgnoredDuringExecution:",
			"      - weight: 20", "        preference: {matchExpressions: [{key: tier, operator: In, values: [gold]}]}",
			"      - weight: 80", "        preference: {matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [zone-b]}]}"),
			"create", "-f", "-")
		assertPlacedOn(t, waitPlaced(t, k, "preferred", 1, 1), map[string]string{"preferred": "small-0"})
	})

	t.Run("PodAntiAffinity", func(t *testing.T) {
		deletePodsOnCleanup(t, k)
		// One per node: three untainted nodes take three, the fourth waits.
		// Without the anti-affinity all four would fit on big-0 and huge-0.
		k.okStdin(t, placedPods(4, "anti", "100m", "128Mi",
			"  affinity:", "    podAntiAffinity:", "      requiredDuringSchedulingIgnoredDuringExecution:",
			"      - labelSelector: {matchLabels: {app: anti}}", "        topologyKey: kubernetes.io/hostname"),
			"create", "-f", "-")
		m := waitPlaced(t, k, "anti", 4, 3)
		var pending []string
		for pod, node := range m {
			if node == "" {
				pending = append(pending, pod)
			}
		}
		if got := perNode(m); len(pending) != 1 || got["big-0"] != 1 || got["small-0"] != 1 || got["huge-0"] != 1 {
			t.Fatalf("anti-affinity pods placed %v, want one on each untainted node and one Pending", m)
		}
		waitUnschedulable(t, k, pending[0], "0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 node(s) didn't match pod anti-affinity rules. "+
			"preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.")
	})

	t.Run("TopologySpread", func(t *testing.T) {
		deletePodsOnCleanup(t, k)
		// zone-a has big-0 and huge-0, zone-b only small-0 that takes pods
		// (tainted-0 is tainted): left to the scores, zone-a would take all
		// six.
		k.okStdin(t, placedPods(6, "zs", "100m", "128Mi",
			"  topologySpreadConstraints:", "  - maxSkew: 1", "    topologyKey: topology.kubernetes.io/zone",
			"    whenUnsatisfiable: DoNotSchedule", "    labelSelector: {matchLabels: {app: zs}}"),
			"create", "-f", "-")
		m := waitPlaced(t, k, "zs", 6, 6)
		zone := map[string]string{"big-0": "zone-a", "huge-0": "zone-a", "small-0": "zone-b", "tainted-0": "zone-b"}
		zones := map[string]int{}
		for _, node := range m {
			zones[zone[node]]++
		}
		if zones["zone-a"] != 3 || zones["zone-b"] != 3 {
			t.Errorf("six pods spread with maxSkew 1 over zones as %v, want 3 and 3 (placements %v)", zones, m)
		}
	})

	t.Run("Taints", func(t *testing.T) {
		deletePodsOnCleanup(t, k)
		// tainted-0 is the emptiest node: the pod tolerating its taint goes
		// there, the same pod without the toleration does not.
		k.okStdin(t, placedPod("tolerates", "taints", "4", "4Gi",
			"  tolerations:", "  - {key: dedicated, operator: Equal, value: infra, effect: NoSchedule}")+
			placedPod("plain", "taints", "4", "4Gi"), "create", "-f", "-")
		m := waitPlaced(t, k, "taints", 2, 2)
		assertPlacedOn(t, m, map[string]string{"tolerates": "tainted-0"})
		if m["plain"] == "tainted-0" {
			t.Errorf("plain, not tolerating dedicated=infra:NoSchedule, is on tainted-0")
		}
	})

	t.Run("PreferNoSchedule", func(t *testing.T) {
		deletePodsOnCleanup(t, k)
		// huge-0 is where 1 cpu and 1Gi go (97 against big-0's 94); with a
		// PreferNoSchedule taint (TaintToleration weight 3) only a pod
		// tolerating it goes there, or one that fits nowhere else.
		k.ok(t, "taint", "node", "huge-0", "spot=true:PreferNoSchedule")
		t.Cleanup(func() { k.ok(t, "taint", "node", "huge-0", "spot=true:PreferNoSchedule-") })
		k.okStdin(t, placedPod("avoids", "prefer", "1", "1Gi")+
			placedPod("tolerates", "prefer", "1", "1Gi", "  tolerations:", "  - {key: spot, operator: Exists, effect: PreferNoSchedule}"),
			"create", "-f", "-")
		assertPlacedOn(t, waitPlaced(t, k, "prefer", 2, 2), map[string]string{"avoids": "big-0", "tolerates": "huge-0"})
		k.okStdin(t, placedPod("squeezed", "squeezed", "20", "1Gi"), "create", "-f", "-")
		assertPlacedOn(t, waitPlaced(t, k, "squeezed", 1, 1), map[string]string{"squeezed": "huge-0"})
	})
}
