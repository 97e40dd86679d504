package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"
	kubelettypes "k8s.io/kubelet/pkg/types"
)

// GCPolicy is upstream's container garbage collection policy.
type GCPolicy struct {
	// MinAge: a dead container younger than this stays.
	MinAge time.Duration
	// MaxPerPodContainer dead instances of each container of a pod stay
	// (the newest); negative: no limit.
	MaxPerPodContainer int
	// MaxContainers dead containers stay on the node; negative: no limit.
	MaxContainers int
}

// DefaultGCPolicy is upstream kubelet's: one dead instance of each
// container kept (for its lastState and `logs --previous`).
var DefaultGCPolicy = GCPolicy{MinAge: 0, MaxPerPodContainer: 1, MaxContainers: -1}

// defaultGCPeriod is upstream's ContainerGCPeriod.
const defaultGCPeriod = time.Minute

func (r *Runtime) runGarbageCollection(period time.Duration) {
	wait.Until(func() {
		if err := r.GarbageCollect(r.bg); err != nil && r.bg.Err() == nil {
			klog.ErrorS(err, "Container garbage collection failed")
		}
	}, period, r.bg.Done())
}

// gcContainer is a dead container the collector may remove.
type gcContainer struct {
	id, logPath string
	created     int64
	unknown     bool
}

// GarbageCollect removes dead containers beyond the policy (the oldest
// first, with their logs) and dead sandboxes with no containers left of
// pods that have a newer sandbox, as upstream's container GC.
func (r *Runtime) GarbageCollect(ctx context.Context) error {
	p := *r.cfg.GCPolicy
	containers, err := r.runtime.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	type unit struct{ uid, name string }
	units := map[unit][]gcContainer{}
	newest := time.Now().Add(-p.MinAge).UnixNano()
	for _, c := range containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING || c.CreatedAt > newest {
			continue
		}
		k := unit{c.Labels[kubelettypes.KubernetesPodUIDLabel], c.GetMetadata().GetName()}
		units[k] = append(units[k], gcContainer{id: c.Id, created: c.CreatedAt, unknown: c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN})
	}
	var errs []error
	removeOldest := func(list []gcContainer, keep int) []gcContainer {
		sort.Slice(list, func(i, j int) bool { return list[i].created > list[j].created })
		if keep < 0 {
			keep = 0
		}
		for i := len(list) - 1; i >= keep; i-- {
			if err := r.removeDead(ctx, list[i]); err != nil {
				errs = append(errs, err)
			}
		}
		return list[:min(keep, len(list))]
	}
	if p.MaxPerPodContainer >= 0 {
		for k, list := range units {
			if len(list) > p.MaxPerPodContainer {
				units[k] = removeOldest(list, p.MaxPerPodContainer)
			}
		}
	}
	if p.MaxContainers >= 0 {
		total := 0
		for _, list := range units {
			total += len(list)
		}
		if total > p.MaxContainers && len(units) > 0 {
			// As many per container as fit (at least one), then the
			// oldest of all.
			per := max(p.MaxContainers/len(units), 1)
			var all []gcContainer
			for _, list := range units {
				all = append(all, removeOldest(list, per)...)
			}
			if len(all) > p.MaxContainers {
				removeOldest(all, p.MaxContainers)
			}
		}
	}
	if err := r.collectSandboxes(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeDead removes a dead container and its log files; one in an
// unknown state is stopped first.
func (r *Runtime) removeDead(ctx context.Context, c gcContainer) error {
	if c.unknown {
		if err := r.runtime.StopContainer(ctx, c.id, int64(minimumGracePeriod/time.Second)); err != nil && !crierrors.IsNotFound(err) {
			return fmt.Errorf("stopping container %s in an unknown state: %w", c.id, err)
		}
	}
	logPath := c.logPath
	if st, err := r.runtime.ContainerStatus(ctx, c.id, false); err == nil {
		logPath = st.GetStatus().GetLogPath()
	}
	if err := r.runtime.RemoveContainer(ctx, c.id); err != nil && !crierrors.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", c.id, err)
	}
	if logPath != "" {
		_ = os.Remove(logPath)
		// Rotated ones too.
		if rotated, err := filepath.Glob(logPath + ".*"); err == nil {
			for _, f := range rotated {
				_ = os.Remove(f)
			}
		}
	}
	klog.V(4).InfoS("Removed dead container", "containerID", c.id)
	return nil
}

// collectSandboxes removes the sandboxes of each pod that are neither
// ready nor hold containers, but the newest.
func (r *Runtime) collectSandboxes(ctx context.Context) error {
	sandboxes, err := r.runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing sandboxes: %w", err)
	}
	containers, err := r.runtime.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	used := map[string]bool{}
	for _, c := range containers {
		used[c.PodSandboxId] = true
	}
	byPod := map[string][]*runtimeapi.PodSandbox{}
	for _, sb := range sandboxes {
		uid := sb.GetMetadata().GetUid()
		byPod[uid] = append(byPod[uid], sb)
	}
	var errs []error
	for _, list := range byPod {
		sort.Slice(list, func(i, j int) bool { return list[i].CreatedAt > list[j].CreatedAt })
		for _, sb := range list[1:] {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY || used[sb.Id] {
				continue
			}
			// Stopped already, but make sure: its network goes with it.
			if err := r.runtime.StopPodSandbox(ctx, sb.Id); err != nil && !crierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("stopping sandbox %s: %w", sb.Id, err))
				continue
			}
			if err := r.runtime.RemovePodSandbox(ctx, sb.Id); err != nil && !crierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing sandbox %s: %w", sb.Id, err))
				continue
			}
			klog.V(4).InfoS("Removed dead sandbox", "podUID", sb.GetMetadata().GetUid(), "sandbox", sb.Id)
		}
	}
	return errors.Join(errs...)
}
