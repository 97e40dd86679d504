package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/test/harness"
)

// hpaDeployment is a Deployment whose simulated pods each use 300m CPU of
// a 200m request (150%) and 64Mi.
const hpaDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {skiff.dev/sim-usage: "cpu=300m,memory=64Mi"}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: 200m}}
`

// TestHorizontalPodAutoscaler: with stock kubectl against skiff server
// (HPA sync every 5s) and two simulated nodes, `kubectl top pods/nodes`
// show the simulated usage; `kubectl autoscale --cpu-percent=50 --min=1
// --max=5` over a Deployment using 150% of its request scales it up, with
// upstream's SuccessfulRescale event, conditions and TARGETS column, to
// its maximum (ScalingLimited TooManyReplicas); autoscaling/v1 shows the
// same HPA with its CPU target and current utilization.
func TestHorizontalPodAutoscaler(t *testing.T) {
	bin := firstKubectl(t)
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Dir: t.TempDir(),
		Args: []string{"--horizontal-pod-autoscaler-sync-period=5s"}})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	if err := checkReady(srv, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	agent := startAgent(t, srv, "--simulate", "2")
	defer agent.stop(t)
	k := newKctl(t, bin, srv)

	k.okStdin(t, hpaDeployment, "apply", "-f", "-")
	pollEverySecond(t, 60*time.Second, func() string {
		out := k.run("top", "pods", "--no-headers")
		if f := strings.Fields(out.stdout); len(f) != 3 || !strings.HasPrefix(f[0], "web-") || f[1] != "300m" || f[2] != "64Mi" {
			return "kubectl top pods: " + out.combined()
		}
		return ""
	})
	top := k.ok(t, "top", "pods")
	assertHeaders(t, top, "NAME CPU(cores) MEMORY(bytes)")
	nodes := k.ok(t, "top", "nodes")
	// kubectl 1.27 prints CPU% and MEMORY%, newer ones CPU(%) and MEMORY(%).
	if h := tableHeaders(nodes); len(h) != 1 || !strings.HasPrefix(h[0], "NAME CPU(cores) CPU") || !strings.Contains(h[0], " MEMORY(bytes) MEMORY") {
		t.Errorf("kubectl top nodes headers %q", h)
	}
	if tableRow(nodes, "sim-0") == nil || tableRow(nodes, "sim-1") == nil {
		t.Errorf("kubectl top nodes lists no sim-0 and sim-1:\n%s", nodes)
	}
	if !strings.Contains(nodes, "300m") {
		t.Errorf("no node uses the pod's 300m:\n%s", nodes)
	}

	k.ok(t, "autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=5")
	hpa := k.ok(t, "get", "hpa", "web")
	assertHeaders(t, hpa, "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE")
	if row := tableRow(hpa, "web"); len(row) < 3 || row[1] != "Deployment/web" {
		t.Errorf("kubectl get hpa:\n%s", hpa)
	}

	// 1 -> 3 (ratio 3, at most max(2x, 4)), then 5 once the new pods were
	// measured a window (15s) after becoming ready.
	pollEverySecond(t, 90*time.Second, func() string {
		if n := k.jsonpath(t, "{.spec.replicas}", "deployment", "web"); n != "5" {
			return "deployment replicas " + n
		}
		return ""
	})
	pollEverySecond(t, 30*time.Second, func() string {
		row := tableRow(k.ok(t, "get", "hpa", "web"), "web")
		if want := []string{"web", "Deployment/web", "cpu:", "150%/50%", "1", "5", "5"}; strings.Join(row[:min(len(row), 7)], " ") != strings.Join(want, " ") {
			return fmt.Sprintf("hpa row %q, want %q", row, want)
		}
		return ""
	})

	var got struct {
		Status struct {
			Conditions []struct{ Type, Status, Reason, Message string }
		}
	}
	k.getJSON(t, &got, "hpa", "web")
	want := map[string]string{
		"AbleToScale":    "True ",
		"ScalingActive":  "True ValidMetricFound the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
		"ScalingLimited": "True TooManyReplicas the desired replica count is more than the maximum replica count",
	}
	for _, c := range got.Status.Conditions {
		w, ok := want[c.Type]
		if !ok {
			continue
		}
		delete(want, c.Type)
		if line := c.Status + " " + c.Reason + " " + c.Message; !strings.HasPrefix(line, w) {
			t.Errorf("condition %s: %q, want %q", c.Type, line, w)
		}
	}
	for typ := range want {
		t.Errorf("no %s condition in %+v", typ, got.Status.Conditions)
	}

	var events struct {
		Items []struct {
			Reason, Message string
			Source          struct{ Component string }
			InvolvedObject  struct{ Kind, Name string }
		}
	}
	k.getJSON(t, &events, "events")
	var rescales []string
	for _, e := range events.Items {
		if e.Reason == "SuccessfulRescale" && e.InvolvedObject.Kind == "HorizontalPodAutoscaler" && e.InvolvedObject.Name == "web" {
			rescales = append(rescales, e.Source.Component+": "+e.Message)
		}
	}
	assertContains(t, strings.Join(rescales, "\n"), "horizontal-pod-autoscaler: New size: 3; reason: cpu resource utilization (percentage of request) above target",
		"horizontal-pod-autoscaler: New size: 5; reason: cpu resource utilization (percentage of request) above target")

	// autoscaling/v1: the CPU target and current utilization.
	var v1 struct {
		Spec   struct{ TargetCPUUtilizationPercentage int }
		Status struct{ CurrentCPUUtilizationPercentage, CurrentReplicas int }
	}
	raw := k.ok(t, "get", "--raw", "/apis/autoscaling/v1/namespaces/"+k.ns+"/horizontalpodautoscalers/web")
	if err := json.Unmarshal([]byte(raw), &v1); err != nil {
		t.Fatal(err)
	}
	if v1.Spec.TargetCPUUtilizationPercentage != 50 || v1.Status.CurrentCPUUtilizationPercentage != 150 || v1.Status.CurrentReplicas != 5 {
		t.Errorf("autoscaling/v1 HPA: %s", raw)
	}
}

// pollEverySecond retries f (what is still wrong, or "") every second for timeout.
func pollEverySecond(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problem := f()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, problem)
		}
		time.Sleep(time.Second)
	}
}
