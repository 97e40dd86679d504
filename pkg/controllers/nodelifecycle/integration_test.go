package nodelifecycle_test

// Against a real skiff API server (apiserver.Run on its embedded etcd), the
// controllers as skiff runs them (controllers.Run, each controller as its
// ServiceAccount: the node-controller role is exercised too), with short
// periods. The test plays the kubelets: it creates the Nodes, posts their
// status and renews their Leases.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/controllers/nodelifecycle"
	"github.com/skiff-dev/skiff/test/integration"
)

// startServer runs the API server until the test ends; the log lines
// about nodes and taints are shown if the test fails.
func startServer(t *testing.T) *restclient.Config {
	return integration.StartAPIServer(t, integration.ServerOptions{Verbosity: 2, LogLines: 80, LogFilter: func(l string) bool {
		return strings.Contains(l, "node") || strings.Contains(l, "aint") || strings.Contains(l, "isruption")
	}})
}

// grace is the test's --node-monitor-grace-period (and startup grace).
const grace = 3 * time.Second

func runControllers(t *testing.T, cfg *restclient.Config) {
	t.Helper()
	integration.RunControllers(t, cfg, controllers.Options{UseServiceAccountCredentials: true,
		NodeLifecycle: nodelifecycle.Config{MonitorPeriod: 300 * time.Millisecond, StartupGracePeriod: grace, MonitorGracePeriod: grace,
			EvictionRate: 20, SecondaryEvictionRate: 1, LargeClusterSizeThreshold: 50, UnhealthyZoneThreshold: 0.55}})
}

// kubelet plays one node's kubelet: registration, status and Lease.
type kubelet struct {
	t    *testing.T
	cs   kubernetes.Interface
	name string

	mu     sync.Mutex
	alive  bool
	status map[corev1.NodeConditionType]corev1.ConditionStatus
}

func newKubelet(t *testing.T, cs kubernetes.Interface, name string) *kubelet {
	k := &kubelet{t: t, cs: cs, name: name, alive: true, status: map[corev1.NodeConditionType]corev1.ConditionStatus{
		corev1.NodeReady: corev1.ConditionTrue, corev1.NodeMemoryPressure: corev1.ConditionFalse,
		corev1.NodeDiskPressure: corev1.ConditionFalse, corev1.NodePIDPressure: corev1.ConditionFalse}}
	ctx := context.Background()
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{corev1.LabelOSStable: "linux"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := metav1.NowMicro()
	if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.post()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(grace / 6)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				k.mu.Lock()
				alive := k.alive
				k.mu.Unlock()
				if alive {
					k.renew()
				}
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return k
}

func (k *kubelet) renew() {
	ctx := context.Background()
	l, err := k.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, k.name, metav1.GetOptions{})
	if err != nil {
		return
	}
	now := metav1.NowMicro()
	l.Spec.RenewTime = &now
	_, _ = k.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{})
}

// post writes the node's conditions, heartbeat now, as the kubelet does.
func (k *kubelet) post() {
	k.t.Helper()
	ctx := context.Background()
	for range 10 {
		n, err := k.cs.CoreV1().Nodes().Get(ctx, k.name, metav1.GetOptions{})
		if err != nil {
			k.t.Fatal(err)
		}
		now := metav1.Now()
		k.mu.Lock()
		var conds []corev1.NodeCondition
		for _, t := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeReady} {
			c := corev1.NodeCondition{Type: t, Status: k.status[t], Reason: "Kubelet" + string(k.status[t]), LastHeartbeatTime: now, LastTransitionTime: now}
			for _, old := range n.Status.Conditions {
				if old.Type == t && old.Status == c.Status {
					c.LastTransitionTime = old.LastTransitionTime
				}
			}
			conds = append(conds, c)
		}
		k.mu.Unlock()
		n.Status.Conditions = conds
		if _, err = k.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			k.t.Fatal(err)
		}
	}
	k.t.Fatal("status update kept conflicting")
}

func (k *kubelet) set(t corev1.NodeConditionType, s corev1.ConditionStatus) {
	k.mu.Lock()
	k.status[t] = s
	k.mu.Unlock()
	k.post()
}

func (k *kubelet) stop() {
	k.mu.Lock()
	k.alive = false
	k.mu.Unlock()
}

func (k *kubelet) start() {
	k.mu.Lock()
	k.alive = true
	k.mu.Unlock()
	k.renew()
	k.post()
}

func taintsOf(n *corev1.Node) string {
	var s []string
	for _, t := range n.Spec.Taints {
		s = append(s, t.ToString())
	}
	return strings.Join(s, ",")
}

func findTaint(n *corev1.Node, key string, effect corev1.TaintEffect) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == key && n.Spec.Taints[i].Effect == effect {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

// waitNode waits up to timeout for check to pass on the Node; check says
// what is wrong, "" when nothing.
func waitNode(t *testing.T, cs kubernetes.Interface, name string, timeout time.Duration, check func(*corev1.Node) string) *corev1.Node {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		msg := ""
		if err != nil {
			msg = err.Error()
		} else if msg = check(n); msg == "" {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s after %s: %s", name, timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// taintsAre checks the node has exactly these taints (key:effect).
func taintsAre(want ...string) func(*corev1.Node) string {
	return func(n *corev1.Node) string {
		got := map[string]bool{}
		for _, t := range n.Spec.Taints {
			got[t.Key+":"+string(t.Effect)] = true
		}
		for _, w := range want {
			if !got[w] {
				return "taints " + taintsOf(n) + ", want " + strings.Join(want, ",")
			}
		}
		if len(got) != len(want) {
			return "taints " + taintsOf(n) + ", want only " + strings.Join(want, ",")
		}
		return ""
	}
}

func createPod(t *testing.T, cs kubernetes.Interface, name, node string, tolerations ...corev1.Toleration) {
	t.Helper()
	ctx := context.Background()
	p, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func tolerate(key string, seconds *int64) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds}
}

func getPod(t *testing.T, cs kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	p, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// deletedAt waits for the pod to be deleted (a bound pod is deleted
// gracefully: it keeps a deletionTimestamp) and returns when it was seen.
func waitDeleted(t *testing.T, cs kubernetes.Interface, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := getPod(t, cs, name)
		if p == nil || p.DeletionTimestamp != nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s not deleted after %s", name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func events(t *testing.T, cs kubernetes.Interface, ns, name string) []string {
	t.Helper()
	list, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Source.Component+" "+e.Type+" "+e.Reason+" "+e.Message)
	}
	return out
}

func waitEvent(t *testing.T, cs kubernetes.Interface, ns, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := events(t, cs, ns, name)
		for _, e := range got {
			if e == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no event %q for %s; events: %q", want, name, got)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestNodeLifecycleAgainstAPIServer(t *testing.T) {
	cfg := startServer(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runControllers(t, cfg)
	ctx := context.Background()

	// Ready nodes lose the not-ready:NoSchedule taint the admission gave
	// them; the beta os label follows the stable one.
	a := newKubelet(t, cs, "a")
	b := newKubelet(t, cs, "b")
	c := newKubelet(t, cs, "c")
	for _, name := range []string{"a", "b", "c"} {
		waitNode(t, cs, name, 10*time.Second, func(n *corev1.Node) string {
			if n.Labels["beta.kubernetes.io/os"] != "linux" {
				return fmt.Sprintf("labels %v", n.Labels)
			}
			return taintsAre()(n)
		})
	}
	// A node that never posts its status: NeverUpdated after the startup
	// grace period.
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "silent",
		Labels: map[string]string{nodelifecycleExclude: ""}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Pressure and spec.unschedulable: NoSchedule taints that follow them.
	a.set(corev1.NodeMemoryPressure, corev1.ConditionTrue)
	waitNode(t, cs, "a", 5*time.Second, taintsAre(corev1.TaintNodeMemoryPressure+":NoSchedule"))
	a.set(corev1.NodeMemoryPressure, corev1.ConditionFalse)
	a.set(corev1.NodeDiskPressure, corev1.ConditionTrue)
	a.set(corev1.NodePIDPressure, corev1.ConditionTrue)
	waitNode(t, cs, "a", 5*time.Second, taintsAre(corev1.TaintNodeDiskPressure+":NoSchedule", corev1.TaintNodePIDPressure+":NoSchedule"))
	a.set(corev1.NodeDiskPressure, corev1.ConditionFalse)
	a.set(corev1.NodePIDPressure, corev1.ConditionFalse)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "a", "application/merge-patch+json", []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNode(t, cs, "a", 5*time.Second, taintsAre(corev1.TaintNodeUnschedulable+":NoSchedule"))
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "a", "application/merge-patch+json", []byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNode(t, cs, "a", 5*time.Second, taintsAre())

	// Pods on b: one leaves at once, one after 3s, one never, one would
	// after 60s.
	createPod(t, cs, "now", "b", tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](0)))
	createPod(t, cs, "three", "b", tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](3)))
	createPod(t, cs, "forever", "b", tolerate(corev1.TaintNodeUnreachable, nil))
	createPod(t, cs, "cancelled", "b", tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](60)))
	createPod(t, cs, "on-a", "a")

	// b goes silent: Unknown after the grace period, both unreachable
	// taints, its pods not Ready.
	b.stop()
	stopped := time.Now()
	n := waitNode(t, cs, "b", grace+5*time.Second, taintsAre(corev1.TaintNodeUnreachable+":NoSchedule", corev1.TaintNodeUnreachable+":NoExecute"))
	t.Logf("b tainted %s after it went silent", time.Since(stopped).Round(time.Millisecond))
	for _, cond := range n.Status.Conditions {
		if cond.Status != corev1.ConditionUnknown || cond.Reason != nodelifecycle.ReasonNodeStatusUnknown || cond.Message != "Kubelet stopped posting node status." {
			t.Errorf("b condition %s: %s %s %q", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
	noExecute := findTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	if noExecute.TimeAdded == nil {
		t.Fatalf("NoExecute taint without timeAdded: %+v", noExecute)
	}
	// Not before the grace period since the last renewal (timeAdded has
	// seconds only).
	lease, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if silent := noExecute.TimeAdded.Sub(lease.Spec.RenewTime.Time); silent < grace-time.Second {
		t.Errorf("b tainted %s after its last renewal, before the grace period", silent)
	}
	waitEvent(t, cs, "default", "b", "node-controller Normal NodeNotReady Node b status is now: NodeNotReady")

	if p := waitDeleted(t, cs, "now", 5*time.Second); p != nil {
		if cond := podCondition(p, corev1.DisruptionTarget); cond == nil || cond.Reason != "DeletionByTaintManager" || cond.Message != "Taint manager: deleting due to NoExecute taint" {
			t.Errorf("pod now: DisruptionTarget %+v", cond)
		}
	}
	waitEvent(t, cs, "default", "now", "taint-eviction-controller Normal TaintManagerEviction Marking for deletion Pod default/now")
	waitDeleted(t, cs, "three", 10*time.Second)
	if at := time.Since(noExecute.TimeAdded.Time); at < 3*time.Second {
		t.Errorf("pod three deleted %s after the taint was added, before its tolerationSeconds", at)
	}
	for _, name := range []string{"forever", "cancelled"} {
		p := getPod(t, cs, name)
		if p == nil || p.DeletionTimestamp != nil {
			t.Fatalf("pod %s deleted", name)
		}
		if cond := podCondition(p, corev1.PodReady); cond == nil || cond.Status != corev1.ConditionFalse {
			t.Errorf("pod %s: Ready %+v, want False", name, cond)
		}
	}
	waitEvent(t, cs, "default", "forever", "node-controller Warning NodeNotReady Node is not ready")
	if cond := podCondition(getPod(t, cs, "on-a"), corev1.PodReady); cond.Status != corev1.ConditionTrue {
		t.Errorf("pod on a: Ready %+v", cond)
	}

	// c says it is not Ready: the not-ready taints.
	c.set(corev1.NodeReady, corev1.ConditionFalse)
	waitNode(t, cs, "c", 5*time.Second, taintsAre(corev1.TaintNodeNotReady+":NoSchedule", corev1.TaintNodeNotReady+":NoExecute"))

	// b comes back: its taints go, the pending deletion is cancelled.
	b.start()
	waitNode(t, cs, "b", 5*time.Second, taintsAre())
	waitEvent(t, cs, "default", "cancelled", "taint-eviction-controller Normal TaintManagerEviction Cancelling deletion of Pod default/cancelled")
	c.set(corev1.NodeReady, corev1.ConditionTrue)
	waitNode(t, cs, "c", 5*time.Second, taintsAre())

	// The node that never posted: NeverUpdated.
	n = waitNode(t, cs, "silent", grace+5*time.Second, func(n *corev1.Node) string {
		if len(n.Status.Conditions) != 4 {
			return fmt.Sprintf("conditions %v", n.Status.Conditions)
		}
		return ""
	})
	for _, cond := range n.Status.Conditions {
		if cond.Status != corev1.ConditionUnknown || cond.Reason != "NodeStatusNeverUpdated" || cond.Message != "Kubelet never posted node status." {
			t.Errorf("silent condition %s: %s %s %q", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}

	// All nodes silent: the controller blames itself, removes the
	// NoExecute taints and adds none (the NoSchedule ones stay).
	a.stop()
	b.stop()
	c.stop()
	for _, name := range []string{"a", "b", "c"} {
		waitNode(t, cs, name, grace+5*time.Second, func(n *corev1.Node) string {
			if cond := nodeReady(n); cond == nil || cond.Status != corev1.ConditionUnknown {
				return fmt.Sprintf("Ready %+v", cond)
			}
			return ""
		})
	}
	for _, name := range []string{"a", "b", "c"} {
		waitNode(t, cs, name, 5*time.Second, taintsAre(corev1.TaintNodeUnreachable+":NoSchedule"))
	}
	time.Sleep(2 * time.Second)
	for _, name := range []string{"a", "b", "c"} {
		waitNode(t, cs, name, 0, taintsAre(corev1.TaintNodeUnreachable+":NoSchedule"))
	}
	if p := getPod(t, cs, "forever"); p == nil || p.DeletionTimestamp != nil {
		t.Error("pod forever deleted")
	}
	// One back: tainting resumes for the others.
	a.start()
	waitNode(t, cs, "b", 10*time.Second, taintsAre(corev1.TaintNodeUnreachable+":NoSchedule", corev1.TaintNodeUnreachable+":NoExecute"))
	waitNode(t, cs, "a", 5*time.Second, taintsAre())
}

const nodelifecycleExclude = "node.kubernetes.io/exclude-disruption"

func nodeReady(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}
