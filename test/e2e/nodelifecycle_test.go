package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/test/harness"
)

// lifecycleGrace is the test's --node-monitor-grace-period: twice the
// agent's Lease renewal interval (10s), as with upstream's 40s/10s, so
// that a live node never looks silent.
const lifecycleGrace = 20 * time.Second

// TestNodeLifecycle: simulated nodes become Ready and lose the
// not-ready:NoSchedule taint of their admission. Their agent killed, they
// are Unknown with both unreachable taints within the grace period + 10s
// (a third node, of another agent, stays Ready: with every node down the
// controller would blame itself and taint none), their pods are marked not
// Ready and those tolerating unreachable for 5s are deleted after 5s, with
// the DisruptionTarget condition and upstream's events. Started again, the
// agent's nodes are Ready and untainted.
func TestNodeLifecycle(t *testing.T) {
	paths := findKubectls()
	if len(paths) == 0 {
		t.Fatal("no kubectl found")
	}
	dir := t.TempDir()
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Dir: dir, Args: []string{
		"--node-monitor-grace-period=" + lifecycleGrace.String(), "--node-startup-grace-period=30s", "--node-monitor-period=2s",
		// Both nodes are tainted at once (upstream's 0.1/s would take 10s
		// for the second).
		"--node-eviction-rate=1"}})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	if err := checkReady(srv, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	k := newKctl(t, resolveKubectl(t, paths[len(paths)-1]), srv)

	keep := startAgent(t, srv, "--simulate", "1", "--simulate-prefix", "keep-")
	defer keep.stop(t)
	victimArgs := []string{"--simulate", "2"}
	victim := startAgent(t, srv, victimArgs...)
	victims := []string{"sim-0", "sim-1"}
	all := append([]string{"keep-0"}, victims...)

	eventually(t, 30*time.Second, func() string {
		nodes, problem := getNodes(k)
		if problem != "" {
			return problem
		}
		for _, name := range all {
			n, ok := nodes[name]
			if !ok {
				return "no node " + name
			}
			if s := readyStatus(n); s != corev1.ConditionTrue {
				return fmt.Sprintf("%s Ready=%s", name, s)
			}
			if len(n.Spec.Taints) > 0 {
				return fmt.Sprintf("%s taints %v", name, n.Spec.Taints)
			}
		}
		return ""
	})

	// Pods bound to the victims: two that tolerate unreachable for 5s, one
	// forever.
	var manifests []string
	for i, node := range victims {
		manifests = append(manifests, podManifest(fmt.Sprintf("five-%d", i), node, "tolerationSeconds: 5"))
	}
	manifests = append(manifests, podManifest("forever", "sim-0", ""))
	k.okWith(t, procOpts{stdin: strings.Join(manifests, "---\n")}, "create", "-f", "-")
	// The agent may report them Ready; whether it does or not, they are
	// Ready before it dies.
	for _, name := range []string{"five-0", "five-1", "forever"} {
		eventually(t, 20*time.Second, func() string {
			p, problem := getPod(k, name)
			if problem != "" {
				return problem
			}
			if podReady(p) == corev1.ConditionTrue {
				return ""
			}
			// Not (yet) reported: say so ourselves, as a kubelet would.
			r := k.run("patch", "pod", name, "--subresource=status", "--type=strategic", "-p",
				`{"status":{"conditions":[{"type":"Ready","status":"True"}]}}`)
			return "pod " + name + " not Ready yet: " + r.combined()
		})
	}

	_ = victim.cmd.Process.Kill()
	<-victim.exited
	killed := time.Now()

	deadline := lifecycleGrace + 10*time.Second
	taintedAt := map[string]time.Time{}
	eventually(t, deadline, func() string {
		nodes, problem := getNodes(k)
		if problem != "" {
			return problem
		}
		for _, name := range victims {
			n := nodes[name]
			if s := readyStatus(n); s != corev1.ConditionUnknown {
				return fmt.Sprintf("%s Ready=%s", name, s)
			}
			for _, c := range n.Status.Conditions {
				if c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status." {
					return fmt.Sprintf("%s condition %s: %s %s %q", name, c.Type, c.Status, c.Reason, c.Message)
				}
			}
			noSchedule, noExecute := taintOf(n, corev1.TaintEffectNoSchedule), taintOf(n, corev1.TaintEffectNoExecute)
			if noSchedule == nil || noExecute == nil || len(n.Spec.Taints) != 2 {
				return fmt.Sprintf("%s taints %v, want unreachable NoSchedule and NoExecute", name, n.Spec.Taints)
			}
			if noExecute.TimeAdded == nil {
				return name + ": NoExecute taint without timeAdded"
			}
			taintedAt[name] = noExecute.TimeAdded.Time
		}
		if s := readyStatus(nodes["keep-0"]); s != corev1.ConditionTrue {
			return "keep-0 Ready=" + string(s)
		}
		return ""
	})
	t.Logf("nodes Unknown and tainted %s after the kill", time.Since(killed).Round(time.Second))

	// Pods marked not Ready; the one tolerating forever stays.
	eventually(t, 10*time.Second, func() string {
		p, problem := getPod(k, "forever")
		if problem != "" {
			return problem
		}
		if s := podReady(p); s != corev1.ConditionFalse {
			return "pod forever Ready=" + string(s)
		}
		return ""
	})
	// The others deleted 5s after the taint: gone, or (the agent being
	// dead) terminating.
	for i, name := range []string{"five-0", "five-1"} {
		eventually(t, 15*time.Second, func() string {
			p, problem := getPod(k, name)
			if problem == "gone" {
				return ""
			}
			if problem != "" {
				return problem
			}
			if p.DeletionTimestamp == nil {
				return "pod " + name + " not deleted"
			}
			var disrupted bool
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "DeletionByTaintManager" &&
					c.Message == "Taint manager: deleting due to NoExecute taint" {
					disrupted = true
				}
			}
			if !disrupted {
				return fmt.Sprintf("pod %s without the DisruptionTarget condition: %+v", name, p.Status.Conditions)
			}
			// Times have seconds only.
			deletedAt := p.DeletionTimestamp.Add(-time.Duration(*p.DeletionGracePeriodSeconds) * time.Second)
			if early := deletedAt.Sub(taintedAt[victims[i]]); early < 5*time.Second-2*time.Second {
				t.Errorf("pod %s deleted %s after the taint, before its tolerationSeconds", name, early)
			}
			return ""
		})
	}
	if p, problem := getPod(k, "forever"); problem != "" || p.DeletionTimestamp != nil {
		t.Errorf("pod forever deleted (%s)", problem)
	}
	events := k.ok(t, "get", "events", "-o", "jsonpath={range .items[*]}{.source.component} {.reason} {.message}{\"\\n\"}{end}")
	for _, want := range []string{
		"taint-eviction-controller TaintManagerEviction Marking for deletion Pod " + k.ns + "/five-0",
		"node-controller NodeNotReady Node is not ready",
	} {
		if !strings.Contains(events, want) {
			t.Errorf("no event %q in:\n%s", want, events)
		}
	}
	nodeEvents := k.ok(t, "get", "events", "-n", "default", "--field-selector", "involvedObject.name=sim-0",
		"-o", "jsonpath={range .items[*]}{.source.component} {.reason} {.message}{\"\\n\"}{end}")
	if want := "node-controller NodeNotReady Node sim-0 status is now: NodeNotReady"; !strings.Contains(nodeEvents, want) {
		t.Errorf("no event %q in:\n%s", want, nodeEvents)
	}

	// Upstream's metrics, on skiff server's /metrics: both nodes tainted,
	// both pods deleted, the zone's size and health.
	metrics := k.ok(t, "get", "--raw", "/metrics")
	for _, want := range []string{`node_collector_evictions_total{zone=""} 2`, "taint_eviction_controller_pod_deletions_total 2",
		`node_collector_zone_size{zone=""} 3`, `node_collector_unhealthy_nodes_in_zone{zone=""} 2`, "node_collector_update_all_nodes_health_duration_seconds_count",
		"taint_eviction_controller_pod_deletion_duration_seconds_count 2"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The agent back: Ready, no taints.
	again := startAgent(t, srv, victimArgs...)
	defer again.stop(t)
	eventually(t, 30*time.Second, func() string {
		nodes, problem := getNodes(k)
		if problem != "" {
			return problem
		}
		for _, name := range all {
			n := nodes[name]
			if s := readyStatus(n); s != corev1.ConditionTrue {
				return fmt.Sprintf("%s Ready=%s", name, s)
			}
			if len(n.Spec.Taints) > 0 {
				return fmt.Sprintf("%s taints %v", name, n.Spec.Taints)
			}
		}
		return ""
	})
}

func podManifest(name, node, seconds string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  nodeName: %s
  tolerations:
  - key: node.kubernetes.io/unreachable
    operator: Exists
    effect: NoExecute
    %s
  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
`, name, node, seconds)
}

// getNodes is `kubectl get nodes -o json` by name, or what went wrong.
func getNodes(k *kctl) (map[string]*corev1.Node, string) {
	r := k.run("get", "nodes", "-o", "json")
	if r.err != nil {
		return nil, "kubectl get nodes: " + r.combined()
	}
	var list corev1.NodeList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		return nil, err.Error()
	}
	nodes := map[string]*corev1.Node{}
	for i := range list.Items {
		nodes[list.Items[i].Name] = &list.Items[i]
	}
	return nodes, ""
}

// getPod is `kubectl get pod name -o json`; "gone" if it is not found.
func getPod(k *kctl, name string) (*corev1.Pod, string) {
	r := k.run("get", "pod", name, "-o", "json")
	if r.err != nil {
		if strings.Contains(r.stderr, "NotFound") {
			return nil, "gone"
		}
		return nil, "kubectl get pod: " + r.combined()
	}
	p := &corev1.Pod{}
	if err := json.Unmarshal([]byte(r.stdout), p); err != nil {
		return nil, err.Error()
	}
	return p, ""
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	if n == nil {
		return "missing"
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return "none"
}

func podReady(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return "none"
}

// taintOf is the node's unreachable taint of that effect.
func taintOf(n *corev1.Node, effect corev1.TaintEffect) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == corev1.TaintNodeUnreachable && n.Spec.Taints[i].Effect == effect {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

// TestNodeLifecycleRefusesBadFlags: skiff server and controller-manager
// refuse node lifecycle flags that cannot work, naming the flag.
func TestNodeLifecycleRefusesBadFlags(t *testing.T) {
	bin, err := harness.SkiffBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"controller-manager", "--kubeconfig", "x", "--node-monitor-grace-period=-1s"}, "--node-monitor-grace-period must be positive, got -1s"},
		{[]string{"controller-manager", "--kubeconfig", "x", "--node-monitor-period=0"}, "--node-monitor-period must be positive, got 0s"},
		{[]string{"server", "--data-dir", t.TempDir(), "--node-startup-grace-period=-5s"}, "--node-startup-grace-period must be positive, got -5s"},
		{[]string{"server", "--data-dir", t.TempDir(), "--node-eviction-rate=-1"}, "--node-eviction-rate must not be negative, got -1"},
		{[]string{"server", "--data-dir", t.TempDir(), "--unhealthy-zone-threshold=1.5"}, "--unhealthy-zone-threshold must be between 0 and 1, got 1.5"},
	} {
		r := runProcess(procOpts{}, bin, c.args...)
		if r.err == nil || !strings.Contains(r.combined(), c.want) {
			t.Errorf("skiff %v: %v %q, want an error with %q", c.args, r.err, abbreviate(r.combined()), c.want)
		}
	}
}
