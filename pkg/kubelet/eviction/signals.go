package eviction

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// observation is one signal's reading.
type observation struct {
	available, capacity resource.Quantity
	time                time.Time
}

// observe reads the signals from a summary as upstream does: memory from
// the node's available and working set, allocatable memory from the pods'
// system container, the filesystems' free bytes and inodes, pid_max less
// the processes.
func observe(s *statsapi.Summary) map[Signal]observation {
	out := map[Signal]observation{}
	bytes := func(v uint64) resource.Quantity { return *resource.NewQuantity(int64(v), resource.BinarySI) }
	count := func(v uint64) resource.Quantity { return *resource.NewQuantity(int64(v), resource.DecimalSI) }
	memory := func(signal Signal, m *statsapi.MemoryStats) {
		if m != nil && m.AvailableBytes != nil && m.WorkingSetBytes != nil {
			out[signal] = observation{available: bytes(*m.AvailableBytes),
				capacity: bytes(*m.AvailableBytes + *m.WorkingSetBytes), time: m.Time.Time}
		}
	}
	fs := func(available, inodes Signal, f *statsapi.FsStats) {
		if f == nil {
			return
		}
		if f.AvailableBytes != nil && f.CapacityBytes != nil {
			out[available] = observation{available: bytes(*f.AvailableBytes), capacity: bytes(*f.CapacityBytes), time: f.Time.Time}
		}
		if f.InodesFree != nil && f.Inodes != nil {
			out[inodes] = observation{available: count(*f.InodesFree), capacity: count(*f.Inodes), time: f.Time.Time}
		}
	}
	memory(SignalMemoryAvailable, s.Node.Memory)
	for i := range s.Node.SystemContainers {
		if c := &s.Node.SystemContainers[i]; c.Name == statsapi.SystemContainerPods {
			memory(SignalAllocatableMemoryAvailable, c.Memory)
		}
	}
	fs(SignalNodeFsAvailable, SignalNodeFsInodesFree, s.Node.Fs)
	if s.Node.Runtime != nil {
		fs(SignalImageFsAvailable, SignalImageFsInodesFree, s.Node.Runtime.ImageFs)
	}
	if r := s.Node.Rlimit; r != nil && r.MaxPID != nil && r.NumOfRunningProcesses != nil {
		out[SignalPIDAvailable] = observation{
			available: *resource.NewQuantity(*r.MaxPID-*r.NumOfRunningProcesses, resource.DecimalSI),
			capacity:  *resource.NewQuantity(*r.MaxPID, resource.DecimalSI), time: r.Time.Time}
	}
	return out
}

// podStats is what a pod uses: its summary entry, with its emptyDir
// volumes' usage in bytes by volume name.
type podStats struct {
	statsapi.PodStats
	volumes map[string]uint64
}

// usage finds a pod's stats.
type usage func(pod *corev1.Pod) (*podStats, bool)

// podUsage indexes the summary's pods by UID; volumes, if not nil, gives
// the bytes of each emptyDir volume of a pod (over the summary's volume
// stats, which a summary may lack).
func podUsage(s *statsapi.Summary, volumes func(types.UID) map[string]int64) usage {
	byUID := make(map[types.UID]*podStats, len(s.Pods))
	for i := range s.Pods {
		ps := &podStats{PodStats: s.Pods[i], volumes: map[string]uint64{}}
		for _, v := range ps.VolumeStats {
			if v.UsedBytes != nil {
				ps.volumes[v.Name] = *v.UsedBytes
			}
		}
		uid := types.UID(ps.PodRef.UID)
		if volumes != nil {
			for name, used := range volumes(uid) {
				if used >= 0 {
					ps.volumes[name] = uint64(used)
				}
			}
		}
		byUID[uid] = ps
	}
	return func(pod *corev1.Pod) (*podStats, bool) {
		ps, ok := byUID[pod.UID]
		return ps, ok
	}
}

func usedBytes(f *statsapi.FsStats) int64 {
	if f == nil || f.UsedBytes == nil {
		return 0
	}
	return int64(*f.UsedBytes)
}

func usedInodes(f *statsapi.FsStats) int64 {
	if f == nil || f.InodesUsed == nil {
		return 0
	}
	return int64(*f.InodesUsed)
}

// workingSet is the pod's memory working set.
func (ps *podStats) workingSet() int64 {
	if ps.Memory == nil || ps.Memory.WorkingSetBytes == nil {
		return 0
	}
	return int64(*ps.Memory.WorkingSetBytes)
}

// fsParts say which parts of a pod's disk usage count for a filesystem.
type fsParts struct {
	rootfs, logs, volumes bool
}

// disk is what the pod uses of a filesystem's bytes (ephemeral-storage)
// or inodes: the containers' writable layers and logs, and its local
// ephemeral volumes (emptyDir on disk), as upstream counts them.
func (ps *podStats) disk(pod *corev1.Pod, parts fsParts, res corev1.ResourceName) int64 {
	var total int64
	for i := range ps.Containers {
		c := &ps.Containers[i]
		if res == resourceInodes {
			if parts.rootfs {
				total += usedInodes(c.Rootfs)
			}
			if parts.logs {
				total += usedInodes(c.Logs)
			}
			continue
		}
		if parts.rootfs {
			total += usedBytes(c.Rootfs)
		}
		if parts.logs {
			total += usedBytes(c.Logs)
		}
	}
	if parts.volumes && res != resourceInodes {
		for _, v := range pod.Spec.Volumes {
			if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumDefault {
				total += int64(ps.volumes[v.Name])
			}
		}
	}
	return total
}

// container finds a container's stats.
func (ps *podStats) container(name string) *statsapi.ContainerStats {
	for i := range ps.Containers {
		if ps.Containers[i].Name == name {
			return &ps.Containers[i]
		}
	}
	return nil
}
