package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-dev/skiff/test/harness"
)

// createReadyNode creates a Ready Node with cpu cores (8Gi, 110 pods) and
// taints, without the kubelet: the status is written as one would.
func createReadyNode(t *testing.T, admin kubernetes.Interface, name, cpu string, taints ...corev1.Taint) {
	t.Helper()
	ctx := context.Background()
	n, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Spec:       corev1.NodeSpec{Taints: taints},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resources := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	// The node IPAM and lifecycle controllers write the new Node too:
	// re-read it on a conflict, as a kubelet would.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		now := metav1.Now()
		n.Status = corev1.NodeStatus{Capacity: resources, Allocatable: resources, Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status",
			LastHeartbeatTime: now, LastTransitionTime: now}}}
		_, err := admin.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			if latest, getErr := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); getErr == nil {
				n = latest
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// schedPodYAML is a pod requesting cpu; it tolerates the not-ready and
// unreachable taints, which the Nodes made here keep (no kubelet, no
// Lease) as long as the node lifecycle controller says so.
func schedPodYAML(name, cpu, schedulerName string) string {
	s := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  tolerations:
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoSchedule}
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoSchedule}
  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
    resources: {requests: {cpu: "%s"}}
`, name, cpu)
	if schedulerName != "" {
		s += "  schedulerName: " + schedulerName + "\n"
	}
	return s
}

func firstKubectl(t *testing.T) kubectlBinary {
	t.Helper()
	paths := findKubectls()
	if len(paths) == 0 {
		t.Skip("no kubectl found: pass -kubectl=PATH or KUBECTL=PATH, or run hack/build-kubectl.sh")
	}
	return resolveKubectl(t, paths[0])
}

// waitNode waits for the pod's spec.nodeName (by kubectl) and returns it.
func waitNode(t *testing.T, k *kctl, pod string, timeout time.Duration) string {
	t.Helper()
	var node string
	eventually(t, timeout, func() string {
		if node = k.jsonpath(t, "{.spec.nodeName}", "pod", pod); node == "" {
			return "pod " + pod + " is not bound"
		}
		return ""
	})
	return node
}

// TestScheduler: skiff server's scheduler binds pods to the Nodes that fit;
// a pod that fits nowhere stays Pending with upstream's PodScheduled
// condition and FailedScheduling event (seen by stock kubectl); a new node
// makes it schedulable within seconds; a pod for another scheduler is left
// alone.
func TestScheduler(t *testing.T) {
	srv, err := harness.StartSkiff(context.Background(), harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	k := newKctl(t, firstKubectl(t), srv)
	createReadyNode(t, admin, "small-1", "2")
	createReadyNode(t, admin, "small-2", "2")
	createReadyNode(t, admin, "infra", "8", corev1.Taint{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule})

	k.okStdin(t, schedPodYAML("fits", "1", ""), "create", "-f", "-")
	if node := waitNode(t, k, "fits", 20*time.Second); node != "small-1" && node != "small-2" {
		t.Errorf("fits bound to %s, want an untainted node", node)
	}
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "reason=Scheduled,involvedObject.name=fits", "-o", "jsonpath={.items[*].message}")
		if !strings.HasPrefix(out, "Successfully assigned "+k.ns+"/fits to small-") {
			return "Scheduled event of fits: " + out
		}
		return ""
	})

	// 3 cores fit on neither small node, ever (upstream's Fit says so:
	// preemption is not helpful), and the big one is tainted.
	k.okStdin(t, schedPodYAML("huge", "3", ""), "create", "-f", "-")
	k.okStdin(t, schedPodYAML("other", "1", "other"), "create", "-f", "-")
	want := "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
	eventually(t, 20*time.Second, func() string {
		got := k.jsonpath(t, `{.status.conditions[?(@.type=="PodScheduled")].status}/{.status.conditions[?(@.type=="PodScheduled")].reason}/{.status.conditions[?(@.type=="PodScheduled")].message}`, "pod", "huge")
		if got != "False/Unschedulable/"+want {
			return "PodScheduled of huge: " + got
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "reason=FailedScheduling,involvedObject.name=huge", "-o", `jsonpath={range .items[*]}{.type}|{.reportingComponent}|{.message}{"\n"}{end}`)
		if !strings.Contains(out, "Warning|default-scheduler|"+want) {
			return "FailedScheduling events of huge:\n" + out
		}
		return ""
	})
	if phase := k.jsonpath(t, "{.status.phase}", "pod", "huge"); phase != "Pending" {
		t.Errorf("huge is %s, want Pending", phase)
	}

	// A node that fits: scheduled within seconds, nothing restarted.
	added := time.Now()
	createReadyNode(t, admin, "big", "4")
	if node := waitNode(t, k, "huge", 15*time.Second); node != "big" {
		t.Errorf("huge bound to %s, want the new node big", node)
	}
	t.Logf("huge bound %v after its node was added", time.Since(added).Round(100*time.Millisecond))

	// schedulerName: other: untouched all along.
	if got := k.jsonpath(t, "{.spec.nodeName}|{.status.conditions}|{.status.phase}", "pod", "other"); got != "||Pending" {
		t.Errorf("the other scheduler's pod: %q, want no node, no conditions, Pending", got)
	}
	if out := k.ok(t, "get", "events", "--field-selector", "involvedObject.name=other", "-o", "jsonpath={.items[*].reason}"); out != "" {
		t.Errorf("events about the other scheduler's pod: %s", out)
	}
	// The Lease upstream's scheduler elects on.
	if holder := k.ok(t, "get", "lease", "-n", "kube-system", "kube-scheduler", "-o", "jsonpath={.spec.holderIdentity}"); holder == "" {
		t.Error("no holder of the Lease kube-system/kube-scheduler")
	}
}

func startScheduler(t *testing.T, srv *harness.Server, extra ...string) *component {
	t.Helper()
	return startComponent(t, "scheduler", func(port int) []string {
		return append([]string{"--kubeconfig", srv.Kubeconfig, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port)}, extra...)
	})
}

// TestSchedulerStandalone: with skiff server --disable-scheduler nothing
// binds; `skiff scheduler` against it does, serves /healthz and the other
// health endpoints to all and /metrics (upstream's scheduler metrics) as the
// API server authorizes, and stops cleanly on SIGTERM.
func TestSchedulerStandalone(t *testing.T) {
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Args: []string{"--disable-scheduler"}})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	k := newKctl(t, firstKubectl(t), srv)
	createReadyNode(t, admin, "node-1", "2")
	k.okStdin(t, schedPodYAML("waits", "1", ""), "create", "-f", "-")
	time.Sleep(3 * time.Second)
	if got := k.jsonpath(t, "{.spec.nodeName}|{.status.conditions}", "pod", "waits"); got != "|" {
		t.Fatalf("with --disable-scheduler the pod was touched: %q", got)
	}

	sched := startScheduler(t, srv)
	if node := waitNode(t, k, "waits", 30*time.Second); node != "node-1" {
		t.Errorf("bound to %s", node)
	}
	eventually(t, 10*time.Second, func() string {
		if code, body, err := sched.get("/healthz"); err != nil || code != http.StatusOK {
			return fmt.Sprintf("/healthz: %d %s %v", code, body, err)
		}
		return ""
	})
	testMetricsAuth(t, srv, sched)
	monitor := clientTLS(t, userKubeconfig(t, srv, "sched-metrics-reader", "system:monitoring"))
	_, body, err := sched.getAs(monitor, "", "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1`,
		`scheduler_scheduling_attempt_duration_seconds_bucket{profile="default-scheduler",result="scheduled",le=`,
		`scheduler_pending_pods{queue="active"} 0`,
		`scheduler_pending_pods{queue="gated"} 0`,
		`scheduler_preemption_attempts_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// One pod bound: one SLI observation, under the attempts it took (one,
	// unless a node event raced the first cycle).
	sli := 0.0
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, `scheduler_pod_scheduling_sli_duration_seconds_count{attempts="`); ok {
			if f := strings.Fields(rest); len(f) == 2 {
				v, _ := strconv.ParseFloat(f[1], 64)
				sli += v
			}
		}
	}
	if sli != 1 {
		t.Errorf("scheduler_pod_scheduling_sli_duration_seconds_count sums to %v over its attempts labels, want 1", sli)
	}
	if holder := k.ok(t, "get", "lease", "-n", "kube-system", "kube-scheduler", "-o", "jsonpath={.spec.holderIdentity}"); holder == "" {
		t.Error("skiff scheduler holds no Lease kube-system/kube-scheduler")
	}
	sched.stop(t)
	// Released on SIGTERM, as upstream's ReleaseOnCancel.
	if holder := k.ok(t, "get", "lease", "-n", "kube-system", "kube-scheduler", "-o", "jsonpath={.spec.holderIdentity}"); holder != "" {
		t.Errorf("Lease still held by %q after SIGTERM", holder)
	}
}
