package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// simPodsManifest are the pods of TestSimulatedPods, bound at creation
// (no scheduler yet), except "bound", bound through pods/binding.
const simPodsManifest = `
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: sim-0
  initContainers:
  - name: setup
    image: busybox
    resources: {requests: {cpu: 100m, memory: 16Mi}, limits: {cpu: 100m, memory: 16Mi}}
  containers:
  - name: app
    image: nginx:1.27
    resources: {requests: {cpu: 500m, memory: 64Mi}, limits: {cpu: 500m, memory: 64Mi}}
  - name: log
    image: busybox
    resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {cpu: 100m, memory: 32Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: unready
  annotations: {skiff.dev/sim-ready: "false"}
spec:
  nodeName: sim-0
  containers:
  - {name: a, image: busybox}
  - {name: b, image: busybox}
---
apiVersion: v1
kind: Pod
metadata:
  name: done
  annotations: {skiff.dev/sim-exit-after: 2s, skiff.dev/sim-exit-code: "0"}
spec:
  nodeName: sim-1
  restartPolicy: Never
  containers:
  - {name: job, image: busybox}
---
apiVersion: v1
kind: Pod
metadata:
  name: broken
  annotations: {skiff.dev/sim-exit-after: 2s, skiff.dev/sim-exit-code: "3"}
spec:
  nodeName: sim-1
  restartPolicy: Never
  containers:
  - {name: job, image: busybox}
---
apiVersion: v1
kind: Pod
metadata:
  name: crash
  annotations: {skiff.dev/sim-exit-after: 1s, skiff.dev/sim-exit-code: "1"}
spec:
  nodeName: sim-1
  containers:
  - {name: loop, image: busybox}
---
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  nodeName: sim-2
  containers:
  - name: big
    image: busybox
    resources: {requests: {cpu: "3"}}
---
apiVersion: v1
kind: Pod
metadata:
  name: odd
  annotations: {skiff.dev/sim-exit-after: soon}
spec:
  nodeName: sim-2
  containers:
  - {name: a, image: busybox}
---
apiVersion: v1
kind: Pod
metadata: {name: host}
spec:
  nodeName: sim-2
  hostNetwork: true
  containers:
  - {name: a, image: busybox}
---
apiVersion: v1
kind: Pod
metadata: {name: bound}
spec:
  # No scheduler serves it: the test binds it itself.
  schedulerName: bound-by-test
  containers:
  - {name: a, image: busybox}
---
apiVersion: v1
kind: Pod
metadata: {name: elsewhere}
spec:
  nodeName: not-simulated
  containers:
  - {name: a, image: busybox}
`

// TestSimulatedPods: pods bound to simulated nodes run as upstream's
// kubelet reports them, seen through stock kubectl: Running and Ready with
// its conditions, container statuses and an IP of the node's podCIDR;
// Running but not Ready; Succeeded and Failed after sim-exit-after;
// CrashLoopBackOff with a growing restartCount; rejected with OutOfcpu by
// the node; a Warning for a bad annotation; graceful deletion confirmed by
// the agent. All of it on one watch of pods for the agent.
func TestSimulatedPods(t *testing.T) {
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
	k := newKctl(t, resolveKubectl(t, paths[len(paths)-1]), srv)

	watchesBefore := podWatches(t, k)
	agentArgs := []string{"--simulate", "3", "--simulate-capacity", "cpu=2,memory=4Gi,pods=10",
		"--simulate-pod-cidr-from-node", "--simulate-start-delay", "500ms"}
	agent := startAgent(t, srv, agentArgs...)
	eventually(t, 20*time.Second, func() string {
		for i := range 3 {
			n, err := admin.CoreV1().Nodes().Get(ctx, fmt.Sprintf("sim-%d", i), metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if n.Spec.PodCIDR == "" {
				return n.Name + " has no podCIDR yet"
			}
		}
		return ""
	})

	k.okStdin(t, simPodsManifest, "apply", "-f", "-")
	if err := admin.CoreV1().Pods(k.ns).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Target: corev1.ObjectReference{Kind: "Node", Name: "sim-1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var web corev1.Pod
	eventually(t, 20*time.Second, func() string {
		web = corev1.Pod{}
		k.getJSON(t, &web, "pod", "web")
		if web.Status.Phase != corev1.PodRunning || condition(&web, corev1.PodReady) != "True" {
			return fmt.Sprintf("web: %s, Ready %s", web.Status.Phase, condition(&web, corev1.PodReady))
		}
		return ""
	})
	node0, err := admin.CoreV1().Nodes().Get(ctx, "sim-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkRunningPod(t, &web, node0)

	var unready corev1.Pod
	eventually(t, 20*time.Second, func() string {
		unready = corev1.Pod{}
		k.getJSON(t, &unready, "pod", "unready")
		want := "False ContainersNotReady containers with unready status: [a b]"
		if unready.Status.Phase != corev1.PodRunning || condition(&unready, corev1.PodReady) != want ||
			condition(&unready, corev1.ContainersReady) != want {
			return fmt.Sprintf("unready: %s, Ready %q, want Running and %q", unready.Status.Phase, condition(&unready, corev1.PodReady), want)
		}
		return ""
	})

	for name, want := range map[string]string{"done": "Succeeded 0 Completed", "broken": "Failed 3 Error"} {
		eventually(t, 30*time.Second, func() string {
			var p corev1.Pod
			k.getJSON(t, &p, "pod", name)
			got := string(p.Status.Phase)
			if len(p.Status.ContainerStatuses) == 1 {
				if term := p.Status.ContainerStatuses[0].State.Terminated; term != nil {
					got += fmt.Sprintf(" %d %s", term.ExitCode, term.Reason)
				}
			}
			if got != want {
				return fmt.Sprintf("%s: %q, want %q", name, got, want)
			}
			if r := condition(&p, corev1.PodReady); !strings.HasPrefix(r, "False Pod") {
				return fmt.Sprintf("%s: Ready %q, want False PodCompleted/PodFailed", name, r)
			}
			return ""
		})
	}

	// restartPolicy Always: restarted at once after the first exit, then
	// back-off 10s in CrashLoopBackOff, then again.
	eventually(t, 40*time.Second, func() string {
		var p corev1.Pod
		k.getJSON(t, &p, "pod", "crash")
		if len(p.Status.ContainerStatuses) != 1 {
			return "crash: no container status"
		}
		c := p.Status.ContainerStatuses[0]
		if c.RestartCount < 1 || c.State.Waiting == nil || c.State.Waiting.Reason != "CrashLoopBackOff" ||
			c.LastTerminationState.Terminated == nil || c.LastTerminationState.Terminated.ExitCode != 1 {
			return fmt.Sprintf("crash: restartCount %d, state %+v, lastState %+v", c.RestartCount, c.State, c.LastTerminationState)
		}
		if !strings.Contains(c.State.Waiting.Message, "back-off 10s restarting failed container=loop pod=crash_"+k.ns) {
			return "crash: waiting message " + c.State.Waiting.Message
		}
		if p.Status.Phase != corev1.PodRunning {
			return "crash: phase " + string(p.Status.Phase)
		}
		return ""
	})
	eventually(t, 40*time.Second, func() string {
		if got := k.jsonpath(t, "{.status.containerStatuses[0].restartCount}", "pod", "crash"); got < "2" || len(got) != 1 {
			return "crash: restartCount " + got + ", want 2 or more after the back-off"
		}
		return ""
	})
	if out := k.ok(t, "get", "pod", "crash", "--no-headers"); !strings.Contains(out, "CrashLoopBackOff") && !strings.Contains(out, "Running") && !strings.Contains(out, "Error") {
		t.Errorf("kubectl get pod crash: %s", out)
	}

	eventually(t, 20*time.Second, func() string {
		var p corev1.Pod
		k.getJSON(t, &p, "pod", "huge")
		want := "Failed OutOfcpu Pod was rejected: Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000"
		if got := strings.Join([]string{string(p.Status.Phase), p.Status.Reason, p.Status.Message}, " "); got != want {
			return fmt.Sprintf("huge: %q, want %q", got, want)
		}
		return ""
	})
	eventually(t, 20*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "involvedObject.name=huge", "-o", "jsonpath={range .items[*]}{.type} {.reason} {.source.component} {.source.host}{\"\\n\"}{end}")
		if !strings.Contains(out, "Warning OutOfcpu kubelet sim-2") {
			return "events of huge: " + out
		}
		out = k.ok(t, "get", "events", "--field-selector", "involvedObject.name=odd", "-o", "jsonpath={range .items[*]}{.type} {.reason} {.message}{\"\\n\"}{end}")
		if !strings.Contains(out, `Warning FailedSimulation annotation skiff.dev/sim-exit-after: "soon"`) {
			return "events of odd: " + out
		}
		return ""
	})
	eventually(t, 20*time.Second, func() string {
		for _, name := range []string{"odd", "bound", "host"} {
			if phase := k.jsonpath(t, "{.status.phase}", "pod", name); phase != "Running" {
				return name + ": " + phase
			}
		}
		return ""
	})
	node2, err := admin.CoreV1().Nodes().Get(ctx, "sim-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ip := k.jsonpath(t, "{.status.podIP}", "pod", "host"); ip != node2.Status.Addresses[0].Address {
		t.Errorf("hostNetwork pod IP %s, want the node's %s", ip, node2.Status.Addresses[0].Address)
	}
	var bound corev1.Pod
	k.getJSON(t, &bound, "pod", "bound")
	node1, err := admin.CoreV1().Nodes().Get(ctx, "sim-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !inCIDR(bound.Status.PodIP, node1.Spec.PodCIDR) {
		t.Errorf("bound pod IP %s not in sim-1's podCIDR %s", bound.Status.PodIP, node1.Spec.PodCIDR)
	}
	// Two live pods of a node never share an IP.
	ips := map[string]string{}
	for _, name := range []string{"web", "unready"} {
		ip := k.jsonpath(t, "{.status.podIP}", "pod", name)
		if other, ok := ips[ip]; ok || ip == "" {
			t.Errorf("pods %s and %s share IP %q", name, other, ip)
		}
		ips[ip] = name
	}

	// A pod of a node the agent does not run is left alone.
	var elsewhere corev1.Pod
	k.getJSON(t, &elsewhere, "pod", "elsewhere")
	if elsewhere.Status.Phase != corev1.PodPending || len(elsewhere.Status.ContainerStatuses) > 0 || elsewhere.Status.PodIP != "" {
		t.Errorf("pod of another node touched: %+v", elsewhere.Status)
	}

	// Graceful deletion: kubectl delete waits for the pod to be gone, which
	// takes the agent's confirming DELETE (the grace period is 30s).
	started := time.Now()
	k.ok(t, "delete", "pod", "web", "--timeout=25s")
	if out := k.run("get", "pod", "web"); !strings.Contains(out.combined(), `pods "web" not found`) {
		t.Errorf("after delete: %s", out.combined())
	}
	t.Logf("graceful delete confirmed after %s", time.Since(started).Round(time.Millisecond))

	// One watch of pods for three nodes: killing the agent closes exactly
	// one. Counted against the server's own count at that moment, since the
	// control plane's watches are not all open when the test starts and the
	// one of `kubectl delete --wait` above may linger a moment.
	withAgent := stableWatches(t, k)
	if withAgent <= watchesBefore {
		t.Errorf("pod watches went from %d to %d with the agent running, want more", watchesBefore, withAgent)
	}
	// Killed and started again, the agent finds its pods as they were (a
	// kubelet finds its containers in the runtime): same container IDs,
	// IP and start time, no restart; and runs new pods.
	before := unready.Status
	_ = agent.cmd.Process.Kill()
	<-agent.exited
	eventually(t, 10*time.Second, func() string {
		if now := podWatches(t, k); withAgent-now != 1 {
			return fmt.Sprintf("pod watches went from %d to %d when the agent of three nodes was killed, want one fewer", withAgent, now)
		}
		return ""
	})
	startAgent(t, srv, agentArgs...)
	k.okStdin(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: after}\nspec:\n  nodeName: sim-0\n  containers:\n  - {name: a, image: busybox}\n", "apply", "-f", "-")
	eventually(t, 20*time.Second, func() string {
		if phase := k.jsonpath(t, "{.status.phase}", "pod", "after"); phase != "Running" {
			return "pod after the restart: " + phase
		}
		return ""
	})
	var again corev1.Pod
	k.getJSON(t, &again, "pod", "unready")
	if again.Status.PodIP != before.PodIP || !again.Status.StartTime.Equal(before.StartTime) ||
		again.Status.ContainerStatuses[0].ContainerID != before.ContainerStatuses[0].ContainerID ||
		again.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("after the agent's restart: %+v\nbefore: %+v", again.Status, before)
	}
	if ip := k.jsonpath(t, "{.status.podIP}", "pod", "after"); ip == before.PodIP {
		t.Errorf("new pod got the IP %s of a running pod", ip)
	}
}

var podWatchRE = regexp.MustCompile(`(?m)^apiserver_longrunning_requests\{([^}]*)\} (\d+)`)

// stableWatches is podWatches once two reads a second apart agree.
func stableWatches(t *testing.T, k *kctl) int {
	t.Helper()
	last := podWatches(t, k)
	for i := 0; i < 15; i++ {
		time.Sleep(time.Second)
		now := podWatches(t, k)
		if now == last {
			return now
		}
		last = now
	}
	t.Fatalf("pod watch count did not settle (last %d)", last)
	return last
}

// podWatches is the API server's count of open watches of pods.
func podWatches(t *testing.T, k *kctl) int {
	t.Helper()
	out := k.ok(t, "get", "--raw", "/metrics")
	n, found := 0, false
	for _, m := range podWatchRE.FindAllStringSubmatch(out, -1) {
		if strings.Contains(m[1], `resource="pods"`) && strings.Contains(m[1], `verb="WATCH"`) && strings.Contains(m[1], `subresource=""`) {
			v, _ := strconv.Atoi(m[2])
			n += v
			found = true
		}
	}
	if !found && !strings.Contains(out, "apiserver_longrunning_requests") {
		t.Fatalf("no apiserver_longrunning_requests in /metrics")
	}
	return n
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) string {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return strings.TrimSpace(string(c.Status) + " " + c.Reason + " " + c.Message)
		}
	}
	return "missing"
}

func inCIDR(ip, cidr string) bool {
	a, err1 := netip.ParseAddr(ip)
	p, err2 := netip.ParsePrefix(cidr)
	return err1 == nil && err2 == nil && p.Contains(a)
}

// checkRunningPod checks the status upstream's kubelet reports for a
// running pod with an init container and two containers.
func checkRunningPod(t *testing.T, p *corev1.Pod, node *corev1.Node) {
	t.Helper()
	dump, _ := json.MarshalIndent(p.Status, "", " ")
	var types []string
	for _, c := range p.Status.Conditions {
		types = append(types, string(c.Type)+"="+string(c.Status))
		if c.LastTransitionTime.IsZero() {
			t.Errorf("condition %s without lastTransitionTime", c.Type)
		}
	}
	if got := strings.Join(types, ","); got != "PodReadyToStartContainers=True,Initialized=True,Ready=True,ContainersReady=True,PodScheduled=True" {
		t.Errorf("conditions %s", got)
	}
	if p.Status.QOSClass != corev1.PodQOSGuaranteed || p.Status.StartTime == nil || p.Status.ObservedGeneration != p.Generation {
		t.Errorf("qosClass %s, startTime %v, observedGeneration %d", p.Status.QOSClass, p.Status.StartTime, p.Status.ObservedGeneration)
	}
	if p.Status.HostIP != node.Status.Addresses[0].Address || len(p.Status.HostIPs) != 1 {
		t.Errorf("hostIP %s %v, want the node's %s", p.Status.HostIP, p.Status.HostIPs, node.Status.Addresses[0].Address)
	}
	if !inCIDR(p.Status.PodIP, node.Spec.PodCIDR) || len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP {
		t.Errorf("podIP %s %v not in the node's podCIDR %s", p.Status.PodIP, p.Status.PodIPs, node.Spec.PodCIDR)
	}
	if len(p.Status.InitContainerStatuses) != 1 {
		t.Fatalf("initContainerStatuses: %s", dump)
	}
	ic := p.Status.InitContainerStatuses[0]
	if term := ic.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" || !ic.Ready || term.FinishedAt.IsZero() ||
		!strings.HasPrefix(term.ContainerID, "skiff-simulated://") {
		t.Errorf("init container: %s", dump)
	}
	if len(p.Status.ContainerStatuses) != 2 {
		t.Fatalf("containerStatuses: %s", dump)
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil || !c.Ready || c.Started == nil || !*c.Started || c.RestartCount != 0 ||
			!strings.HasPrefix(c.ContainerID, "skiff-simulated://") || !strings.Contains(c.ImageID, "@sha256:") || c.Image == "" {
			t.Errorf("container %s: %s", c.Name, dump)
		}
	}
	if app := p.Status.ContainerStatuses[0]; app.Name != "app" || app.Image != "nginx:1.27" {
		t.Errorf("first container %s %s, want app nginx:1.27", app.Name, app.Image)
	}
}

// TestSimulatedPodsAtScale runs SKIFF_SIM_SCALE=NODESxPODS (e.g.
// 1000x30) pods on simulated nodes of one agent and reports the agent's
// RSS and CPU while they start and once they all run. Skipped unless set:
// it takes minutes. It fails if not every pod is Running within 20min.
func TestSimulatedPodsAtScale(t *testing.T) {
	spec := os.Getenv("SKIFF_SIM_SCALE")
	if spec == "" {
		t.Skip("SKIFF_SIM_SCALE=NODESxPODS is not set")
	}
	var nodes, perNode int
	if _, err := fmt.Sscanf(spec, "%dx%d", &nodes, &perNode); err != nil || nodes <= 0 || perNode <= 0 {
		t.Fatalf("SKIFF_SIM_SCALE=%q: want NODESxPODS", spec)
	}
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	cfg, err := srv.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	ns := "scale"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// One watch counts the Running pods: polling lists of thousands of
	// pods would load the server more than the agent does.
	var running atomic.Int64
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	seen := map[string]bool{}
	var seenMu sync.Mutex
	count := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.Status.Phase == corev1.PodRunning {
			seenMu.Lock()
			if !seen[p.Name] {
				seen[p.Name] = true
				running.Add(1)
			}
			seenMu.Unlock()
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: count, UpdateFunc: func(_, obj any) { count(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	waitFor := func(timeout time.Duration, done func() string) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			msg := done()
			if msg == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s: %s", timeout, msg)
			}
			time.Sleep(2 * time.Second)
		}
	}

	started := time.Now()
	agent := startAgent(t, srv, "--simulate", strconv.Itoa(nodes))
	pid := agent.cmd.Process.Pid
	waitFor(10*time.Minute, func() string {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err.Error()
		}
		if len(list.Items) < nodes {
			return fmt.Sprintf("%d of %d nodes", len(list.Items), nodes)
		}
		return ""
	})
	t.Logf("%d nodes registered after %s; agent %s", nodes, time.Since(started).Round(time.Second), procUsage(t, pid))

	started = time.Now()
	cpuBefore := procCPU(t, pid)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i)},
					Spec: corev1.PodSpec{NodeName: fmt.Sprintf("sim-%d", i%nodes), Containers: []corev1.Container{{Name: "c", Image: "busybox",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}}},
				}
				if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	for i := range nodes * perNode {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d pod creates failed", n)
	}
	t.Logf("%d pods created in %s, %d Running; agent %s", nodes*perNode, time.Since(started).Round(time.Second), running.Load(), procUsage(t, pid))
	waitFor(20*time.Minute, func() string {
		if n := running.Load(); n < int64(nodes*perNode) {
			return fmt.Sprintf("%d of %d pods Running", n, nodes*perNode)
		}
		return ""
	})
	busy := procCPU(t, pid) - cpuBefore
	elapsed := time.Since(started)
	t.Logf("all %d pods Running %s after the first create; agent used %.1f CPU-seconds (%.0f%% of one core); %s",
		nodes*perNode, elapsed.Round(time.Second), busy.Seconds(), 100*busy.Seconds()/elapsed.Seconds(), procUsage(t, pid))
	idleFrom, requestsFrom := procCPU(t, pid), agentRequests(t, client)
	const window = 60 * time.Second
	time.Sleep(window)
	idle := procCPU(t, pid) - idleFrom
	requests := agentRequests(t, client) - requestsFrom
	t.Logf("steady state (%d nodes, %d pods): %.1f%% of one core, %.2f requests/s per node (leases, node and pod status); %s",
		nodes, nodes*perNode, 100*idle.Seconds()/window.Seconds(), requests/window.Seconds()/float64(nodes), procUsage(t, pid))
}

// agentRequests counts the writes an agent makes: Lease updates, node and
// pod status patches, from the API server's apiserver_request_total.
func agentRequests(t *testing.T, client kubernetes.Interface) float64 {
	t.Helper()
	data, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		if (strings.Contains(line, `resource="leases"`) && strings.Contains(line, `verb="PUT"`)) ||
			(strings.Contains(line, `subresource="status"`) && strings.Contains(line, `verb="PATCH"`) &&
				(strings.Contains(line, `resource="pods"`) || strings.Contains(line, `resource="nodes"`))) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return n
}

// procCPU is the process's user+system CPU time.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime is the 12th,
	// stime the 13th (in clock ticks, 100 per second on Linux).
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procUsage is the process's resident and peak memory.
func procUsage(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(parts, ", ")
}
