package containerspec

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func TestMilliCPUToShares(t *testing.T) {
	for _, tc := range []struct{ milli, want int64 }{
		{0, 2}, {1, 2}, {2, 2}, {100, 102}, {250, 256}, {1000, 1024}, {1500, 1536}, {2000, 2048},
		{262144000, 262144}, {300000000, 262144},
	} {
		if got := MilliCPUToShares(tc.milli); got != tc.want {
			t.Errorf("MilliCPUToShares(%d) = %d, want %d", tc.milli, got, tc.want)
		}
	}
}

func TestMilliCPUToQuota(t *testing.T) {
	for _, tc := range []struct{ milli, period, want int64 }{
		{0, 100000, 0}, {5, 100000, 1000}, {9, 100000, 1000}, {10, 100000, 1000},
		{200, 100000, 20000}, {500, 100000, 50000}, {1000, 100000, 100000}, {1500, 100000, 150000},
		{1500, 50000, 75000},
	} {
		if got := MilliCPUToQuota(tc.milli, tc.period); got != tc.want {
			t.Errorf("MilliCPUToQuota(%d, %d) = %d, want %d", tc.milli, tc.period, got, tc.want)
		}
	}
}

func rl(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestContainerResources(t *testing.T) {
	const capacity = 8000000000
	for _, tc := range []struct {
		name                  string
		requests, limits      corev1.ResourceList
		podLimits             corev1.ResourceList
		shares, quota, memory int64
		oom                   int64
	}{
		// upstream's TestCalculateLinuxResources
		{name: "request 1 limit 2 cpu, 128Mi", requests: rl("cpu", "1"), limits: rl("cpu", "2", "memory", "128Mi"), shares: 1024, quota: 200000, memory: 134217728, oom: 1000 - 1},
		{name: "no memory limit", requests: rl("cpu", "2"), limits: rl("cpu", "8"), shares: 2048, quota: 800000, oom: 999},
		{name: "no cpu request: the limit", limits: rl("cpu", "2"), shares: 2048, quota: 200000, oom: 999},
		{name: "zero cpu request stays zero", requests: rl("cpu", "0"), limits: rl("cpu", "2"), shares: 2, quota: 200000, oom: 999},
		{name: "best effort", shares: 2, quota: 0, oom: 1000},
		{name: "guaranteed", requests: rl("cpu", "500m", "memory", "1Gi"), limits: rl("cpu", "500m", "memory", "1Gi"), shares: 512, quota: 50000, memory: 1073741824, oom: -997},
		{name: "burstable half the memory", requests: rl("cpu", "5m", "memory", strconv.Itoa(capacity/2)), limits: rl("memory", "10G"), shares: 5, quota: 0, memory: 10000000000, oom: 500},
		{name: "pod-level limits for unset ones", requests: rl("memory", "1Gi"), podLimits: rl("cpu", "1", "memory", "2Gi"), shares: 1024, quota: 100000, memory: 2147483648, oom: 866},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: tc.requests, Limits: tc.limits}}}}}
			if tc.podLimits != nil {
				pod.Spec.Resources = &corev1.ResourceRequirements{Limits: tc.podLimits}
			}
			r := ContainerResources(pod, &pod.Spec.Containers[0], capacity)
			if r.CpuShares != tc.shares || r.CpuQuota != tc.quota || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != tc.memory || r.OomScoreAdj != tc.oom {
				t.Errorf("got shares %d quota %d period %d memory %d oom %d; want %d %d 100000 %d %d",
					r.CpuShares, r.CpuQuota, r.CpuPeriod, r.MemoryLimitInBytes, r.OomScoreAdj, tc.shares, tc.quota, tc.memory, tc.oom)
			}
		})
	}
}

// Expected values from upstream's pkg/kubelet/qos/policy_test.go.
func TestOOMScoreAdj(t *testing.T) {
	const std = 8000000000
	container := func(name string, req, lim corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	sidecar := func(c corev1.Container) corev1.Container {
		c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		return c
	}
	memReq, memLim := strconv.Itoa(std/8), strconv.Itoa(1000+std/8)
	main := container("main-1", rl("memory", memReq), rl("memory", memLim))
	critical := int32(2000000000)
	for _, tc := range []struct {
		name     string
		pod      corev1.Pod
		capacity int64
		want     map[string][2]int64 // container: [low, high]
	}{
		{"cpu limit", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", nil, rl("cpu", "10"))}}}, 4000000000, map[string][2]int64{"c": {999, 999}}},
		{"memory limit cpu request", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", rl("cpu", "0"), rl("memory", "10G"))}}}, 8000000000, map[string][2]int64{"c": {999, 999}}},
		{"zero memory limit", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", nil, rl("memory", "0"))}}}, 7230457451, map[string][2]int64{"c": {1000, 1000}}},
		{"no request limit", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", nil, nil)}}}, 4000000000, map[string][2]int64{"c": {1000, 1000}}},
		{"equal request limit", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", rl("memory", "10G", "cpu", "5m"), rl("memory", "10G", "cpu", "5m"))}}}, 123456789, map[string][2]int64{"c": {-997, -997}}},
		{"memory limited with requests", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", rl("memory", strconv.Itoa(std/2), "cpu", "5m"), rl("memory", "10G"))}}}, std, map[string][2]int64{"c": {495, 505}}},
		{"request no limit", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", rl("memory", strconv.Itoa(std-1), "cpu", "5m"), nil)}}}, std, map[string][2]int64{"c": {3, 3}}},
		{"cluster critical", corev1.Pod{Spec: corev1.PodSpec{PriorityClassName: "system-cluster-critical", Priority: &critical, Containers: []corev1.Container{container("c", nil, nil)}}}, 4000000000, map[string][2]int64{"c": {1000, 1000}}},
		{"node critical", corev1.Pod{Spec: corev1.PodSpec{PriorityClassName: "system-node-critical", Priority: ptr.To(critical + 1000), Containers: []corev1.Container{container("c", nil, nil)}}}, 4000000000, map[string][2]int64{"c": {-997, -997}}},
		{"burstable unique container", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{main}}}, std, map[string][2]int64{"main-1": {875, 880}}},
		{"small sidecar", corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{container("init-container", rl("memory", memReq), rl("memory", memLim)), sidecar(container("sidecar-small-container", rl("memory", "1"), rl("memory", "2")))},
			Containers:     []corev1.Container{main}}}, std,
			map[string][2]int64{"init-container": {875, 880}, "sidecar-small-container": {875, 875}, "main-1": {875, 875}}},
		{"big sidecar", corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{container("init-container", rl("memory", memReq), rl("memory", memLim)), sidecar(container("sidecar-big-container", rl("memory", strconv.Itoa(std/2)), rl("memory", strconv.Itoa(std/2+1000))))},
			Containers:     []corev1.Container{main}}}, std,
			map[string][2]int64{"init-container": {875, 880}, "sidecar-big-container": {500, 500}, "main-1": {875, 875}}},
		{"pod-level guaranteed, containers without resources", corev1.Pod{Spec: corev1.PodSpec{
			Resources:  &corev1.ResourceRequirements{Requests: rl("memory", "1Gi", "cpu", "1"), Limits: rl("memory", "1Gi", "cpu", "1")},
			Containers: []corev1.Container{container("a", nil, nil), container("b", nil, nil)}}}, 4000000000,
			map[string][2]int64{"a": {-997, -997}, "b": {-997, -997}}},
		{"pod-level burstable: unallocated request shared", corev1.Pod{Spec: corev1.PodSpec{
			Resources:  &corev1.ResourceRequirements{Requests: rl("memory", strconv.Itoa(std/2))},
			Containers: []corev1.Container{container("a", rl("memory", strconv.Itoa(std/4)), nil), container("b", nil, nil)}}}, std,
			// a: 1000-1000*(2e9+1e9)/8e9 = 625; b: 1000-1000*1e9/8e9 = 875
			map[string][2]int64{"a": {625, 625}, "b": {875, 875}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := append(append([]corev1.Container{}, tc.pod.Spec.InitContainers...), tc.pod.Spec.Containers...)
			for i := range all {
				want, ok := tc.want[all[i].Name]
				if !ok {
					continue
				}
				got := OOMScoreAdj(&tc.pod, &all[i], tc.capacity)
				if got < want[0] || got > want[1] {
					t.Errorf("%s: oom_score_adj %d, want in [%d, %d]", all[i].Name, got, want[0], want[1])
				}
			}
		})
	}
}

func TestSandboxResources(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Overhead: rl("cpu", "250m", "memory", "120Mi"),
		Containers: []corev1.Container{
			{Name: "a", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "64Mi"), Limits: rl("cpu", "1", "memory", "128Mi")}},
			{Name: "b", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "200m", "memory", "64Mi"), Limits: rl("cpu", "1", "memory", "128Mi")}},
		},
	}}
	res, overhead := SandboxResources(pod)
	if res.CpuShares != 307 || res.CpuQuota != 200000 || res.CpuPeriod != 100000 || res.MemoryLimitInBytes != 256<<20 {
		t.Errorf("resources = %v", res)
	}
	if overhead.CpuShares != 256 || overhead.CpuQuota != 25000 || overhead.MemoryLimitInBytes != 120<<20 {
		t.Errorf("overhead = %v", overhead)
	}
	// Without overhead: an empty message, as upstream.
	pod.Spec.Overhead = nil
	if _, overhead = SandboxResources(pod); overhead.CpuShares != 0 || overhead.CpuPeriod != 0 {
		t.Errorf("no overhead = %v", overhead)
	}
}
