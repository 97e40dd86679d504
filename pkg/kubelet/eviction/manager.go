// Package eviction is the kubelet's eviction manager, as upstream's
// (pkg/kubelet/eviction): every 10 s it reads the node's signals from the
// stats summary (memory.available, nodefs/imagefs available bytes and
// free inodes, pid.available), compares them with the thresholds (by
// default upstream's hard ones), reports MemoryPressure, DiskPressure
// and PIDPressure (held for the pressure transition period after the
// last crossing), and under pressure evicts one pod at a time in
// upstream's order: its status becomes Failed with reason Evicted and a
// DisruptionTarget condition, then it is killed. A pod whose emptyDir
// exceeds its sizeLimit, or whose containers exceed their
// ephemeral-storage limits, is evicted whatever the node's pressure. It
// also tells which new pods a pressed node rejects.
package eviction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/kubelet/nodestatus"
	"github.com/skiff-dev/skiff/pkg/kubelet/qos"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

// Upstream kubelet's defaults.
const (
	// DefaultMonitoringInterval is how often the signals are read.
	DefaultMonitoringInterval = 10 * time.Second
	// DefaultPressureTransitionPeriod is how long a pressure condition
	// stays after its threshold was last crossed
	// (--eviction-pressure-transition-period).
	DefaultPressureTransitionPeriod = 5 * time.Minute
	// hardEvictionGracePeriod is what a pod evicted for a hard threshold
	// or a local storage limit gets to stop.
	hardEvictionGracePeriod = time.Second
	// cleanupTimeout is how long an evicted pod may take to stop before
	// the next is looked at.
	cleanupTimeout  = 30 * time.Second
	cleanupPollFreq = time.Second
	// systemCriticalPriority is system-node-critical's priority and up:
	// pods never evicted.
	systemCriticalPriority = 2_000_000_000
)

// Upstream's reasons and messages.
const (
	// Reason is an evicted pod's status reason and its event's, and a
	// rejected pod's.
	Reason = "Evicted"
	// ReasonThresholdMet is the node's event when it starts to reclaim.
	ReasonThresholdMet = "EvictionThresholdMet"

	nodeLowMessageFmt        = "The node was low on resource: %v. "
	thresholdMetMessageFmt   = "Threshold quantity: %v, available: %v. "
	containerMessageFmt      = "Container %s was using %s, request is %s, has larger consumption of %v. "
	podMessageFmt            = "Pod %s was using %s, request is %s, has larger consumption of %v. "
	nodeConditionMessageFmt  = "The node had condition: %v. "
	emptyDirMessageFmt       = "Usage of EmptyDir volume %q exceeds the limit %q. "
	podEphemeralMessageFmt   = "Pod ephemeral local storage usage exceeds the total limit of containers %s. "
	containerEphemeralMsgFmt = "Container %s exceeded its local ephemeral storage limit %q. "

	// Annotations of the Evicted event, as upstream's.
	OffendingContainersKey      = "offending_containers"
	OffendingContainersUsageKey = "offending_containers_usage"
	OffendingPodKey             = "offending_pod"
	OffendingPodUsageKey        = "offending_pod_usage"
	StarvedResourceKey          = "starved_resource"
)

// Config is one node's eviction manager.
type Config struct {
	NodeName string
	// Thresholds: nil means DefaultThresholds(); an empty list turns
	// pressure eviction off (the local storage limits still evict).
	Thresholds []Threshold
	// PressureTransitionPeriod: 0 means DefaultPressureTransitionPeriod.
	PressureTransitionPeriod time.Duration
	// MonitoringInterval: 0 means DefaultMonitoringInterval.
	MonitoringInterval time.Duration
	// MaxPodGracePeriodSeconds bounds the grace period of a pod evicted
	// for a soft threshold (--eviction-max-pod-grace-period); negative:
	// the pod's own.
	MaxPodGracePeriodSeconds int64
	// RootDir (the kubelet's) and ImageFsDir (the runtime's root) tell
	// whether the imagefs is a filesystem of its own, which changes what
	// counts against each.
	RootDir, ImageFsDir string

	// Summary reads the node's stats (/stats/summary with filesystems).
	Summary func(ctx context.Context) (*statsapi.Summary, error)
	// VolumeUsage is the bytes used by each emptyDir volume of a pod, by
	// volume name (the volume manager's Usage); nil: the summary's
	// volume stats.
	VolumeUsage func(uid types.UID) map[string]int64
	// Pods are the pods bound to the node; terminal ones are skipped.
	Pods func() []*corev1.Pod
	// Kill stops the pod's containers within gracePeriod. It returns at
	// once and is called again (about every second) until it reports
	// the pod stopped, or for at most 30 s.
	Kill func(ctx context.Context, pod *corev1.Pod, gracePeriod time.Duration) (stopped bool, err error)
	// Reclaim, if set, frees disk without evicting (dead containers,
	// unused images) before pods are evicted for a filesystem.
	Reclaim func(ctx context.Context) error
	// Client writes the evicted pods' status.
	Client   kubernetes.Interface
	Recorder record.EventRecorder
	Clock    clock.WithTicker
}

// Manager watches one node's signals and evicts its pods.
type Manager struct {
	cfg        Config
	thresholds []Threshold
	rankers    map[Signal]func([]*corev1.Pod, usage)
	dedicated  bool
	nodeRef    *corev1.ObjectReference

	mu sync.RWMutex
	// conditions are the pressure conditions reported now.
	conditions []corev1.NodeConditionType
	// conditionSeen is when each condition's threshold was last crossed.
	conditionSeen map[corev1.NodeConditionType]time.Time
	// firstCrossed is when each threshold crossed now was first crossed.
	firstCrossed map[string]time.Time
	// enforced are the thresholds crossed for their grace period, until
	// their minimum reclaim is met.
	enforced []Threshold
	lastObs  map[Signal]observation
}

// New checks the config and finds whether the imagefs is dedicated.
func New(cfg Config) (*Manager, error) {
	if cfg.Summary == nil || cfg.Pods == nil || cfg.Kill == nil || cfg.Client == nil {
		return nil, errors.New("eviction manager: Summary, Pods, Kill and Client are required")
	}
	if cfg.Thresholds == nil {
		cfg.Thresholds = DefaultThresholds()
	}
	if cfg.PressureTransitionPeriod == 0 {
		cfg.PressureTransitionPeriod = DefaultPressureTransitionPeriod
	}
	if cfg.MonitoringInterval == 0 {
		cfg.MonitoringInterval = DefaultMonitoringInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	m := &Manager{
		cfg:           cfg,
		dedicated:     dedicatedFs(cfg.RootDir, cfg.ImageFsDir),
		nodeRef:       &corev1.ObjectReference{Kind: "Node", Name: cfg.NodeName, UID: types.UID(cfg.NodeName)},
		conditionSeen: map[corev1.NodeConditionType]time.Time{},
		firstCrossed:  map[string]time.Time{},
	}
	for _, t := range cfg.Thresholds {
		if err := validSignal(t.Signal); err != nil {
			return nil, err
		}
		if t.Signal == SignalContainerFsAvailable || t.Signal == SignalContainerFsInodesFree {
			// As upstream: the container filesystem is the nodefs (or the
			// imagefs), whose thresholds apply.
			klog.InfoS("Eviction manager: ignoring a containerfs threshold; the nodefs and imagefs thresholds cover it", "threshold", t.String())
			continue
		}
		m.thresholds = append(m.thresholds, t)
	}
	m.rankers = rankers(m.dedicated)
	return m, nil
}

// dedicatedFs tells whether imageFsDir is on another filesystem than
// rootDir.
func dedicatedFs(rootDir, imageFsDir string) bool {
	if rootDir == "" || imageFsDir == "" {
		return false
	}
	a, errA := os.Stat(rootDir)
	b, errB := os.Stat(imageFsDir)
	if errA != nil || errB != nil {
		return false
	}
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	return okA && okB && sa.Dev != sb.Dev
}

// Thresholds are those the manager enforces.
func (m *Manager) Thresholds() []Threshold { return append([]Threshold(nil), m.thresholds...) }

// Run reads the signals every MonitoringInterval until ctx ends; after an
// eviction it waits for the pod to stop (at most 30 s), then looks again
// at once, as upstream.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	logger.Info("Eviction manager: starting control loop", "thresholds", fmt.Sprint(m.thresholds))
	for ctx.Err() == nil {
		if evicted := m.synchronize(ctx); evicted != nil {
			m.waitForCleanup(ctx, evicted)
			continue
		}
		select {
		case <-ctx.Done():
		case <-m.cfg.Clock.After(m.cfg.MonitoringInterval):
		}
	}
}

// Pressure is what the node is short of, for its conditions.
func (m *Manager) Pressure() nodestatus.Pressure {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return nodestatus.Pressure{
		Memory: hasCondition(m.conditions, corev1.NodeMemoryPressure),
		Disk:   hasCondition(m.conditions, corev1.NodeDiskPressure),
		PID:    hasCondition(m.conditions, corev1.NodePIDPressure),
	}
}

// Admit tells whether a new pod may start on the node, as upstream's
// eviction admit handler: under memory pressure alone only BestEffort
// pods are refused (unless they tolerate the memory-pressure taint),
// under any other pressure every pod; critical pods always start.
func (m *Manager) Admit(pod *corev1.Pod) (ok bool, reason, message string) {
	m.mu.RLock()
	conditions := append([]corev1.NodeConditionType(nil), m.conditions...)
	m.mu.RUnlock()
	if len(conditions) == 0 || critical(pod) {
		return true, "", ""
	}
	if len(conditions) == 1 && conditions[0] == corev1.NodeMemoryPressure {
		if qos.PodQOS(pod) != corev1.PodQOSBestEffort {
			return true, "", ""
		}
		taint := &corev1.Taint{Key: corev1.TaintNodeMemoryPressure, Effect: corev1.TaintEffectNoSchedule}
		if corev1helpers.TolerationsTolerateTaint(klog.Background(), pod.Spec.Tolerations, taint, false) {
			return true, "", ""
		}
	}
	return false, Reason, fmt.Sprintf(nodeConditionMessageFmt, conditions)
}

// synchronize reads the signals once, updates the conditions, and evicts
// at most one pod under pressure (or every pod over a local storage
// limit); it returns the pods evicted.
func (m *Manager) synchronize(ctx context.Context) []*corev1.Pod {
	logger := klog.FromContext(ctx)
	summary, err := m.cfg.Summary(ctx)
	if err != nil {
		logger.Error(err, "Eviction manager: failed to get summary stats")
		return nil
	}
	now := m.cfg.Clock.Now()
	obs := observe(summary)
	u := podUsage(summary, m.cfg.VolumeUsage)

	crossed := crossedThresholds(logger, m.thresholds, obs, false)
	m.mu.RLock()
	enforcedBefore := m.enforced
	m.mu.RUnlock()
	// Thresholds evicted for stay until their minimum reclaim is met.
	for _, t := range crossedThresholds(logger, enforcedBefore, obs, true) {
		if !hasThreshold(crossed, t) {
			crossed = append(crossed, t)
		}
	}

	m.mu.Lock()
	firstCrossed := map[string]time.Time{}
	for _, t := range crossed {
		at, ok := m.firstCrossed[t.key()]
		if !ok {
			at = now
		}
		firstCrossed[t.key()] = at
	}
	for _, c := range conditionsOf(crossed) {
		m.conditionSeen[c] = now
	}
	var conditions []corev1.NodeConditionType
	for _, c := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		if at, ok := m.conditionSeen[c]; ok && now.Sub(at) < m.cfg.PressureTransitionPeriod {
			conditions = append(conditions, c)
		}
	}
	var enforced []Threshold
	for _, t := range crossed {
		if d := now.Sub(firstCrossed[t.key()]); d >= t.GracePeriod {
			enforced = append(enforced, t)
		} else {
			logger.V(2).Info("Eviction manager: eviction criteria not yet met", "threshold", t.String(), "duration", d)
		}
	}
	if !sameConditions(m.conditions, conditions) {
		logger.Info("Eviction manager: node pressure changed", "conditions", conditions)
	}
	m.conditions, m.firstCrossed, m.enforced = conditions, firstCrossed, enforced
	// Act only on signals read anew since the last time.
	var fresh []Threshold
	for _, t := range enforced {
		o, last := obs[t.Signal], m.lastObs[t.Signal]
		if o.time.IsZero() || last.time.IsZero() || o.time.After(last.time) {
			fresh = append(fresh, t)
		}
	}
	m.lastObs = obs
	m.mu.Unlock()

	var pods []*corev1.Pod
	for _, p := range m.cfg.Pods() {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			pods = append(pods, p)
		}
	}
	if evicted := m.localStorageEviction(ctx, pods, u); len(evicted) > 0 {
		return evicted
	}
	if len(fresh) == 0 {
		logger.V(3).Info("Eviction manager: no resources are starved")
		return nil
	}
	// Memory first, as upstream.
	sort.SliceStable(fresh, func(i, j int) bool {
		return signals[fresh[i].Signal].resource == corev1.ResourceMemory && signals[fresh[j].Signal].resource != corev1.ResourceMemory
	})
	t := fresh[0]
	res := signals[t.Signal].resource
	logger.Info("Eviction manager: attempting to reclaim", "resourceName", res)
	m.cfg.Recorder.Eventf(m.nodeRef, corev1.EventTypeWarning, ReasonThresholdMet, "Attempting to reclaim %s", res)
	if m.reclaimNodeResources(ctx, t) {
		logger.Info("Eviction manager: able to reduce resource pressure without evicting pods.", "resourceName", res)
		return nil
	}
	if len(pods) == 0 {
		logger.Error(nil, "Eviction manager: eviction thresholds have been met, but no pods are active to evict")
		return nil
	}
	rankFor, ok := m.rankers[t.Signal]
	if !ok {
		logger.Error(nil, "Eviction manager: no ranking function for signal", "threshold", t.Signal)
		return nil
	}
	rankFor(pods, u)
	logger.Info("Eviction manager: must evict pod(s) to reclaim", "resourceName", res, "pods", klog.KObjSlice(pods))
	for _, pod := range pods {
		grace := hardEvictionGracePeriod
		if !t.Hard() {
			grace = m.softGracePeriod(pod)
		}
		message, annotations := evictionMessage(res, pod, u, fresh, obs)
		if m.evict(ctx, pod, grace, message, annotations, true) {
			return []*corev1.Pod{pod}
		}
	}
	logger.Info("Eviction manager: unable to evict any pods from the node")
	return nil
}

func (m *Manager) softGracePeriod(pod *corev1.Pod) time.Duration {
	seconds := m.cfg.MaxPodGracePeriodSeconds
	if pod.Spec.TerminationGracePeriodSeconds != nil && (seconds < 0 || *pod.Spec.TerminationGracePeriodSeconds < seconds) {
		seconds = *pod.Spec.TerminationGracePeriodSeconds
	}
	return time.Duration(max(seconds, 0)) * time.Second
}

// reclaimNodeResources frees disk without evicting, for a filesystem
// threshold; it tells whether no threshold is crossed after.
func (m *Manager) reclaimNodeResources(ctx context.Context, t Threshold) bool {
	if m.cfg.Reclaim == nil || signals[t.Signal].condition != corev1.NodeDiskPressure {
		return false
	}
	logger := klog.FromContext(ctx)
	if err := m.cfg.Reclaim(ctx); err != nil {
		logger.Info("Eviction manager: unexpected error when attempting to reduce resource pressure", "resourceName", signals[t.Signal].resource, "err", err)
	}
	summary, err := m.cfg.Summary(ctx)
	if err != nil {
		logger.Error(err, "Eviction manager: failed to get summary stats after resource reclaim")
		return false
	}
	return len(crossedThresholds(logger, m.thresholds, observe(summary), true)) == 0
}

// localStorageEviction evicts, whatever the node's pressure, the pods
// over an emptyDir sizeLimit, their containers' total ephemeral-storage
// limit, or a container's.
func (m *Manager) localStorageEviction(ctx context.Context, pods []*corev1.Pod, u usage) []*corev1.Pod {
	var evicted []*corev1.Pod
	for _, pod := range pods {
		ps, ok := u(pod)
		if !ok {
			continue
		}
		if msg := m.localStorageViolation(pod, ps); msg != "" {
			if m.evict(ctx, pod, hardEvictionGracePeriod, msg, nil, false) {
				evicted = append(evicted, pod)
			}
		}
	}
	return evicted
}

// localStorageViolation is the message of the first local storage limit
// the pod exceeds, in upstream's order; "" if none.
func (m *Manager) localStorageViolation(pod *corev1.Pod, ps *podStats) string {
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Sign() <= 0 {
			continue
		}
		used, ok := ps.volumes[v.Name]
		if ok && resource.NewQuantity(int64(used), resource.BinarySI).Cmp(*v.EmptyDir.SizeLimit) > 0 {
			return fmt.Sprintf(emptyDirMessageFmt, v.Name, v.EmptyDir.SizeLimit.String())
		}
	}
	limits := map[string]resource.Quantity{}
	var total resource.Quantity
	hasTotal := false
	add := func(c *corev1.Container) {
		if l, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok {
			total.Add(l)
			hasTotal = true
			if !l.IsZero() {
				limits[c.Name] = l
			}
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		// Sidecars run with the pod; other init containers are done.
		if c := &pod.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	if hasTotal {
		used := ps.disk(pod, fsParts{rootfs: true, logs: true, volumes: true}, corev1.ResourceEphemeralStorage)
		if resource.NewQuantity(used, resource.BinarySI).Cmp(total) > 0 {
			return fmt.Sprintf(podEphemeralMessageFmt, total.String())
		}
	}
	for _, c := range ps.Containers {
		limit, ok := limits[c.Name]
		if !ok {
			continue
		}
		used := usedBytes(c.Logs)
		if !m.dedicated {
			used += usedBytes(c.Rootfs)
		}
		if limit.Cmp(*resource.NewQuantity(used, resource.BinarySI)) < 0 {
			return fmt.Sprintf(containerEphemeralMsgFmt, c.Name, limit.String())
		}
	}
	return ""
}

// evict records the eviction, writes the pod's Failed status and starts
// its kill; a critical pod is not evicted.
func (m *Manager) evict(ctx context.Context, pod *corev1.Pod, grace time.Duration, message string, annotations map[string]string, disruption bool) bool {
	logger := klog.FromContext(ctx)
	if critical(pod) {
		logger.Error(nil, "Eviction manager: cannot evict a critical pod", "pod", klog.KObj(pod))
		return false
	}
	m.cfg.Recorder.AnnotatedEventf(pod, annotations, corev1.EventTypeWarning, Reason, "%s", message)
	logger.Info("Evicting pod", "pod", klog.KObj(pod), "podUID", pod.UID, "message", message, "gracePeriod", grace)
	// The status first: a Failed pod is not restarted by its workers
	// while it is killed.
	if err := m.writeStatus(ctx, pod, message, disruption); err != nil {
		logger.Error(err, "Eviction manager: writing the evicted pod's status failed", "pod", klog.KObj(pod))
	}
	if _, err := m.cfg.Kill(ctx, pod, grace); err != nil {
		logger.Error(err, "Eviction manager: pod failed to evict", "pod", klog.KObj(pod))
	} else {
		logger.Info("Eviction manager: pod is evicted successfully", "pod", klog.KObj(pod))
	}
	return true
}

// writeStatus patches the pod's status as upstream's kubelet leaves an
// evicted pod: Failed, reason Evicted, the message, not ready, and (for
// pressure) a DisruptionTarget condition.
func (m *Manager) writeStatus(ctx context.Context, pod *corev1.Pod, message string, disruption bool) error {
	now := metav1.NewTime(m.cfg.Clock.Now())
	var conditions []corev1.PodCondition
	if disruption {
		conditions = append(conditions, corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, ObservedGeneration: pod.Generation,
			Reason: corev1.PodReasonTerminationByKubelet, Message: message, LastTransitionTime: now,
		})
	}
	for _, c := range pod.Status.Conditions {
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status == corev1.ConditionTrue {
			conditions = append(conditions, corev1.PodCondition{Type: c.Type, Status: corev1.ConditionFalse,
				ObservedGeneration: c.ObservedGeneration, Reason: status.ReasonPodFailed, LastTransitionTime: now})
		}
	}
	patch := map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status": map[string]any{
			"phase": corev1.PodFailed, "reason": Reason, "message": message, "conditions": conditions,
		},
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = m.cfg.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patching status of pod %s: %w", klog.KObj(pod), err)
	}
	return nil
}

// waitForCleanup waits until the evicted pods stopped, at most
// cleanupTimeout.
func (m *Manager) waitForCleanup(ctx context.Context, pods []*corev1.Pod) {
	logger := klog.FromContext(ctx)
	timeout := m.cfg.Clock.NewTimer(cleanupTimeout)
	defer timeout.Stop()
	ticker := m.cfg.Clock.NewTicker(cleanupPollFreq)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timeout.C():
			logger.Info("Eviction manager: timed out waiting for pods to be cleaned up", "pods", klog.KObjSlice(pods))
			return
		case <-ticker.C():
		}
		done := true
		for _, pod := range pods {
			stopped, err := m.cfg.Kill(ctx, pod, hardEvictionGracePeriod)
			if err != nil || !stopped {
				done = false
			}
		}
		if done {
			logger.Info("Eviction manager: pods successfully cleaned up", "pods", klog.KObjSlice(pods))
			return
		}
	}
}

// evictionMessage is upstream's message for a pod evicted to reclaim
// res, and the event's annotations.
func evictionMessage(res corev1.ResourceName, pod *corev1.Pod, u usage, thresholds []Threshold, obs map[Signal]observation) (string, map[string]string) {
	var b strings.Builder
	fmt.Fprintf(&b, nodeLowMessageFmt, res)
	for _, t := range thresholds {
		if signals[t.Signal].resource != res {
			continue
		}
		if o, ok := obs[t.Signal]; ok {
			q := t.Value.of(o.capacity)
			fmt.Fprintf(&b, thresholdMetMessageFmt, q.String(), o.available.String())
			break
		}
	}
	annotations := map[string]string{}
	ps, ok := u(pod)
	if !ok {
		return b.String(), annotations
	}
	if res == corev1.ResourceMemory && pod.Spec.Resources != nil && ps.Memory != nil {
		if req, ok := pod.Spec.Resources.Requests[corev1.ResourceMemory]; ok {
			used := resource.NewQuantity(ps.workingSet(), resource.BinarySI)
			fmt.Fprintf(&b, podMessageFmt, pod.Name, used.String(), req.String(), res)
			annotations[OffendingPodKey], annotations[OffendingPodUsageKey] = pod.Name, used.String()
		}
	}
	var names, usages []string
	containers := append(append([]corev1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...)
	for _, cs := range ps.Containers {
		for _, c := range containers {
			if c.Name != cs.Name {
				continue
			}
			req := c.Resources.Requests[res]
			var used *resource.Quantity
			switch res {
			case corev1.ResourceEphemeralStorage:
				if cs.Rootfs != nil && cs.Rootfs.UsedBytes != nil && cs.Logs != nil && cs.Logs.UsedBytes != nil {
					used = resource.NewQuantity(int64(*cs.Rootfs.UsedBytes+*cs.Logs.UsedBytes), resource.BinarySI)
				}
			case corev1.ResourceMemory:
				if cs.Memory != nil && cs.Memory.WorkingSetBytes != nil {
					used = resource.NewQuantity(int64(*cs.Memory.WorkingSetBytes), resource.BinarySI)
				}
			}
			if used != nil && used.Cmp(req) > 0 {
				fmt.Fprintf(&b, containerMessageFmt, c.Name, used.String(), req.String(), res)
				names, usages = append(names, c.Name), append(usages, used.String())
			}
			break
		}
	}
	annotations[OffendingContainersKey] = strings.Join(names, ",")
	annotations[OffendingContainersUsageKey] = strings.Join(usages, ",")
	annotations[StarvedResourceKey] = string(res)
	return b.String(), annotations
}

// crossedThresholds are the thresholds whose signal is below their value
// (plus the minimum reclaim, if asked).
func crossedThresholds(logger klog.Logger, thresholds []Threshold, obs map[Signal]observation, withMinReclaim bool) []Threshold {
	var out []Threshold
	for _, t := range thresholds {
		o, ok := obs[t.Signal]
		if !ok {
			logger.V(4).Info("Eviction manager: no observation found for eviction signal", "signal", t.Signal)
			continue
		}
		q := t.Value.of(o.capacity)
		if withMinReclaim && t.MinReclaim != nil {
			q.Add(t.MinReclaim.of(o.capacity))
		}
		if q.Cmp(o.available) > 0 {
			out = append(out, t)
		}
	}
	return out
}

func hasThreshold(list []Threshold, t Threshold) bool {
	for _, x := range list {
		if x.key() == t.key() {
			return true
		}
	}
	return false
}

func conditionsOf(thresholds []Threshold) []corev1.NodeConditionType {
	var out []corev1.NodeConditionType
	for _, t := range thresholds {
		if c := signals[t.Signal].condition; !hasCondition(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func hasCondition(list []corev1.NodeConditionType, c corev1.NodeConditionType) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

func sameConditions(a, b []corev1.NodeConditionType) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// critical pods are never evicted nor refused, as upstream's
// IsCriticalPod: static and mirror pods, and system-critical priority.
func critical(pod *corev1.Pod) bool {
	if src, ok := pod.Annotations["kubernetes.io/config.source"]; ok && src != "api" {
		return true
	}
	if _, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return true
	}
	return pod.Spec.Priority != nil && *pod.Spec.Priority >= systemCriticalPriority
}
