package eviction

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

const (
	mi = int64(1) << 20
	gi = int64(1) << 30
)

// node is what the fake summary reports.
type node struct {
	memAvailable, memWorkingSet int64
	nodeFsAvailable, nodeFsCap  int64
	nodeInodesFree, nodeInodes  int64
	imageFsAvailable, imageCap  int64
	procs, maxPID               int64
	pods                        map[types.UID]*podUse
}

type podUse struct {
	name       string
	containers map[string]containerUse
}

type containerUse struct {
	workingSet, rootfs, logs int64
}

func healthy() *node {
	return &node{
		memAvailable: 4 * gi, memWorkingSet: 4 * gi,
		nodeFsAvailable: 50 * gi, nodeFsCap: 100 * gi, nodeInodesFree: 500_000, nodeInodes: 1_000_000,
		imageFsAvailable: 50 * gi, imageCap: 100 * gi, procs: 100, maxPID: 32768,
		pods: map[types.UID]*podUse{},
	}
}

func u64(v int64) *uint64 { return ptr.To(uint64(v)) }

func (n *node) summary(now time.Time) *statsapi.Summary {
	ts := metav1.NewTime(now)
	fs := func(avail, capacity, free, inodes int64) *statsapi.FsStats {
		return &statsapi.FsStats{Time: ts, AvailableBytes: u64(avail), CapacityBytes: u64(capacity),
			UsedBytes: u64(capacity - avail), InodesFree: u64(free), Inodes: u64(inodes), InodesUsed: u64(inodes - free)}
	}
	s := &statsapi.Summary{Node: statsapi.NodeStats{
		NodeName: "node-1",
		Memory:   &statsapi.MemoryStats{Time: ts, AvailableBytes: u64(n.memAvailable), WorkingSetBytes: u64(n.memWorkingSet)},
		Fs:       fs(n.nodeFsAvailable, n.nodeFsCap, n.nodeInodesFree, n.nodeInodes),
		Runtime:  &statsapi.RuntimeStats{ImageFs: fs(n.imageFsAvailable, n.imageCap, 400_000, 1_000_000)},
		Rlimit:   &statsapi.RlimitStats{Time: ts, MaxPID: ptr.To(n.maxPID), NumOfRunningProcesses: ptr.To(n.procs)},
	}}
	for uid, p := range n.pods {
		ps := statsapi.PodStats{PodRef: statsapi.PodReference{Name: p.name, Namespace: "default", UID: string(uid)}}
		var ws int64
		for name, c := range p.containers {
			ws += c.workingSet
			ps.Containers = append(ps.Containers, statsapi.ContainerStats{Name: name,
				Memory: &statsapi.MemoryStats{Time: ts, WorkingSetBytes: u64(c.workingSet)},
				Rootfs: &statsapi.FsStats{Time: ts, UsedBytes: u64(c.rootfs), InodesUsed: u64(c.rootfs / 4096)},
				Logs:   &statsapi.FsStats{Time: ts, UsedBytes: u64(c.logs), InodesUsed: u64(1)},
			})
		}
		ps.Memory = &statsapi.MemoryStats{Time: ts, WorkingSetBytes: u64(ws)}
		s.Pods = append(s.Pods, ps)
	}
	return s
}

// events records the events, with their annotations.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) Event(o runtime.Object, eventType, reason, message string) {
	e.AnnotatedEventf(o, nil, eventType, reason, "%s", message)
}

func (e *events) Eventf(o runtime.Object, eventType, reason, format string, args ...any) {
	e.AnnotatedEventf(o, nil, eventType, reason, format, args...)
}

func (e *events) AnnotatedEventf(o runtime.Object, annotations map[string]string, eventType, reason, format string, args ...any) {
	name := ""
	switch v := o.(type) {
	case *corev1.ObjectReference:
		name = v.Kind + "/" + v.Name
	case *corev1.Pod:
		name = "Pod/" + v.Name
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := fmt.Sprintf("%s %s %s %s", name, eventType, reason, fmt.Sprintf(format, args...))
	if len(annotations) > 0 {
		s += fmt.Sprintf(" %v", annotations)
	}
	e.list = append(e.list, s)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

type harness struct {
	t       *testing.T
	m       *Manager
	clock   *testingclock.FakeClock
	client  *fake.Clientset
	events  *events
	node    *node
	pods    []*corev1.Pod
	volumes map[types.UID]map[string]int64

	mu    sync.Mutex
	kills []string
}

func newHarness(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: testingclock.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		client: fake.NewClientset(), events: &events{}, node: healthy(), volumes: map[types.UID]map[string]int64{}}
	cfg := Config{
		NodeName: "node-1",
		Summary:  func(context.Context) (*statsapi.Summary, error) { return h.node.summary(h.clock.Now()), nil },
		VolumeUsage: func(uid types.UID) map[string]int64 {
			return h.volumes[uid]
		},
		Pods: func() []*corev1.Pod {
			var out []*corev1.Pod
			for _, p := range h.pods {
				cur, err := h.client.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
				if err == nil {
					out = append(out, cur)
				}
			}
			return out
		},
		Kill: func(_ context.Context, pod *corev1.Pod, grace time.Duration) (bool, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.kills = append(h.kills, fmt.Sprintf("%s/%s", pod.Name, grace))
			return true, nil
		},
		Client: h.client, Recorder: h.events, Clock: h.clock,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// addPod creates the pod in the API and its usage in the summary.
func (h *harness) addPod(pod *corev1.Pod, use map[string]containerUse) *corev1.Pod {
	h.t.Helper()
	if pod.UID == "" {
		pod.UID = types.UID("uid-" + pod.Name)
	}
	pod.Namespace = "default"
	pod.Spec.NodeName = "node-1"
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	created, err := h.client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.pods = append(h.pods, created)
	if use != nil {
		h.node.pods[pod.UID] = &podUse{name: pod.Name, containers: use}
	}
	return created
}

func (h *harness) sync() []string {
	h.t.Helper()
	var names []string
	for _, p := range h.m.synchronize(context.Background()) {
		names = append(names, p.Name)
	}
	return names
}

func (h *harness) pod(name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) killed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.kills...)
}

// pod is a pod of containers named c0, c1... with these requests and
// limits ("cpu=100m,memory=1Gi").
func newPod(name string, priority int32, resources ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Priority: ptr.To(priority)}}
	for i, r := range resources {
		c := corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "busybox"}
		if r != "" {
			req, lim := parts(r)
			c.Resources = corev1.ResourceRequirements{Requests: req, Limits: lim}
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	return p
}

// parts parses "requests/limits", each "memory=1Gi,ephemeral-storage=1Mi".
func parts(s string) (corev1.ResourceList, corev1.ResourceList) {
	list := func(s string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for _, kv := range strings.Split(s, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				l[corev1.ResourceName(k)] = resource.MustParse(v)
			}
		}
		return l
	}
	req, lim, _ := strings.Cut(s, "/")
	return list(req), list(lim)
}

func TestPressureConditionsAndTransitionPeriod(t *testing.T) {
	h := newHarness(t, nil)
	if p := h.m.Pressure(); p.Memory || p.Disk || p.PID {
		t.Fatalf("pressure before any reading: %+v", p)
	}
	h.sync()
	if p := h.m.Pressure(); p.Memory || p.Disk || p.PID {
		t.Fatalf("pressure on a healthy node: %+v", p)
	}
	// 80Mi available: below 100Mi.
	h.node.memAvailable = 80 * mi
	h.sync()
	if p := h.m.Pressure(); !p.Memory || p.Disk {
		t.Fatalf("80Mi available: %+v, want memory pressure only", p)
	}
	// Recovered: the condition holds for the transition period after the
	// last crossing.
	h.node.memAvailable = 2 * gi
	h.clock.Step(4*time.Minute + 59*time.Second)
	h.sync()
	if !h.m.Pressure().Memory {
		t.Fatal("memory pressure ended before the transition period")
	}
	h.clock.Step(time.Second)
	h.sync()
	if h.m.Pressure().Memory {
		t.Fatal("memory pressure still reported after the 5 min transition period")
	}

	// nodefs below 10%, imagefs below 15%, inodes below 5%: disk pressure.
	for _, tc := range []struct {
		name string
		set  func(*node)
	}{
		{"nodefs.available", func(n *node) { n.nodeFsAvailable = 9 * gi }},
		{"imagefs.available", func(n *node) { n.imageFsAvailable = 14 * gi }},
		{"nodefs.inodesFree", func(n *node) { n.nodeInodesFree = 49_999 }},
	} {
		h.node = healthy()
		tc.set(h.node)
		h.clock.Step(10 * time.Minute)
		h.sync()
		if p := h.m.Pressure(); !p.Disk || p.Memory {
			t.Errorf("%s crossed: %+v, want disk pressure only", tc.name, p)
		}
	}
	// Just above the thresholds: nothing after the transition period.
	h.node = healthy()
	h.node.nodeFsAvailable, h.node.imageFsAvailable, h.node.memAvailable = 10*gi+mi, 15*gi+mi, 100*mi
	h.clock.Step(10 * time.Minute)
	h.sync()
	if p := h.m.Pressure(); p.Disk || p.Memory {
		t.Errorf("at the thresholds (not below): %+v", p)
	}
}

func TestPIDPressureNeedsAThreshold(t *testing.T) {
	h := newHarness(t, nil)
	h.node.procs = h.node.maxPID - 10
	h.sync()
	if h.m.Pressure().PID {
		t.Fatal("PID pressure with upstream's defaults, which have no pid.available threshold")
	}
	th, err := ParseThresholds(map[string]string{"pid.available": "10%"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h = newHarness(t, func(c *Config) { c.Thresholds = th })
	h.node.procs = h.node.maxPID - 3000
	h.sync()
	if !h.m.Pressure().PID {
		t.Fatal("no PID pressure with 3000 of 32768 pids left and pid.available<10%")
	}
}

func TestMemoryEviction(t *testing.T) {
	h := newHarness(t, nil)
	h.addPod(newPod("guaranteed", 0, "memory=600Mi/memory=600Mi"), map[string]containerUse{"c0": {workingSet: 500 * mi}})
	h.addPod(newPod("besteffort", 0, ""), map[string]containerUse{"c0": {workingSet: 500 * mi}})
	h.addPod(newPod("small", 0, ""), map[string]containerUse{"c0": {workingSet: 10 * mi}})
	h.node.memAvailable = 80 * mi
	if got := h.sync(); fmt.Sprint(got) != "[besteffort]" {
		t.Fatalf("evicted %v, want [besteffort]", got)
	}
	p := h.pod("besteffort")
	want := "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container c0 was using 500Mi, request is 0, has larger consumption of memory. "
	if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" || p.Status.Message != want {
		t.Errorf("status %s %s %q, want Failed Evicted %q", p.Status.Phase, p.Status.Reason, p.Status.Message, want)
	}
	conds := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range p.Status.Conditions {
		conds[c.Type] = c
	}
	if c := conds[corev1.DisruptionTarget]; c.Status != corev1.ConditionTrue || c.Reason != "TerminationByKubelet" || c.Message != want {
		t.Errorf("DisruptionTarget condition %+v", c)
	}
	if c := conds[corev1.PodReady]; c.Status != corev1.ConditionFalse || c.Reason != "PodFailed" {
		t.Errorf("Ready condition %+v, want False PodFailed", c)
	}
	if c := conds[corev1.PodScheduled]; c.Status != corev1.ConditionTrue {
		t.Errorf("PodScheduled condition lost: %+v", conds)
	}
	if got := h.killed(); fmt.Sprint(got) != "[besteffort/1s]" {
		t.Errorf("kills %v, want [besteffort/1s] (hard threshold: 1 s as upstream)", got)
	}
	ev := h.events.all()
	wantEvents := []string{
		"Node/node-1 Warning EvictionThresholdMet Attempting to reclaim memory",
		"Pod/besteffort Warning Evicted " + want + " map[offending_containers:c0 offending_containers_usage:500Mi starved_resource:memory]",
	}
	if fmt.Sprint(ev) != fmt.Sprint(wantEvents) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev, "\n"), strings.Join(wantEvents, "\n"))
	}
	for _, name := range []string{"guaranteed", "small"} {
		if p := h.pod(name); p.Status.Phase != corev1.PodRunning {
			t.Errorf("%s evicted too: %s", name, p.Status.Phase)
		}
	}

	// One pod per interval: the next sync (the evicted one is Failed now)
	// takes the next in line only.
	h.clock.Step(10 * time.Second)
	if got := h.sync(); fmt.Sprint(got) != "[small]" {
		t.Fatalf("second eviction %v, want [small] (exceeds its zero request)", got)
	}
	// Once the memory is back, nothing more goes.
	h.node.memAvailable = gi
	h.clock.Step(10 * time.Second)
	if got := h.sync(); len(got) != 0 {
		t.Fatalf("evicted %v without pressure", got)
	}
	if h.pod("guaranteed").Status.Phase != corev1.PodRunning {
		t.Error("guaranteed pod evicted")
	}
}

func TestRankMemory(t *testing.T) {
	h := newHarness(t, nil)
	// Over requests first, then lower priority, then more above request.
	h.addPod(newPod("within-request", -10, "memory=1Gi"), map[string]containerUse{"c0": {workingSet: 900 * mi}})
	h.addPod(newPod("over-high-prio", 1000, "memory=100Mi"), map[string]containerUse{"c0": {workingSet: 900 * mi}})
	h.addPod(newPod("over-low-prio-small", 0, "memory=100Mi"), map[string]containerUse{"c0": {workingSet: 150 * mi}})
	h.addPod(newPod("over-low-prio-big", 0, "memory=100Mi"), map[string]containerUse{"c0": {workingSet: 300 * mi}})
	h.addPod(newPod("no-stats", 2000, ""), nil)
	pods := h.m.cfg.Pods()
	rankMemory(pods, podUsage(h.node.summary(h.clock.Now()), nil))
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := "[no-stats over-low-prio-big over-low-prio-small over-high-prio within-request]"
	if fmt.Sprint(got) != want {
		t.Errorf("rank %v, want %s", got, want)
	}
}

func TestRankDisk(t *testing.T) {
	h := newHarness(t, nil)
	withVolume := newPod("emptydir", 0, "")
	withVolume.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "ram", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
	withVolume = h.addPod(withVolume, map[string]containerUse{"c0": {rootfs: mi, logs: mi}})
	h.volumes[withVolume.UID] = map[string]int64{"scratch": 300 * mi, "ram": 900 * mi}
	h.addPod(newPod("logs", 0, ""), map[string]containerUse{"c0": {rootfs: mi, logs: 200 * mi}})
	h.addPod(newPod("rootfs", 0, ""), map[string]containerUse{"c0": {rootfs: 250 * mi}})
	h.addPod(newPod("requested", 0, "ephemeral-storage=1Gi"), map[string]containerUse{"c0": {rootfs: 900 * mi}})
	u := podUsage(h.node.summary(h.clock.Now()), h.m.cfg.VolumeUsage)
	order := func(rankFor func([]*corev1.Pod, usage)) string {
		pods := h.m.cfg.Pods()
		rankFor(pods, u)
		var names []string
		for _, p := range pods {
			names = append(names, p.Name)
		}
		return fmt.Sprint(names)
	}
	// One filesystem: writable layers, logs and disk emptyDirs count (not
	// the memory-backed one); the pod within its request goes last.
	if got, want := order(rankers(false)[SignalNodeFsAvailable]), "[emptydir rootfs logs requested]"; got != want {
		t.Errorf("nodefs rank %s, want %s", got, want)
	}
	// A dedicated imagefs: nodefs counts logs and volumes, imagefs the
	// writable layers.
	if got, want := order(rankers(true)[SignalNodeFsAvailable]), "[emptydir logs rootfs requested]"; got != want {
		t.Errorf("nodefs rank with an imagefs %s, want %s", got, want)
	}
	if got, want := order(rankers(true)[SignalImageFsAvailable]), "[rootfs emptydir logs requested]"; got != want {
		t.Errorf("imagefs rank %s, want %s", got, want)
	}
}

func TestDiskEvictionMessage(t *testing.T) {
	h := newHarness(t, nil)
	h.addPod(newPod("writer", 0, "ephemeral-storage=10Mi"), map[string]containerUse{"c0": {rootfs: 40 * mi, logs: 10 * mi}})
	h.node.nodeFsAvailable = 5 * gi
	if got := h.sync(); fmt.Sprint(got) != "[writer]" {
		t.Fatalf("evicted %v", got)
	}
	// 10% as upstream computes it, in float32: not quite 10Gi.
	want := "The node was low on resource: ephemeral-storage. Threshold quantity: 10737418400, available: 5Gi. Container c0 was using 50Mi, request is 10Mi, has larger consumption of ephemeral-storage. "
	if m := h.pod("writer").Status.Message; m != want {
		t.Errorf("message %q, want %q", m, want)
	}
	if ev := h.events.all(); len(ev) == 0 || ev[0] != "Node/node-1 Warning EvictionThresholdMet Attempting to reclaim ephemeral-storage" {
		t.Errorf("events %v", ev)
	}
}

func TestReclaimBeforeEvicting(t *testing.T) {
	reclaims := 0
	var h *harness
	h = newHarness(t, func(c *Config) {
		c.Reclaim = func(context.Context) error {
			reclaims++
			h.node.imageFsAvailable = 30 * gi
			return nil
		}
	})
	h.addPod(newPod("a", 0, ""), map[string]containerUse{"c0": {rootfs: gi}})
	h.node.imageFsAvailable = 10 * gi
	if got := h.sync(); len(got) != 0 {
		t.Fatalf("evicted %v though reclaiming images freed enough", got)
	}
	if reclaims != 1 {
		t.Fatalf("reclaimed %d times", reclaims)
	}
	// Memory is not reclaimed that way.
	h.node.memAvailable = 10 * mi
	h.clock.Step(10 * time.Second)
	if got := h.sync(); fmt.Sprint(got) != "[a]" {
		t.Fatalf("memory: evicted %v", got)
	}
	if reclaims != 1 {
		t.Errorf("reclaimed for memory")
	}
}

func TestSoftThresholdGracePeriod(t *testing.T) {
	th, err := ParseThresholds(nil, map[string]string{"memory.available": "1Gi"}, map[string]string{"memory.available": "1m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Thresholds = th; c.MaxPodGracePeriodSeconds = 20 })
	pod := newPod("a", 0, "")
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	h.addPod(pod, map[string]containerUse{"c0": {workingSet: 100 * mi}})
	h.node.memAvailable = 500 * mi
	if got := h.sync(); len(got) != 0 {
		t.Fatalf("evicted %v before the soft threshold's grace period", got)
	}
	if !h.m.Pressure().Memory {
		t.Fatal("no memory pressure while a soft threshold is crossed")
	}
	h.clock.Step(59 * time.Second)
	if got := h.sync(); len(got) != 0 {
		t.Fatalf("evicted %v after 59s of a 1m grace period", got)
	}
	h.clock.Step(time.Second)
	if got := h.sync(); fmt.Sprint(got) != "[a]" {
		t.Fatalf("evicted %v after the grace period", got)
	}
	if got := h.killed(); fmt.Sprint(got) != "[a/20s]" {
		t.Errorf("kills %v, want the eviction max grace period 20s (under the pod's 30s)", got)
	}
}

func TestStaleStatsDoNotEvictAgain(t *testing.T) {
	h := newHarness(t, nil)
	h.addPod(newPod("a", 0, ""), map[string]containerUse{"c0": {workingSet: 100 * mi}})
	h.addPod(newPod("b", 0, ""), map[string]containerUse{"c0": {workingSet: 50 * mi}})
	h.node.memAvailable = 10 * mi
	if got := h.sync(); fmt.Sprint(got) != "[a]" {
		t.Fatalf("evicted %v", got)
	}
	// The same reading again (no time passed): nothing new to act on.
	if got := h.sync(); len(got) != 0 {
		t.Fatalf("evicted %v on a stale reading", got)
	}
	h.clock.Step(10 * time.Second)
	if got := h.sync(); fmt.Sprint(got) != "[b]" {
		t.Fatalf("evicted %v on a fresh reading", got)
	}
}

func TestCriticalPodsAreNotEvicted(t *testing.T) {
	h := newHarness(t, nil)
	mirror := newPod("mirror", 0, "")
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x", "kubernetes.io/config.source": "file"}
	h.addPod(mirror, map[string]containerUse{"c0": {workingSet: gi}})
	h.addPod(newPod("system", systemCriticalPriority, ""), map[string]containerUse{"c0": {workingSet: gi}})
	h.addPod(newPod("user", 0, ""), map[string]containerUse{"c0": {workingSet: mi}})
	h.node.memAvailable = 10 * mi
	if got := h.sync(); fmt.Sprint(got) != "[user]" {
		t.Fatalf("evicted %v, want [user]", got)
	}
	for _, name := range []string{"mirror", "system"} {
		if h.pod(name).Status.Phase != corev1.PodRunning {
			t.Errorf("critical pod %s evicted", name)
		}
	}
}

func TestLocalStorageLimits(t *testing.T) {
	h := newHarness(t, nil)
	dir := newPod("emptydir", 0, "")
	dir.Spec.Volumes = []corev1.Volume{{Name: "x", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("1Mi"))}}}}
	dir = h.addPod(dir, map[string]containerUse{"c0": {}})
	h.volumes[dir.UID] = map[string]int64{"x": 2 * mi}

	under := newPod("under", 0, "")
	under.Spec.Volumes = []corev1.Volume{{Name: "x", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("1Mi"))}}}}
	under = h.addPod(under, map[string]containerUse{"c0": {rootfs: 10 * mi}})
	h.volumes[under.UID] = map[string]int64{"x": mi}

	h.addPod(newPod("container", 0, "/ephemeral-storage=1Mi", "/ephemeral-storage=1Gi"), map[string]containerUse{"c0": {rootfs: mi, logs: 1}, "c1": {rootfs: 500 * mi}})
	// Each container within its limit; with its emptyDir (no sizeLimit)
	// the pod is over their sum.
	total := newPod("pod-total", 0, "/ephemeral-storage=3Mi", "/ephemeral-storage=3Mi")
	total.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	total = h.addPod(total, map[string]containerUse{"c0": {rootfs: 2 * mi}, "c1": {rootfs: 2 * mi}})
	h.volumes[total.UID] = map[string]int64{"cache": 2*mi + 1}

	got := h.sync()
	if fmt.Sprint(got) != "[emptydir container pod-total]" {
		t.Fatalf("evicted %v, want [emptydir container pod-total] (no node pressure needed)", got)
	}
	for name, want := range map[string]string{
		"emptydir":  `Usage of EmptyDir volume "x" exceeds the limit "1Mi". `,
		"container": `Container c0 exceeded its local ephemeral storage limit "1Mi". `,
		"pod-total": "Pod ephemeral local storage usage exceeds the total limit of containers 6Mi. ",
	} {
		p := h.pod(name)
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" || p.Status.Message != want {
			t.Errorf("%s: %s %s %q, want Failed Evicted %q", name, p.Status.Phase, p.Status.Reason, p.Status.Message, want)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget {
				t.Errorf("%s: a local storage eviction has a DisruptionTarget condition (upstream sets none)", name)
			}
		}
	}
	if p := h.pod("under"); p.Status.Phase != corev1.PodRunning {
		t.Errorf("pod at its emptyDir limit evicted: %s", p.Status.Message)
	}
	if h.m.Pressure().Disk {
		t.Error("disk pressure from a pod's limits")
	}
	for _, e := range h.events.all() {
		if strings.Contains(e, "EvictionThresholdMet") {
			t.Errorf("node event for a local storage eviction: %s", e)
		}
	}

	// With a dedicated imagefs the writable layer does not count against a
	// container's limit, its logs do.
	h2 := newHarness(t, nil)
	h2.m.dedicated = true
	h2.addPod(newPod("layer", 0, "/ephemeral-storage=1Mi", "/ephemeral-storage=1Gi"), map[string]containerUse{"c0": {rootfs: 5 * mi}})
	h2.addPod(newPod("logs", 0, "/ephemeral-storage=1Mi", "/ephemeral-storage=1Gi"), map[string]containerUse{"c0": {logs: 2 * mi}})
	if got := h2.sync(); fmt.Sprint(got) != "[logs]" {
		t.Errorf("with an imagefs evicted %v, want [logs]", got)
	}
}

func TestAdmit(t *testing.T) {
	h := newHarness(t, nil)
	bestEffort := newPod("be", 0, "")
	burstable := newPod("burstable", 0, "memory=10Mi")
	tolerating := newPod("tolerating", 0, "")
	tolerating.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	critical := newPod("critical", systemCriticalPriority, "")
	check := func(pod *corev1.Pod, wantOK bool, wantMessage string) {
		t.Helper()
		ok, reason, message := h.m.Admit(pod)
		if ok != wantOK || (!ok && (reason != "Evicted" || message != wantMessage)) {
			t.Errorf("Admit(%s) = %t %q %q, want %t Evicted %q", pod.Name, ok, reason, message, wantOK, wantMessage)
		}
	}
	for _, p := range []*corev1.Pod{bestEffort, burstable, tolerating, critical} {
		check(p, true, "")
	}
	h.node.memAvailable = 50 * mi
	h.sync()
	check(bestEffort, false, "The node had condition: [MemoryPressure]. ")
	check(burstable, true, "")
	check(tolerating, true, "")
	check(critical, true, "")

	h.node.nodeFsAvailable = gi
	h.clock.Step(time.Minute)
	h.sync()
	check(bestEffort, false, "The node had condition: [MemoryPressure DiskPressure]. ")
	check(burstable, false, "The node had condition: [MemoryPressure DiskPressure]. ")
	check(tolerating, false, "The node had condition: [MemoryPressure DiskPressure]. ")
	check(critical, true, "")
}

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without Summary, Pods, Kill and Client succeeded")
	}
	h := newHarness(t, func(c *Config) {
		c.Thresholds = []Threshold{{Signal: SignalContainerFsAvailable, Value: Value{Percentage: 0.1}},
			{Signal: SignalMemoryAvailable, Value: Value{Quantity: ptr.To(resource.MustParse("1Gi"))}}}
	})
	if got := fmt.Sprint(h.m.Thresholds()); got != "[memory.available<1Gi]" {
		t.Errorf("thresholds %s: containerfs is covered by nodefs/imagefs", got)
	}
	if _, err := New(Config{Summary: h.m.cfg.Summary, Pods: h.m.cfg.Pods, Kill: h.m.cfg.Kill, Client: h.client,
		Thresholds: []Threshold{{Signal: "cpu.available"}}}); err == nil {
		t.Error("New accepted an unknown signal")
	}
}

func TestRunWaitsForTheEvictedPod(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	h := newHarness(t, func(c *Config) {
		c.Kill = func(context.Context, *corev1.Pod, time.Duration) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return calls >= 3, nil
		}
	})
	h.addPod(newPod("a", 0, ""), map[string]containerUse{"c0": {workingSet: mi}})
	h.node.memAvailable = 10 * mi
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.m.Run(ctx); close(done) }()
	// The eviction's kill, then one call a second until stopped.
	for i := 0; i < 200; i++ {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 3 {
			break
		}
		if h.clock.HasWaiters() {
			h.clock.Step(time.Second)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("Kill called %d times, want 3 (the eviction, then until stopped)", calls)
	}
	if h.pod("a").Status.Phase != corev1.PodFailed {
		t.Error("pod not evicted by Run")
	}
}
