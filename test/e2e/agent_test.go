package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/test/harness"
)

func startAgent(t *testing.T, srv *harness.Server, extra ...string) *component {
	t.Helper()
	return startComponent(t, "agent", func(port int) []string {
		return append([]string{"--kubeconfig", srv.Kubeconfig, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port)}, extra...)
	})
}

// TestSimulatedNodes: `skiff agent --simulate 3` registers three Nodes that
// stock kubectl shows Ready within 10s, with the labels, taints, capacity,
// addresses, nodeInfo and conditions upstream's kubelet reports, and Leases
// in kube-node-lease renewed every 10s and owned by their Node. Killed and
// started again, the agent takes the same Nodes back. Its /metrics is
// authorized through the API server; SIGTERM stops it cleanly.
func TestSimulatedNodes(t *testing.T) {
	paths := findKubectls()
	if len(paths) == 0 {
		t.Fatal("no kubectl found")
	}
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	ctx := context.Background()
	args := []string{"--simulate", "3", "--simulate-capacity", "cpu=4,memory=8Gi,pods=20,example.com/gpu=2",
		"--simulate-labels", "topology.kubernetes.io/zone=zone-a", "--simulate-taints", "dedicated=infra:NoSchedule"}
	agent := startAgent(t, srv, args...)
	k := newKctl(t, resolveKubectl(t, paths[len(paths)-1]), srv)

	started := time.Now()
	eventually(t, 10*time.Second, func() string {
		out := k.run("get", "nodes", "--no-headers")
		ready := map[string]bool{}
		for _, line := range strings.Split(out.stdout, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[1] == "Ready" {
				ready[f[0]] = true
			}
		}
		if !ready["sim-0"] || !ready["sim-1"] || !ready["sim-2"] {
			return "kubectl get nodes: " + out.combined()
		}
		return ""
	})
	t.Logf("three simulated nodes Ready after %s", time.Since(started).Round(time.Millisecond))

	node, err := admin.CoreV1().Nodes().Get(ctx, "sim-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"kubernetes.io/hostname": "sim-1", "kubernetes.io/os": "linux",
		"kubernetes.io/arch": node.Status.NodeInfo.Architecture, "topology.kubernetes.io/zone": "zone-a"} {
		if node.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, node.Labels[k], v)
		}
	}
	if !hasTaint(node, "dedicated", "infra", corev1.TaintEffectNoSchedule) {
		t.Errorf("taints %v lack dedicated=infra:NoSchedule", node.Spec.Taints)
	}
	if got := node.Status.Capacity.Name("example.com/gpu", "DecimalSI").String(); got != "2" {
		t.Errorf("capacity example.com/gpu = %s, want 2", got)
	}
	if got := node.Status.Allocatable.Memory().String(); got != "8Gi" {
		t.Errorf("allocatable memory = %s, want 8Gi", got)
	}
	if got := node.Status.NodeInfo.KubeletVersion; !strings.HasPrefix(got, "v1.37") {
		t.Errorf("kubeletVersion %q, want v1.37.x", got)
	}
	if len(node.Status.Addresses) != 2 || node.Status.Addresses[0].Type != corev1.NodeInternalIP || node.Status.Addresses[1].Address != "sim-1" {
		t.Errorf("addresses %v, want an InternalIP and the hostname", node.Status.Addresses)
	}
	wantConditions := map[corev1.NodeConditionType]string{
		corev1.NodeMemoryPressure: "False KubeletHasSufficientMemory kubelet has sufficient memory available",
		corev1.NodeDiskPressure:   "False KubeletHasNoDiskPressure kubelet has no disk pressure",
		corev1.NodePIDPressure:    "False KubeletHasSufficientPID kubelet has sufficient PID available",
		corev1.NodeReady:          "True KubeletReady kubelet is posting ready status",
	}
	for _, c := range node.Status.Conditions {
		if got := string(c.Status) + " " + c.Reason + " " + c.Message; got != wantConditions[c.Type] {
			t.Errorf("condition %s: %q, want %q", c.Type, got, wantConditions[c.Type])
		}
		delete(wantConditions, c.Type)
	}
	if len(wantConditions) > 0 {
		t.Errorf("conditions missing: %v", wantConditions)
	}

	lease, err := admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "sim-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *lease.Spec.HolderIdentity != "sim-1" || *lease.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("lease spec %+v, want holder sim-1 for 40s", lease.Spec)
	}
	firstRenew := lease.Spec.RenewTime.Time
	eventually(t, 15*time.Second, func() string {
		l, err := admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "sim-1", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" || l.OwnerReferences[0].UID != node.UID {
			return "lease owners " + strings.TrimSpace(strings.Join(strings.Fields(fmtOwners(l.OwnerReferences)), " ")) + ", want the Node"
		}
		if !l.Spec.RenewTime.Time.After(firstRenew) {
			return "lease not renewed since " + firstRenew.String()
		}
		return ""
	})

	testMetricsAuth(t, srv, agent)

	// Killed: no more renewals; started again: the same Nodes, renewed.
	_ = agent.cmd.Process.Kill()
	<-agent.exited
	uids := map[string]types.UID{}
	for _, name := range []string{"sim-0", "sim-1", "sim-2"} {
		n, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[name] = n.UID
	}
	killedAt := time.Now()
	again := startAgent(t, srv, args...)
	eventually(t, 15*time.Second, func() string {
		for name, uid := range uids {
			l, err := admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if !l.Spec.RenewTime.Time.After(killedAt) {
				return "lease " + name + " not renewed after the restart"
			}
			n, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || n.UID != uid {
				return "node " + name + " was not taken back: " + errString(err)
			}
		}
		return ""
	})
	again.stop(t)
}

// TestAgentRefusesBadFlags: invalid simulation flags fail at start with a
// message naming the flag.
func TestAgentRefusesBadFlags(t *testing.T) {
	bin, err := harness.SkiffBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kubeconfig", "x", "--node-ip", "not-an-ip"}, `--node-ip: "not-an-ip" is not an IP address`},
		{[]string{"--kubeconfig", "x", "--max-pods", "0"}, "--max-pods must be positive, got 0"},
		{[]string{"--kubeconfig", "x", "--simulate", "-1"}, "--simulate must not be negative"},
		{[]string{"--kubeconfig", "x", "--simulate", "1", "--simulate-taints", "a=b:Sometimes"}, `--simulate-taints: taint "a=b:Sometimes": effect "Sometimes"`},
		{[]string{"--kubeconfig", "x", "--simulate", "1", "--simulate-capacity", "cpu=lots"}, `--simulate-capacity: resource cpu: quantity "lots"`},
		{[]string{"--kubeconfig", "x", "--simulate", "1", "--simulate-labels", "bad key=v"}, `--simulate-labels: label key "bad key"`},
		{[]string{"--simulate", "1"}, "--kubeconfig is required"},
		{[]string{"--kubeconfig", "x", "--simulate", "1", "--simulate-start-delay", "-1s"}, "--simulate-start-delay must not be negative"},
		{[]string{"--kubeconfig", "x", "--simulate", "1", "--simulate-pod-workers", "0"}, "--simulate-pod-workers must be positive"},
	} {
		r := runProcess(procOpts{}, bin, append([]string{"agent"}, c.args...)...)
		// klog quotes the error: \" for ".
		if r.err == nil || !strings.Contains(strings.ReplaceAll(r.combined(), `\"`, `"`), c.want) {
			t.Errorf("skiff agent %v: %v %q, want an error with %q", c.args, r.err, abbreviate(r.combined()), c.want)
		}
	}
}

func hasTaint(n *corev1.Node, key, value string, effect corev1.TaintEffect) bool {
	for _, taint := range n.Spec.Taints {
		if taint.Key == key && taint.Value == value && taint.Effect == effect {
			return true
		}
	}
	return false
}

func fmtOwners(refs []metav1.OwnerReference) string {
	var parts []string
	for _, r := range refs {
		parts = append(parts, r.Kind+"/"+r.Name)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func errString(err error) string {
	if err == nil {
		return "another UID"
	}
	return err.Error()
}
