package eviction

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// compare orders two pods for eviction: negative when a goes first.
type compare func(a, b *corev1.Pod) int

// rank sorts pods, the first to evict first, by each comparison in turn.
func rank(pods []*corev1.Pod, by ...compare) {
	sort.SliceStable(pods, func(i, j int) bool {
		for _, c := range by {
			if r := c(pods[i], pods[j]); r != 0 {
				return r < 0
			}
		}
		return false
	})
}

// first puts a before b when only a has the property.
func first(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	default:
		return 1
	}
}

func request(pod *corev1.Pod, res corev1.ResourceName) int64 {
	q, ok := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})[res]
	if !ok {
		return 0
	}
	return q.Value()
}

// byPriority: lower priority first.
func byPriority(a, b *corev1.Pod) int {
	pa, pb := corev1helpers.PodPriority(a), corev1helpers.PodPriority(b)
	switch {
	case pa == pb:
		return 0
	case pa < pb:
		return -1
	default:
		return 1
	}
}

// byUsage compares what two pods use, larger first; pods without stats go
// before all others, as upstream.
func byUsage(u usage, of func(pod *corev1.Pod, ps *podStats) int64) compare {
	return func(a, b *corev1.Pod) int {
		sa, oka := u(a)
		sb, okb := u(b)
		if !oka || !okb {
			return first(!oka, !okb)
		}
		va, vb := of(a, sa), of(b, sb)
		switch {
		case va == vb:
			return 0
		case va > vb:
			return -1
		default:
			return 1
		}
	}
}

// exceeding puts the pods using more than they request first.
func exceeding(u usage, of func(pod *corev1.Pod, ps *podStats) int64, res corev1.ResourceName) compare {
	return func(a, b *corev1.Pod) int {
		sa, oka := u(a)
		sb, okb := u(b)
		if !oka || !okb {
			return first(!oka, !okb)
		}
		return first(of(a, sa) > request(a, res), of(b, sb) > request(b, res))
	}
}

// rankMemory is upstream's order under memory pressure: pods over their
// memory request, then lower priority, then larger use above the request.
func rankMemory(pods []*corev1.Pod, u usage) {
	used := func(_ *corev1.Pod, ps *podStats) int64 { return ps.workingSet() }
	aboveRequest := func(pod *corev1.Pod, ps *podStats) int64 {
		return ps.workingSet() - request(pod, corev1.ResourceMemory)
	}
	rank(pods, exceeding(u, used, corev1.ResourceMemory), byPriority, byUsage(u, aboveRequest))
}

// rankDisk is the order under pressure on a filesystem whose usage parts
// are counted: pods over their request, lower priority, larger use above
// the ephemeral-storage request.
func rankDisk(parts fsParts, res corev1.ResourceName) func([]*corev1.Pod, usage) {
	return func(pods []*corev1.Pod, u usage) {
		used := func(pod *corev1.Pod, ps *podStats) int64 { return ps.disk(pod, parts, res) }
		aboveRequest := func(pod *corev1.Pod, ps *podStats) int64 {
			v := ps.disk(pod, parts, res)
			if res == corev1.ResourceEphemeralStorage {
				v -= request(pod, res)
			}
			return v
		}
		rank(pods, exceeding(u, used, res), byPriority, byUsage(u, aboveRequest))
	}
}

// rankPIDs is the order under PID pressure: lower priority, then more
// processes.
func rankPIDs(pods []*corev1.Pod, u usage) {
	procs := func(_ *corev1.Pod, ps *podStats) int64 {
		if ps.ProcessStats == nil || ps.ProcessStats.ProcessCount == nil {
			return 0
		}
		return int64(*ps.ProcessStats.ProcessCount)
	}
	rank(pods, byPriority, byUsage(u, procs))
}

// rankers are each signal's order; with a dedicated imagefs the nodefs
// holds logs and volumes, the imagefs the writable layers.
func rankers(dedicatedImageFs bool) map[Signal]func([]*corev1.Pod, usage) {
	all := fsParts{rootfs: true, logs: true, volumes: true}
	node, image := all, all
	if dedicatedImageFs {
		node, image = fsParts{logs: true, volumes: true}, fsParts{rootfs: true}
	}
	return map[Signal]func([]*corev1.Pod, usage){
		SignalMemoryAvailable:            rankMemory,
		SignalAllocatableMemoryAvailable: rankMemory,
		SignalPIDAvailable:               rankPIDs,
		SignalNodeFsAvailable:            rankDisk(node, corev1.ResourceEphemeralStorage),
		SignalNodeFsInodesFree:           rankDisk(node, resourceInodes),
		SignalImageFsAvailable:           rankDisk(image, corev1.ResourceEphemeralStorage),
		SignalImageFsInodesFree:          rankDisk(image, resourceInodes),
	}
}
