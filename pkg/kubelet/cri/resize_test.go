package cri

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

func requirements(cpuReq, cpuLim, memReq, memLim string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	set := func(l corev1.ResourceList, name corev1.ResourceName, v string) {
		if v != "" {
			l[name] = resource.MustParse(v)
		}
	}
	set(r.Requests, corev1.ResourceCPU, cpuReq)
	set(r.Limits, corev1.ResourceCPU, cpuLim)
	set(r.Requests, corev1.ResourceMemory, memReq)
	set(r.Limits, corev1.ResourceMemory, memLim)
	return r
}

// cgroupValues are the container's cpu weight, cpu limit and memory limit
// as it reads them from its own cgroup (cgroup v1 or v2), as upstream's
// e2e reads them.
func cgroupValues(t *testing.T, r *Runtime, id string) (weight, cpuMax, memMax string) {
	t.Helper()
	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}
	files := []string{"/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	if v2 {
		files = []string{"/sys/fs/cgroup/cpu.weight", "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/memory.max"}
	}
	var out []string
	for _, f := range files {
		stdout, stderr, code, err := r.ExecSync(context.Background(), id, []string{"head", "-n", "1", f}, 10*time.Second)
		if err != nil || code != 0 {
			t.Fatalf("reading %s in the container: %v %d %s", f, err, code, stderr)
		}
		out = append(out, strings.TrimSpace(string(stdout)))
	}
	return out[0], out[1], out[2]
}

// expectedCgroup is what upstream's e2e expects for the resources.
func expectedCgroup(t *testing.T, res corev1.ResourceRequirements) (weight, cpuMax, memMax string) {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	v2 := err == nil
	req, lim := res.Requests.Cpu().MilliValue(), res.Limits.Cpu().MilliValue()
	if req == 0 {
		req = lim
	}
	shares := int64(2)
	if req > 0 {
		shares = max(req*1024/1000, 2)
	}
	quota := int64(-1)
	if lim > 0 {
		quota = max(lim*100000/1000, 1000)
	}
	mem := res.Limits.Memory().Value()
	if v2 {
		weight = itoa(1 + ((shares-2)*9999)/262142)
		cpuMax = "max 100000"
		if quota > 0 {
			cpuMax = itoa(quota) + " 100000"
		}
		memMax = "max"
		if mem > 0 {
			memMax = itoa(mem)
		}
		return weight, cpuMax, memMax
	}
	memMax = "9223372036854771712"
	if mem > 0 {
		memMax = itoa(mem)
	}
	return itoa(shares), itoa(quota), memMax
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func checkCgroup(t *testing.T, r *Runtime, id string, res corev1.ResourceRequirements) {
	t.Helper()
	w, c, m := cgroupValues(t, r, id)
	ww, wc, wm := expectedCgroup(t, res)
	if w != ww || c != wc || m != wm {
		t.Errorf("cgroup of %s: weight %s, cpu %s, memory %s; want %s, %s, %s", id, w, c, m, ww, wc, wm)
	}
}

func hasCondition(s *container.PodStatus, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range s.ResizeConditions {
		if s.ResizeConditions[i].Type == typ {
			return &s.ResizeConditions[i]
		}
	}
	return nil
}

// TestResizeInPlace: a running burstable container gets its new cpu and
// memory requests and limits in its cgroup without a restart (adding a
// limit it had none of too), its status reports them, and an agent
// restarted on the same root dir knows them applied.
func TestResizeInPlace(t *testing.T) {
	e := env(t)
	allocatable := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	tweak := func(c *Config) { c.NodeAllocatable = func() corev1.ResourceList { return allocatable } }
	r, rec := newRuntime(t, e, tweak)
	pod := busyboxPod("resized", "exec sleep 3600")
	pod.Spec.TerminationGracePeriodSeconds = new(int64)
	pod.Generation = 1
	pod.Status.QOSClass = corev1.PodQOSBurstable
	pod.Spec.Containers[0].Resources = requirements("20m", "30m", "35Mi", "")
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	before := res.Status.Containers[0]
	checkCgroup(t, r, before.ID, pod.Spec.Containers[0].Resources)

	pod.Spec.Containers[0].Resources = requirements("25m", "35m", "30Mi", "50Mi")
	pod.Generation = 2
	want := pod.Spec.Containers[0].Resources
	res = syncUntil(t, r, pod, 10*time.Second, func(s *container.PodStatus) bool {
		a := s.Containers[0].Actual
		return a != nil && equalResources(*a, want)
	})
	after := res.Status.Containers[0]
	if after.ID != before.ID || after.RestartCount != 0 {
		t.Errorf("resized container %s (%d restarts), want %s in place", after.ID, after.RestartCount, before.ID)
	}
	checkCgroup(t, r, after.ID, want)
	if len(res.Status.ResizeConditions) != 0 {
		t.Errorf("resize conditions after the resize: %+v", res.Status.ResizeConditions)
	}
	if !rec.hasFor("Normal ResizeStarted", pod.Name) || !rec.hasFor("Normal ResizeCompleted", pod.Name) {
		t.Errorf("events %q", rec.all())
	}
	api := status.Generate(pod, res.Status, status.Options{Now: time.Now()})
	cs := api.ContainerStatuses[0]
	if cs.Resources == nil || !equalResources(*cs.Resources, want) || cs.AllocatedResources.Memory().String() != "30Mi" {
		t.Errorf("status resources %+v, allocated %v; want %+v", cs.Resources, cs.AllocatedResources, want)
	}

	// A restarted agent finds the resize done: nothing applied again.
	again, rec2 := newRuntime(t, e, tweak)
	res = syncUntil(t, again, pod, 5*time.Second, func(*container.PodStatus) bool { return true })
	if a := res.Status.Containers[0].Actual; a == nil || !equalResources(*a, want) || rec2.has("Normal ResizeStarted") {
		t.Errorf("after an agent restart: actual %+v, events %q", a, rec2.all())
	}

	// Back down (a memory limit decrease above the usage is fine).
	pod.Spec.Containers[0].Resources = requirements("20m", "30m", "35Mi", "45Mi")
	pod.Generation = 3
	want = pod.Spec.Containers[0].Resources
	res = syncUntil(t, again, pod, 10*time.Second, func(s *container.PodStatus) bool {
		a := s.Containers[0].Actual
		return a != nil && equalResources(*a, want)
	})
	checkCgroup(t, again, res.Status.Containers[0].ID, want)
	if res.Status.Containers[0].RestartCount != 0 {
		t.Errorf("restarted on a resize back: %s", describe(res.Status))
	}
}

// TestResizeRestartContainer: a resource whose resize policy is
// RestartContainer restarts the container with its new resources.
func TestResizeRestartContainer(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	pod := busyboxPod("resize-restart", "exec sleep 3600")
	pod.Spec.TerminationGracePeriodSeconds = new(int64)
	pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	pod.Status.QOSClass = corev1.PodQOSBurstable
	c := &pod.Spec.Containers[0]
	c.Resources = requirements("20m", "", "35Mi", "45Mi")
	c.ResizePolicy = []corev1.ContainerResizePolicy{
		{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired},
		{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer},
	}
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	before := res.Status.Containers[0]

	c.Resources = requirements("20m", "", "40Mi", "50Mi")
	want := c.Resources
	res = syncUntil(t, r, pod, 20*time.Second, func(s *container.PodStatus) bool {
		cs := s.Containers[0]
		return cs.State == container.StateRunning && cs.ID != before.ID && cs.Actual != nil && equalResources(*cs.Actual, want)
	})
	if got := res.Status.Containers[0].RestartCount; got != 1 {
		t.Errorf("restart count %d, want 1", got)
	}
	checkCgroup(t, r, res.Status.Containers[0].ID, want)
	if !rec.hasFor("Normal Killing", pod.Name) {
		t.Errorf("events %q", rec.all())
	}
}

// TestResizeInfeasible: a resize beyond the node's allocatable stays
// pending (Infeasible) and the container keeps its resources.
func TestResizeInfeasible(t *testing.T) {
	e := env(t)
	allocatable := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourcePods: resource.MustParse("110")}
	r, rec := newRuntime(t, e, func(c *Config) { c.NodeAllocatable = func() corev1.ResourceList { return allocatable } })
	pod := busyboxPod("resize-infeasible", "exec sleep 3600")
	pod.Spec.TerminationGracePeriodSeconds = new(int64)
	pod.Status.QOSClass = corev1.PodQOSBurstable
	pod.Spec.Containers[0].Resources = requirements("20m", "", "", "")
	removeAfter(t, r, pod.UID)
	syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	pod.Spec.Containers[0].Resources = requirements("3", "", "", "")
	res := syncUntil(t, r, pod, 5*time.Second, func(s *container.PodStatus) bool {
		return hasCondition(s, corev1.PodResizePending) != nil
	})
	cond := hasCondition(res.Status, corev1.PodResizePending)
	if cond.Reason != corev1.PodReasonInfeasible || cond.Message != "Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000" {
		t.Errorf("condition %+v", cond)
	}
	cs := res.Status.Containers[0]
	if cs.Allocated == nil || cs.Allocated.Requests.Cpu().String() != "20m" {
		t.Errorf("allocated %+v, want the old 20m", cs.Allocated)
	}
	checkCgroup(t, r, cs.ID, requirements("20m", "", "", ""))
	if !rec.hasFor("Warning ResizeInfeasible", pod.Name) {
		t.Errorf("events %q", rec.all())
	}
}
