package volume

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
)

// emptyDirPerm is an emptyDir's mode unless the volume says otherwise.
const emptyDirPerm fs.FileMode = 0o777

// setUpEmptyDir makes the directory (tmpfs for medium Memory) once, as
// upstream: a ready file marks it done, so the group ownership is given
// once and a lost tmpfs (after a reboot) is mounted again.
func (m *Manager) setUpEmptyDir(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, dir string) error {
	medium := v.EmptyDir.Medium
	if medium != corev1.StorageMediumDefault && medium != corev1.StorageMediumMemory {
		return fmt.Errorf("emptyDir medium %q is not supported by this kubelet", medium)
	}
	ready := filepath.Join(m.RootDir, "pods", string(pod.UID), "plugins", PluginEmptyDir, v.Name, "ready")
	if _, err := os.Stat(ready); err == nil {
		if medium == corev1.StorageMediumDefault {
			if _, err := os.Stat(dir); err == nil {
				return nil
			}
		} else if fsType, err := mountOf(dir); err == nil && fsType == "tmpfs" {
			return nil
		}
		klog.InfoS("Volume marked ready is missing, setting it up again", "pod", klog.KObj(pod), "volume", v.Name)
	}
	if err := m.makeVolumeDir(dir); err != nil {
		return err
	}
	if medium == corev1.StorageMediumMemory {
		size, err := m.memoryVolumeSize(ctx, pod, v.EmptyDir.SizeLimit)
		if err != nil {
			return err
		}
		if err := m.ensureTmpfs(dir, size); err != nil {
			return err
		}
	}
	if v.EmptyDir.Mode != nil {
		mode := fs.FileMode(*v.EmptyDir.Mode & 0o777)
		if *v.EmptyDir.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", dir, err)
		}
	}
	if err := setOwnership(dir, fsGroupOf(pod), nil, false); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(ready), 0o750); err != nil {
		return err
	}
	return os.WriteFile(ready, nil, 0o600)
}

// makeVolumeDir creates dir with emptyDir's 0777 (not masked by the umask),
// its parents private to the kubelet.
func (m *Manager) makeVolumeDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return fmt.Errorf("creating the volume's directory: %w", err)
	}
	if err := os.Mkdir(dir, emptyDirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating the volume's directory: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	if info.Mode().Perm() != emptyDirPerm {
		if err := os.Chmod(dir, emptyDirPerm); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) ensureTmpfs(dir string, size int64) error {
	fsType, err := mountOf(dir)
	if err != nil {
		return err
	}
	if fsType == "tmpfs" {
		return nil
	}
	return mountTmpfs(dir, size)
}

// memoryVolumeSize is upstream's size of a memory-backed volume: the node's
// allocatable memory, less when the pod's memory limit is lower, less
// again when the volume's sizeLimit is lower.
func (m *Manager) memoryVolumeSize(ctx context.Context, pod *corev1.Pod, sizeLimit *resource.Quantity) (int64, error) {
	alloc, err := m.allocatable(ctx)
	if err != nil {
		return 0, err
	}
	size := alloc.Memory().Value()
	if limit := podMemoryLimit(pod); limit > 0 && (size <= 0 || limit <= size) {
		size = limit
	}
	if sizeLimit != nil && sizeLimit.Value() > 0 && (size <= 0 || sizeLimit.Value() <= size) {
		size = sizeLimit.Value()
	}
	return size, nil
}

// podMemoryLimit is the pod's memory cgroup limit, 0 when some container
// has none (and the pod sets none either).
func podMemoryLimit(pod *corev1.Pod) int64 {
	declared := true
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].Resources.Limits.Memory().IsZero() {
				declared = false
			}
		}
	}
	if pod.Spec.Resources != nil && !pod.Spec.Resources.Limits.Memory().IsZero() {
		declared = true
	}
	if !declared {
		return 0
	}
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	return limits.Memory().Value()
}

type cachedAllocatable struct {
	list    corev1.ResourceList
	fetched time.Time
}

// allocatable is the node's allocatable resources (cached a minute),
// the machine's capacity when the Node cannot be read.
func (m *Manager) allocatable(ctx context.Context) (corev1.ResourceList, error) {
	now := m.Clock.Now()
	m.mu.Lock()
	if m.alloc.list != nil && now.Sub(m.alloc.fetched) < time.Minute {
		list := m.alloc.list
		m.mu.Unlock()
		return list, nil
	}
	m.mu.Unlock()
	var list corev1.ResourceList
	if m.Client != nil && m.NodeName != "" {
		node, err := m.Client.CoreV1().Nodes().Get(ctx, m.NodeName, metav1.GetOptions{})
		if err == nil && len(node.Status.Allocatable) > 0 {
			list = node.Status.Allocatable
		} else if err != nil {
			klog.V(2).InfoS("Node not readable, using the machine's capacity as allocatable", "node", m.NodeName, "err", err)
		}
	}
	if list == nil {
		mem, err := memTotal()
		if err != nil {
			return nil, fmt.Errorf("reading the node's memory: %w", err)
		}
		list = corev1.ResourceList{
			corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
			corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		}
	}
	m.mu.Lock()
	m.alloc = cachedAllocatable{list: list, fetched: now}
	m.mu.Unlock()
	return list, nil
}

func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}

// Usage is the bytes used by each emptyDir volume of the pod (disk or
// memory), by volume name, for eviction against sizeLimit.
func (m *Manager) Usage(uid types.UID) map[string]int64 {
	out := map[string]int64{}
	if validName(string(uid)) != nil {
		return out
	}
	base := filepath.Join(m.RootDir, "pods", string(uid), "volumes", PluginEmptyDir)
	entries, err := os.ReadDir(base)
	if err != nil {
		return out
	}
	for _, e := range entries {
		if e.IsDir() {
			out[e.Name()] = diskUsage(filepath.Join(base, e.Name()))
		}
	}
	return out
}

// diskUsage is du's: allocated blocks of everything below dir, each inode
// once, symlinks not followed.
func diskUsage(dir string) int64 {
	seen := map[uint64]bool{}
	var total int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscallStat); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}
