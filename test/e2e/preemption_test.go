package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// priorityClassesYAML: lowest < low < high, and high-never, as high but
// with preemptionPolicy Never.
const priorityClassesYAML = `apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: lowest}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 100
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high-never}
value: 1000
preemptionPolicy: Never
`

// preemptionPod is a pod of one cpu of a priority class, on node if
// given (by nodeSelector, through the scheduler), with a grace period
// long enough that a victim is seen before it is gone.
func preemptionPod(name, class, node string) string {
	spec := []string{"  priorityClassName: " + class, "  terminationGracePeriodSeconds: 30"}
	if node != "" {
		spec = append(spec, "  nodeSelector: {kubernetes.io/hostname: "+node+"}")
	}
	return placedPod(name, "preemption", "1", "512Mi", spec...)
}

// podWatchLine is the template of the pod watch: one line of key=value
// fields per event.
const podWatchLine = `jsonpath={.metadata.name} node={.spec.nodeName} nominated={.status.nominatedNodeName} ` +
	`disruption={.status.conditions[?(@.type=="DisruptionTarget")].reason} deleting={.metadata.deletionTimestamp}{"\n"}`

// watchFields are the key=value fields of one podWatchLine, the pod's
// name under "name".
func watchFields(fields []string) map[string]string {
	m := map[string]string{}
	for i, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		} else if i == 0 {
			m["name"] = f
		}
	}
	return m
}

// TestPreemption: on two simulated nodes full of low-priority pods, a
// high-priority pod that fits nowhere preempts as upstream's
// DefaultPreemption: of the nodes where one victim suffices it picks the
// one whose victim has the lowest priority, and there the lowest of the
// node's pods. Stock kubectl watches the victim get DisruptionTarget
// (PreemptionByScheduler) before it is gone and the preemptor get
// status.nominatedNodeName, then bind to that node. A pod of a class with
// preemptionPolicy: Never stays Pending and preempts nobody.
func TestPreemption(t *testing.T) {
	srv, k := startSchedulingServer(t)
	startAgent(t, srv, "--simulate", "2", "--simulate-prefix", "pre-", "--simulate-capacity", "cpu=2,memory=4Gi,pods=110")
	waitSchedulableNodes(t, k, 20*time.Second, "pre-0", "pre-1")
	k.okStdin(t, priorityClassesYAML, "create", "-f", "-")

	// pre-0: keep-0 (low) and victim (lowest); pre-1: keep-1, keep-2
	// (low). Every node is full.
	k.okStdin(t, preemptionPod("keep-0", "low", "pre-0")+preemptionPod("victim", "lowest", "pre-0")+
		preemptionPod("keep-1", "low", "pre-1")+preemptionPod("keep-2", "low", "pre-1"), "create", "-f", "-")
	assertPlacedOn(t, waitPlaced(t, k, "preemption", 4, 4),
		map[string]string{"keep-0": "pre-0", "victim": "pre-0", "keep-1": "pre-1", "keep-2": "pre-1"})
	eventually(t, 20*time.Second, func() string {
		if out := k.ok(t, "get", "pods", "-o", "jsonpath={.items[*].status.phase}"); out != "Running Running Running Running" {
			return "phases: " + out
		}
		return ""
	})

	watch := k.start(t, "get", "pods", "-w", "-o", podWatchLine)
	created := time.Now()
	k.okStdin(t, preemptionPod("high", "high", ""), "create", "-f", "-")
	var disrupted, nominated, bound bool
	other := map[string]string{} // what happened to the other pods
	watch.waitLine(t, "the victim's DisruptionTarget, the preemptor's nominatedNodeName and binding", func(fields []string) bool {
		f := watchFields(fields)
		switch name := f["name"]; {
		case name == "victim" && f["disruption"] == "PreemptionByScheduler":
			disrupted = true
		case name == "high" && f["nominated"] == "pre-0" && f["node"] == "":
			nominated = true
		case name == "high" && f["node"] != "":
			if f["node"] != "pre-0" {
				t.Errorf("high bound to %s, want pre-0 (nominated)", f["node"])
			}
			bound = true
		case name != "victim" && name != "high" && (f["disruption"] != "" || f["deleting"] != ""):
			other[name] = strings.Join(fields, " ")
		}
		return disrupted && nominated && bound
	})
	t.Logf("high preempted victim and was bound %s after its create", time.Since(created).Round(100*time.Millisecond))
	if len(other) > 0 {
		t.Errorf("pods other than the victim were preempted: %v", other)
	}
	eventually(t, 20*time.Second, func() string {
		if _, problem := getPod(k, "victim"); problem != "gone" {
			return "victim not gone: " + problem
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "reason=Preempted,involvedObject.name=victim", "-o", "jsonpath={.items[*].message}")
		if !strings.HasPrefix(out, "Preempted by pod ") || !strings.HasSuffix(out, " on node pre-0") {
			return "Preempted event of the victim: " + out
		}
		return ""
	})

	// The nodes are full again (pre-0: keep-0 and high). A high-never pod
	// could preempt any keep-*, but may not.
	k.okStdin(t, preemptionPod("never", "high-never", ""), "create", "-f", "-")
	waitUnschedulable(t, k, "never", "0/2 nodes are available: 2 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.")
	if got := k.jsonpath(t, "{.status.nominatedNodeName}", "pod", "never"); got != "" {
		t.Errorf("never nominated to %q", got)
	}
	time.Sleep(time.Second)
	want := map[string]string{"keep-0": "pre-0", "keep-1": "pre-1", "keep-2": "pre-1", "high": "pre-0", "never": ""}
	if got := placements(t, k, "preemption"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the preemptionPolicy: Never pod: placements %v, want %v", got, want)
	}
	if out := k.ok(t, "get", "pods", "-o", `jsonpath={.items[*].metadata.deletionTimestamp}{.items[*].status.conditions[?(@.type=="DisruptionTarget")].reason}`); out != "" {
		t.Errorf("a pod is being preempted after the preemptionPolicy: Never pod came: %s", out)
	}
}
