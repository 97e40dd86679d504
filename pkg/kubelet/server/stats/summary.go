// Package stats computes the kubelet's /stats/summary (the
// k8s.io/kubelet stats/v1alpha1 Summary): node CPU, memory, network,
// filesystems and process limits from /proc and the cgroups; pods' and
// containers' CPU and memory from the pod cgroups and the runtime's CRI
// ListContainerStats; CPU rates from samples taken every 10 s.
package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Runtime is the container runtime whose pods the summary covers.
type Runtime interface {
	RuntimeService() internalapi.RuntimeService
}

// ImageRuntime is a Runtime that also answers ImageFsInfo, for the
// image filesystem's usage.
type ImageRuntime interface {
	ImageService() internalapi.ImageManagerService
}

// Config says where the node's data is.
type Config struct {
	NodeName string
	// Runtime: nil gives node stats only.
	Runtime Runtime
	// RootDir is the kubelet's root directory: its filesystem is the
	// node's fs.
	RootDir string
	// ImageFsDir is the runtime's root (e.g. containerd's root dir): its
	// filesystem is the image fs; "": RootDir's.
	ImageFsDir string
	// PodLogsDir holds the containers' logs; "": /var/log/pods.
	PodLogsDir string
	// SampleInterval is how often CPU usage is sampled for its rate;
	// 0: 10 s.
	SampleInterval time.Duration
}

// Provider computes summaries.
type Provider struct {
	cfg     Config
	cgroups *cgroups
	rates   *rates
	clock   func() time.Time

	mu          sync.Mutex
	sandboxPIDs map[string]int
}

// New finds the cgroup hierarchies; the runtime is asked at each summary.
func New(cfg Config) (*Provider, error) {
	if cfg.PodLogsDir == "" {
		cfg.PodLogsDir = "/var/log/pods"
	}
	if cfg.SampleInterval == 0 {
		cfg.SampleInterval = 10 * time.Second
	}
	if cfg.RootDir == "" {
		cfg.RootDir = "/"
	}
	if cfg.ImageFsDir == "" {
		cfg.ImageFsDir = cfg.RootDir
	}
	cg, err := findCgroups("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return &Provider{
		cfg:         cfg,
		cgroups:     cg,
		rates:       newRates(cfg.SampleInterval),
		clock:       time.Now,
		sandboxPIDs: map[string]int{},
	}, nil
}

// Run samples CPU usage every SampleInterval until ctx ends, so that
// usageNanoCores is there at the first request.
func (p *Provider) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.SampleInterval)
	defer t.Stop()
	for {
		if _, err := p.Summary(ctx, true); err != nil && ctx.Err() == nil {
			klog.V(4).InfoS("Sampling CPU usage failed", "err", err)
		}
		p.rates.forget(p.clock().Add(-3 * p.cfg.SampleInterval))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Summary is the node's summary now; onlyCPUAndMemory leaves out the
// filesystems, network and process limits (/stats/summary?only_cpu_and_memory=true,
// and /metrics/resource).
func (p *Provider) Summary(ctx context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error) {
	node, err := p.nodeStats(onlyCPUAndMemory)
	if err != nil {
		return nil, err
	}
	s := &statsapi.Summary{Node: *node, Pods: []statsapi.PodStats{}}
	if p.cfg.Runtime == nil {
		return s, nil
	}
	pods, err := p.podStats(ctx, node, onlyCPUAndMemory)
	if err != nil {
		return nil, err
	}
	s.Pods = pods
	return s, nil
}

func (p *Provider) nodeStats(onlyCPUAndMemory bool) (*statsapi.NodeStats, error) {
	now := p.clock()
	ts := metav1.NewTime(now)
	n := &statsapi.NodeStats{NodeName: p.cfg.NodeName}
	if bt, err := bootTime("/proc/stat"); err == nil {
		n.StartTime = metav1.NewTime(bt)
	}
	cpu, err := p.cgroups.cpuUsage("/")
	if err != nil {
		return nil, fmt.Errorf("reading the node's CPU usage: %w", err)
	}
	n.CPU = p.cpuStats("node", ts, cpu)
	mem, err := p.cgroups.memoryStats("/", "/proc/meminfo")
	if err != nil {
		return nil, fmt.Errorf("reading the node's memory usage: %w", err)
	}
	mi, err := readMeminfo("/proc/meminfo")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/meminfo: %w", err)
	}
	mem.limit = mi["MemTotal"]
	n.Memory = memoryStats(ts, mem)
	if p.cgroups.exists("/kubepods") {
		pods := statsapi.ContainerStats{Name: statsapi.SystemContainerPods, StartTime: n.StartTime}
		if v, err := p.cgroups.cpuUsage("/kubepods"); err == nil {
			pods.CPU = p.cpuStats("pods", ts, v)
		}
		if m, err := p.cgroups.memoryStats("/kubepods", "/proc/meminfo"); err == nil {
			if m.limit == 0 {
				m.limit = mi["MemTotal"]
			}
			pods.Memory = memoryStats(ts, m)
		}
		n.SystemContainers = append(n.SystemContainers, pods)
	}
	if onlyCPUAndMemory {
		return n, nil
	}
	if ifaces, err := readNetDev("/proc/net/dev"); err == nil {
		n.Network = networkStats(ts, ifaces)
	}
	if u, err := statfs(p.cfg.RootDir); err == nil {
		n.Fs = fsStats(ts, u)
	}
	if u, err := statfs(p.cfg.ImageFsDir); err == nil {
		image := fsStats(ts, u)
		if used, ok := p.imageFsUsed(); ok {
			image.UsedBytes = &used
		}
		container := *image
		n.Runtime = &statsapi.RuntimeStats{ImageFs: image, ContainerFs: &container}
	}
	if maxPID, procs, err := pidLimits("/proc/sys"); err == nil {
		n.Rlimit = &statsapi.RlimitStats{Time: ts, MaxPID: &maxPID, NumOfRunningProcesses: &procs}
	}
	return n, nil
}

// imageFsUsed is what the runtime says its images take.
func (p *Provider) imageFsUsed() (uint64, bool) {
	ir, ok := p.cfg.Runtime.(ImageRuntime)
	if !ok || ir.ImageService() == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ir.ImageService().ImageFsInfo(ctx)
	if err != nil || len(resp.GetImageFilesystems()) == 0 {
		return 0, false
	}
	var used uint64
	for _, fs := range resp.GetImageFilesystems() {
		used += fs.GetUsedBytes().GetValue()
	}
	return used, true
}

func (p *Provider) podStats(ctx context.Context, node *statsapi.NodeStats, onlyCPUAndMemory bool) ([]statsapi.PodStats, error) {
	rs := p.cfg.Runtime.RuntimeService()
	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
	if err != nil {
		return nil, fmt.Errorf("listing pod sandboxes: %w", err)
	}
	containers, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	cstats, err := rs.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
	if err != nil {
		return nil, fmt.Errorf("listing container stats: %w", err)
	}
	statsByID := map[string]*runtimeapi.ContainerStats{}
	for _, s := range cstats {
		statsByID[s.GetAttributes().GetId()] = s
	}
	bySandbox := map[string][]*runtimeapi.Container{}
	for _, c := range containers {
		bySandbox[c.GetPodSandboxId()] = append(bySandbox[c.GetPodSandboxId()], c)
	}
	// One pod per UID: the newest ready sandbox.
	newest := map[string]*runtimeapi.PodSandbox{}
	for _, sb := range sandboxes {
		uid := sb.GetMetadata().GetUid()
		if old, ok := newest[uid]; !ok || sb.GetCreatedAt() > old.GetCreatedAt() {
			newest[uid] = sb
		}
	}
	live := map[string]bool{}
	var pods []statsapi.PodStats
	for _, sb := range newest {
		live[sb.GetId()] = true
		pods = append(pods, p.onePod(ctx, rs, sb, bySandbox[sb.GetId()], statsByID, node, onlyCPUAndMemory))
	}
	p.forgetSandboxes(live)
	sort.Slice(pods, func(i, j int) bool {
		a, b := pods[i].PodRef, pods[j].PodRef
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return pods, nil
}

func (p *Provider) onePod(ctx context.Context, rs internalapi.RuntimeService, sb *runtimeapi.PodSandbox, containers []*runtimeapi.Container, statsByID map[string]*runtimeapi.ContainerStats, node *statsapi.NodeStats, onlyCPUAndMemory bool) statsapi.PodStats {
	md := sb.GetMetadata()
	ps := statsapi.PodStats{
		PodRef:     statsapi.PodReference{Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()},
		StartTime:  metav1.NewTime(time.Unix(0, sb.GetCreatedAt())),
		Containers: []statsapi.ContainerStats{},
	}
	now := metav1.NewTime(p.clock())
	logDir := filepath.Join(p.cfg.PodLogsDir, fmt.Sprintf("%s_%s_%s", md.GetNamespace(), md.GetName(), md.GetUid()))
	var sumCPU, sumMem uint64
	var ephemeral uint64
	for _, c := range containers {
		cs := statsapi.ContainerStats{Name: c.GetMetadata().GetName(), StartTime: metav1.NewTime(time.Unix(0, c.GetCreatedAt()))}
		if st := statsByID[c.GetId()]; st != nil {
			if cpu := st.GetCpu(); cpu != nil && cpu.GetUsageCoreNanoSeconds() != nil {
				v := cpu.GetUsageCoreNanoSeconds().GetValue()
				sumCPU += v
				cs.CPU = p.cpuStats("container/"+c.GetId(), metav1.NewTime(time.Unix(0, cpu.GetTimestamp())), v)
			}
			if m := st.GetMemory(); m != nil && m.GetWorkingSetBytes() != nil {
				sumMem += m.GetWorkingSetBytes().GetValue()
				cs.Memory = &statsapi.MemoryStats{
					Time:            metav1.NewTime(time.Unix(0, m.GetTimestamp())),
					WorkingSetBytes: uint64Ptr(m.GetWorkingSetBytes()),
					UsageBytes:      uint64Ptr(m.GetUsageBytes()),
					RSSBytes:        uint64Ptr(m.GetRssBytes()),
					PageFaults:      uint64Ptr(m.GetPageFaults()),
					MajorPageFaults: uint64Ptr(m.GetMajorPageFaults()),
					AvailableBytes:  uint64Ptr(m.GetAvailableBytes()),
				}
			}
			if !onlyCPUAndMemory && st.GetWritableLayer() != nil && node.Runtime != nil && node.Runtime.ContainerFs != nil {
				fs := *node.Runtime.ContainerFs
				fs.Time = metav1.NewTime(time.Unix(0, st.GetWritableLayer().GetTimestamp()))
				fs.UsedBytes = uint64Ptr(st.GetWritableLayer().GetUsedBytes())
				fs.InodesUsed = uint64Ptr(st.GetWritableLayer().GetInodesUsed())
				if fs.UsedBytes != nil {
					ephemeral += *fs.UsedBytes
				}
				cs.Rootfs = &fs
			}
		}
		if !onlyCPUAndMemory && node.Fs != nil {
			if used, inodes, err := diskUsage(filepath.Join(logDir, c.GetMetadata().GetName())); err == nil {
				fs := *node.Fs
				fs.Time = now
				fs.UsedBytes, fs.InodesUsed = &used, &inodes
				ephemeral += used
				cs.Logs = &fs
			}
		}
		ps.Containers = append(ps.Containers, cs)
	}
	sort.Slice(ps.Containers, func(i, j int) bool { return ps.Containers[i].Name < ps.Containers[j].Name })

	// The pod's cgroup counts the sandbox too; without one (another
	// cgroup parent), the containers' sum.
	if cg, ok := p.podCgroup(md.GetUid()); ok {
		if v, err := p.cgroups.cpuUsage(cg); err == nil {
			ps.CPU = p.cpuStats("pod/"+md.GetUid(), now, v)
		}
		if m, err := p.cgroups.memoryStats(cg, "/proc/meminfo"); err == nil {
			ps.Memory = memoryStats(now, m)
		}
	} else if len(containers) > 0 {
		ps.CPU = p.cpuStats("pod/"+md.GetUid(), now, sumCPU)
		ps.Memory = &statsapi.MemoryStats{Time: now, WorkingSetBytes: &sumMem}
	}
	if onlyCPUAndMemory {
		return ps
	}
	if node.Fs != nil {
		fs := *node.Fs
		fs.Time = now
		fs.UsedBytes = &ephemeral
		fs.InodesUsed = nil
		ps.EphemeralStorage = &fs
	}
	if pid := p.sandboxPID(ctx, rs, sb.GetId()); pid > 0 {
		if ifaces, err := readNetDev(fmt.Sprintf("/proc/%d/net/dev", pid)); err == nil {
			ps.Network = networkStats(now, ifaces)
		}
	}
	return ps
}

// podCgroup finds the pod's cgroupfs cgroup under /kubepods, whichever
// QoS class it has.
func (p *Provider) podCgroup(uid string) (string, bool) {
	for _, parent := range []string{"/kubepods", "/kubepods/burstable", "/kubepods/besteffort"} {
		cg := parent + "/pod" + uid
		if p.cgroups.exists(cg) {
			return cg, true
		}
	}
	return "", false
}

// sandboxPID is the pid of the sandbox's process (its network namespace),
// from the runtime's verbose status; cached, as it does not change.
func (p *Provider) sandboxPID(ctx context.Context, rs internalapi.RuntimeService, id string) int {
	p.mu.Lock()
	pid, ok := p.sandboxPIDs[id]
	p.mu.Unlock()
	if ok {
		return pid
	}
	resp, err := rs.PodSandboxStatus(ctx, id, true)
	if err != nil {
		return 0
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if raw, ok := resp.GetInfo()["info"]; ok {
		_ = json.Unmarshal([]byte(raw), &info)
	}
	if info.Pid > 0 {
		p.mu.Lock()
		p.sandboxPIDs[id] = info.Pid
		p.mu.Unlock()
	}
	return info.Pid
}

func (p *Provider) forgetSandboxes(live map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.sandboxPIDs {
		if !live[id] {
			delete(p.sandboxPIDs, id)
		}
	}
}

func (p *Provider) cpuStats(key string, ts metav1.Time, usage uint64) *statsapi.CPUStats {
	s := &statsapi.CPUStats{Time: ts, UsageCoreNanoSeconds: &usage}
	s.UsageNanoCores = p.rates.observe(key, ts.Time, usage)
	return s
}

func memoryStats(ts metav1.Time, m memory) *statsapi.MemoryStats {
	s := &statsapi.MemoryStats{
		Time:            ts,
		UsageBytes:      &m.usage,
		WorkingSetBytes: &m.workingSet,
		RSSBytes:        &m.rss,
		PageFaults:      &m.pageFaults,
		MajorPageFaults: &m.majorPageFaults,
	}
	if m.limit > 0 {
		avail := sub(m.limit, m.workingSet)
		s.AvailableBytes = &avail
	}
	return s
}

// networkStats: the default interface is eth0 as upstream's, else the
// first one.
func networkStats(ts metav1.Time, ifaces []iface) *statsapi.NetworkStats {
	if len(ifaces) == 0 {
		return nil
	}
	n := &statsapi.NetworkStats{Time: ts}
	for _, i := range ifaces {
		is := statsapi.InterfaceStats{Name: i.name, RxBytes: ptr(i.rxBytes), RxErrors: ptr(i.rxErrors), TxBytes: ptr(i.txBytes), TxErrors: ptr(i.txErrs)}
		n.Interfaces = append(n.Interfaces, is)
		if i.name == "eth0" {
			n.InterfaceStats = is
		}
	}
	if n.InterfaceStats.Name == "" {
		n.InterfaceStats = n.Interfaces[0]
	}
	return n
}

func fsStats(ts metav1.Time, u fsUsage) *statsapi.FsStats {
	s := &statsapi.FsStats{Time: ts, AvailableBytes: ptr(u.available), CapacityBytes: ptr(u.capacity), UsedBytes: ptr(u.used)}
	if u.inodes > 0 {
		s.Inodes, s.InodesFree, s.InodesUsed = ptr(u.inodes), ptr(u.inodesFree), ptr(sub(u.inodes, u.inodesFree))
	}
	return s
}

func ptr(v uint64) *uint64 { return &v }

func uint64Ptr(v *runtimeapi.UInt64Value) *uint64 {
	if v == nil {
		return nil
	}
	return ptr(v.GetValue())
}

// rates turns cumulative CPU times into usage rates: each key keeps the
// two latest samples, at least half an interval apart; a rate is taken
// over at least a second.
type rates struct {
	minSpacing time.Duration
	mu         sync.Mutex
	samples    map[string][]sample
}

type sample struct {
	t time.Time
	v uint64
}

const minRateWindow = time.Second

func newRates(interval time.Duration) *rates {
	return &rates{minSpacing: interval / 2, samples: map[string][]sample{}}
}

// observe records usage at t and returns the rate in nanocores since the
// newest sample at least a second older, nil when there is none (the
// first sample, or a counter that went back: a new container).
func (r *rates) observe(key string, t time.Time, v uint64) *uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.samples[key]
	var rate *uint64
	for i := len(h) - 1; i >= 0; i-- {
		dt := t.Sub(h[i].t)
		if dt < minRateWindow {
			continue
		}
		if v >= h[i].v {
			nc := uint64(float64(v-h[i].v) / dt.Seconds())
			rate = &nc
		}
		break
	}
	if len(h) > 0 && v < h[len(h)-1].v {
		h = nil // a reset: start again
	}
	if len(h) == 0 || t.Sub(h[len(h)-1].t) >= r.minSpacing {
		h = append(h, sample{t: t, v: v})
		if len(h) > 2 {
			h = h[len(h)-2:]
		}
	}
	r.samples[key] = h
	return rate
}

// forget drops the keys not sampled since before.
func (r *rates) forget(before time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, h := range r.samples {
		if len(h) == 0 || h[len(h)-1].t.Before(before) {
			delete(r.samples, k)
		}
	}
}
