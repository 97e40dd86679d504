package eviction

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// Flags are upstream kubelet's eviction flags.
type Flags struct {
	// Hard: nil (the flag not given) means DefaultEvictionHard; given
	// empty, no hard thresholds, as upstream.
	Hard, Soft, SoftGracePeriod, MinimumReclaim map[string]string
	PressureTransitionPeriod                    time.Duration
	MaxPodGracePeriod                           int32
}

// AddFlags adds --eviction-hard, --eviction-soft,
// --eviction-soft-grace-period, --eviction-minimum-reclaim,
// --eviction-pressure-transition-period and
// --eviction-max-pod-grace-period with upstream's syntax and defaults.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	if f.PressureTransitionPeriod == 0 {
		f.PressureTransitionPeriod = DefaultPressureTransitionPeriod
	}
	fs.Var(cliflag.NewLangleSeparatedMapStringString(&f.Hard), "eviction-hard", "A set of eviction thresholds (e.g. memory.available<1Gi) that if met would trigger a pod eviction. Default: memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%.")
	fs.Var(cliflag.NewLangleSeparatedMapStringString(&f.Soft), "eviction-soft", "A set of eviction thresholds (e.g. memory.available<1.5Gi) that if met over a corresponding grace period would trigger a pod eviction.")
	fs.Var(cliflag.NewMapStringString(&f.SoftGracePeriod), "eviction-soft-grace-period", "A set of eviction grace periods (e.g. memory.available=1m30s) that correspond to how long a soft eviction threshold must hold before triggering a pod eviction.")
	fs.Var(cliflag.NewMapStringString(&f.MinimumReclaim), "eviction-minimum-reclaim", "A set of minimum reclaims (e.g. imagefs.available=2Gi) that describes the minimum amount of resource the kubelet will reclaim when performing a pod eviction if that resource is under pressure.")
	fs.DurationVar(&f.PressureTransitionPeriod, "eviction-pressure-transition-period", f.PressureTransitionPeriod, "Duration for which the kubelet has to wait before transitioning out of an eviction pressure condition.")
	fs.Int32Var(&f.MaxPodGracePeriod, "eviction-max-pod-grace-period", f.MaxPodGracePeriod, "Maximum allowed grace period (in seconds) to use when terminating pods in response to a soft eviction threshold being met. If negative, defer to pod specified value.")
}

// Apply parses the flags into cfg's thresholds, transition period and
// maximum grace period.
func (f *Flags) Apply(cfg *Config) error {
	hard := f.Hard
	if hard == nil {
		hard = DefaultEvictionHard
	}
	thresholds, err := ParseThresholds(hard, f.Soft, f.SoftGracePeriod, f.MinimumReclaim)
	if err != nil {
		return fmt.Errorf("eviction flags: %w", err)
	}
	if thresholds == nil {
		// Given, and empty: none (nil would mean the defaults).
		thresholds = []Threshold{}
	}
	if f.PressureTransitionPeriod < 0 {
		return fmt.Errorf("--eviction-pressure-transition-period must not be negative, got %s", f.PressureTransitionPeriod)
	}
	cfg.Thresholds = thresholds
	cfg.PressureTransitionPeriod = f.PressureTransitionPeriod
	cfg.MaxPodGracePeriodSeconds = int64(f.MaxPodGracePeriod)
	return nil
}

// PodKiller is a runtime that stops pods in the background, as
// kubelet.Runtime's KillPod: called again, it reports whether the pod
// still runs.
type PodKiller interface {
	KillPod(ctx context.Context, pod *corev1.Pod, gracePeriod time.Duration) (container.SyncResult, error)
}

// KillWith is a Config.Kill through r.
func KillWith(r PodKiller) func(ctx context.Context, pod *corev1.Pod, gracePeriod time.Duration) (bool, error) {
	return func(ctx context.Context, pod *corev1.Pod, gracePeriod time.Duration) (bool, error) {
		res, err := r.KillPod(ctx, pod, gracePeriod)
		if err != nil {
			return false, err
		}
		return res.Status == nil || !res.Status.Running(), nil
	}
}
