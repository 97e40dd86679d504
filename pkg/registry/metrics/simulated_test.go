package metrics

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/pkg/kubelet/simulated"
)

func simNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sim-0"},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{ContainerRuntimeVersion: "skiff-simulated://1.0.0"}}}
}

func simPod(usage string, phase corev1.PodPhase, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Status: corev1.PodStatus{Phase: phase}}
	if usage != "" {
		p.Annotations = map[string]string{simulated.AnnotationUsage: usage}
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

// A running pod's usage is split over its containers, the remainder on the
// first; a node sums its running pods; other runtimes report nothing.
func TestSimulated(t *testing.T) {
	node := simNode()
	containers, at, ok := Simulated{}.PodUsage(node, simPod("cpu=250m,memory=3", corev1.PodRunning, "a", "b"))
	if !ok || at.Window != Window || !at.Timestamp.IsZero() || len(containers) != 2 {
		t.Fatalf("PodUsage = %v, %v, %v", containers, at, ok)
	}
	for i, want := range [][2]string{{"125m", "2"}, {"125m", "1"}} {
		u := containers[i].Usage
		if cpu, mem := u[corev1.ResourceCPU], u[corev1.ResourceMemory]; cpu.String() != want[0] || mem.String() != want[1] {
			t.Errorf("container %d: cpu %s memory %s, want %v", i, cpu.String(), mem.String(), want)
		}
	}
	if _, _, ok := (Simulated{}).PodUsage(node, simPod("cpu=1", corev1.PodPending, "a")); ok {
		t.Error("a pending pod reports usage")
	}
	// Without (or with a bad) annotation: zero.
	containers, _, _ = Simulated{}.PodUsage(node, simPod("cpu=lots", corev1.PodRunning, "a"))
	if cpu := containers[0].Usage[corev1.ResourceCPU]; !cpu.IsZero() {
		t.Errorf("bad annotation: cpu %s", cpu.String())
	}
	usage, _, ok := Simulated{}.NodeUsage(node, []*corev1.Pod{simPod("cpu=250m,memory=64Mi", corev1.PodRunning, "a"),
		simPod("cpu=1", corev1.PodSucceeded, "a"), simPod("memory=64Mi", corev1.PodRunning, "a")})
	if cpu, mem := usage[corev1.ResourceCPU], usage[corev1.ResourceMemory]; !ok || cpu.String() != "250m" || mem.String() != "128Mi" {
		t.Errorf("NodeUsage = %v, %v", usage, ok)
	}
	real := simNode()
	real.Status.NodeInfo.ContainerRuntimeVersion = "containerd://2.0.0"
	if _, _, ok := (Simulated{}).NodeUsage(real, nil); ok {
		t.Error("a containerd node reports simulated usage")
	}
}

// The table: Name, the resources of the first row sorted, Window; a
// pod's containers summed.
func TestTable(t *testing.T) {
	node := simNode()
	containers, _, _ := Simulated{}.PodUsage(node, simPod("cpu=250m,memory=64Mi", corev1.PodRunning, "a", "b"))
	list := &metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Containers: containers,
		Window: metav1.Duration{Duration: Window}}}}
	table, err := (&PodMetricsREST{}).ConvertToTable(context.Background(), list, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if got := []any{cols, table.Rows[0].Cells}; len(cols) != 4 || cols[1] != "cpu" || cols[2] != "memory" ||
		table.Rows[0].Cells[1] != "250m" || table.Rows[0].Cells[2] != "64Mi" || table.Rows[0].Cells[3] != "15s" {
		t.Errorf("table: %v", got)
	}
}
