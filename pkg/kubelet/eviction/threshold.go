package eviction

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	cliflag "k8s.io/component-base/cli/flag"
)

// Signal is what a threshold watches, in upstream's names.
type Signal string

// Upstream's signals.
const (
	// SignalMemoryAvailable is the node's memory less its working set.
	SignalMemoryAvailable Signal = "memory.available"
	// SignalAllocatableMemoryAvailable is the pods' cgroup's memory
	// less the pods' working set.
	SignalAllocatableMemoryAvailable Signal = "allocatableMemory.available"
	// SignalNodeFsAvailable is the free space of the kubelet's root dir's
	// filesystem (volumes, logs).
	SignalNodeFsAvailable  Signal = "nodefs.available"
	SignalNodeFsInodesFree Signal = "nodefs.inodesFree"
	// SignalImageFsAvailable is the free space of the runtime's root dir's
	// filesystem (images, writable layers).
	SignalImageFsAvailable  Signal = "imagefs.available"
	SignalImageFsInodesFree Signal = "imagefs.inodesFree"
	// The containerfs signals are accepted and ignored, as upstream
	// overrides them: the container filesystem is the nodefs or imagefs.
	SignalContainerFsAvailable  Signal = "containerfs.available"
	SignalContainerFsInodesFree Signal = "containerfs.inodesFree"
	// SignalPIDAvailable is pid_max (or threads-max) less the processes.
	SignalPIDAvailable Signal = "pid.available"
)

// Resources a threshold reclaims besides memory and ephemeral-storage,
// as upstream names them in its messages.
const (
	resourceInodes corev1.ResourceName = "inodes"
	resourcePIDs   corev1.ResourceName = "pids"
)

// signals maps each signal to the node condition it raises and the
// resource evicting a pod reclaims.
var signals = map[Signal]struct {
	condition corev1.NodeConditionType
	resource  corev1.ResourceName
}{
	SignalMemoryAvailable:            {corev1.NodeMemoryPressure, corev1.ResourceMemory},
	SignalAllocatableMemoryAvailable: {corev1.NodeMemoryPressure, corev1.ResourceMemory},
	SignalNodeFsAvailable:            {corev1.NodeDiskPressure, corev1.ResourceEphemeralStorage},
	SignalNodeFsInodesFree:           {corev1.NodeDiskPressure, resourceInodes},
	SignalImageFsAvailable:           {corev1.NodeDiskPressure, corev1.ResourceEphemeralStorage},
	SignalImageFsInodesFree:          {corev1.NodeDiskPressure, resourceInodes},
	SignalContainerFsAvailable:       {corev1.NodeDiskPressure, corev1.ResourceEphemeralStorage},
	SignalContainerFsInodesFree:      {corev1.NodeDiskPressure, resourceInodes},
	SignalPIDAvailable:               {corev1.NodePIDPressure, resourcePIDs},
}

// Value is a threshold's amount: a quantity, else a fraction of the
// capacity.
type Value struct {
	Quantity *resource.Quantity
	// Percentage is a fraction (0.1 for 10%).
	Percentage float32
}

// of is the value's quantity for a resource of that capacity.
func (v Value) of(capacity resource.Quantity) resource.Quantity {
	if v.Quantity != nil {
		return v.Quantity.DeepCopy()
	}
	return *resource.NewQuantity(int64(float64(capacity.Value())*float64(v.Percentage)), resource.BinarySI)
}

func (v Value) String() string {
	if v.Quantity != nil {
		return v.Quantity.String()
	}
	// Rounded: a float32 fraction is not exact in percent.
	return strconv.FormatFloat(math.Round(float64(v.Percentage)*1e6)/1e4, 'f', -1, 64) + "%"
}

// Threshold evicts when its signal's available amount is below Value:
// at once when GracePeriod is 0 (a hard threshold), else once it held
// that long (soft).
type Threshold struct {
	Signal      Signal
	Value       Value
	GracePeriod time.Duration
	// MinReclaim is how far past Value reclaiming goes before the
	// threshold counts as resolved.
	MinReclaim *Value
}

// Hard tells whether the threshold evicts at once.
func (t Threshold) Hard() bool { return t.GracePeriod == 0 }

func (t Threshold) String() string {
	s := fmt.Sprintf("%s<%s", t.Signal, t.Value)
	if t.GracePeriod > 0 {
		s += " for " + t.GracePeriod.String()
	}
	return s
}

// key identifies a threshold in the manager's bookkeeping.
func (t Threshold) key() string {
	min := ""
	if t.MinReclaim != nil {
		min = t.MinReclaim.String()
	}
	return fmt.Sprintf("%s<%s/%s/%s", t.Signal, t.Value, t.GracePeriod, min)
}

// DefaultEvictionHard are upstream kubelet's --eviction-hard defaults on
// Linux.
var DefaultEvictionHard = map[string]string{
	"memory.available":   "100Mi",
	"nodefs.available":   "10%",
	"nodefs.inodesFree":  "5%",
	"imagefs.available":  "15%",
	"imagefs.inodesFree": "5%",
}

// DefaultThresholds are upstream kubelet's: DefaultEvictionHard, plus
// allocatableMemory.available as --enforce-node-allocatable=pods adds.
func DefaultThresholds() []Threshold {
	// The defaults parse (a unit test checks it).
	t, _ := ParseThresholds(DefaultEvictionHard, nil, nil, nil)
	return t
}

// ParseSignalMap parses a flag of upstream's forms: sep "<" for
// --eviction-hard and --eviction-soft ("memory.available<100Mi,
// nodefs.available<10%"), "=" for --eviction-soft-grace-period and
// --eviction-minimum-reclaim ("memory.available=1m30s").
func ParseSignalMap(s, sep string) (map[string]string, error) {
	out := map[string]string{}
	var v interface{ Set(string) error }
	switch sep {
	case "<":
		v = cliflag.NewLangleSeparatedMapStringString(&out)
	case "=":
		v = cliflag.NewMapStringString(&out)
	default:
		return nil, fmt.Errorf("unknown separator %q", sep)
	}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	if err := v.Set(s); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseThresholds parses upstream's --eviction-hard, --eviction-soft,
// --eviction-soft-grace-period and --eviction-minimum-reclaim maps, with
// upstream's rules (0% and 100% ignore a signal, a soft threshold needs a
// grace period) and adds allocatableMemory.available for a hard
// memory.available, as upstream's default --enforce-node-allocatable=pods
// does. The result is ordered by signal.
func ParseThresholds(hard, soft, softGracePeriod, minimumReclaim map[string]string) ([]Threshold, error) {
	hards, err := parseStatements(hard)
	if err != nil {
		return nil, err
	}
	softs, err := parseStatements(soft)
	if err != nil {
		return nil, err
	}
	periods := map[Signal]time.Duration{}
	for signal, v := range softGracePeriod {
		if err := validSignal(Signal(signal)); err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("eviction grace period of %s: %w", signal, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("invalid eviction grace period specified: %v, must be a positive value", v)
		}
		periods[Signal(signal)] = d
	}
	for i := range softs {
		d, ok := periods[softs[i].Signal]
		if !ok {
			return nil, fmt.Errorf("grace period must be specified for the soft eviction threshold %v", softs[i].Signal)
		}
		softs[i].GracePeriod = d
	}
	reclaims := map[Signal]Value{}
	for signal, v := range minimumReclaim {
		if err := validSignal(Signal(signal)); err != nil {
			return nil, err
		}
		value, err := parseValue(Signal(signal), v, true)
		if err != nil {
			return nil, err
		}
		reclaims[Signal(signal)] = value
	}
	all := append(hards, softs...)
	for i := range all {
		if r, ok := reclaims[all[i].Signal]; ok {
			all[i].MinReclaim = &r
		}
	}
	for _, t := range all {
		if t.Signal == SignalMemoryAvailable && t.Hard() {
			all = append(all, Threshold{Signal: SignalAllocatableMemoryAvailable, Value: t.Value, MinReclaim: t.MinReclaim})
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Signal != all[j].Signal {
			return all[i].Signal < all[j].Signal
		}
		return all[i].GracePeriod < all[j].GracePeriod
	})
	return all, nil
}

func validSignal(s Signal) error {
	if _, ok := signals[s]; !ok {
		return fmt.Errorf("unsupported eviction signal %v", s)
	}
	return nil
}

func parseStatements(statements map[string]string) ([]Threshold, error) {
	var out []Threshold
	for signal, v := range statements {
		s := Signal(signal)
		if err := validSignal(s); err != nil {
			return nil, err
		}
		v = strings.TrimSpace(v)
		if v == "0%" || v == "100%" {
			continue
		}
		value, err := parseValue(s, v, false)
		if err != nil {
			return nil, err
		}
		out = append(out, Threshold{Signal: s, Value: value})
	}
	return out, nil
}

// parseValue parses "10%" or a quantity; a minimum reclaim may be zero.
func parseValue(s Signal, v string, reclaim bool) (Value, error) {
	if strings.HasSuffix(v, "%") {
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 32)
		if err != nil {
			return Value{}, fmt.Errorf("eviction threshold %v: %w", s, err)
		}
		p := float32(f) / 100
		switch {
		case reclaim && p <= 0:
			return Value{}, fmt.Errorf("eviction percentage minimum reclaim %v must be positive: %s", s, v)
		case p < 0:
			return Value{}, fmt.Errorf("eviction percentage threshold %v must be >= 0%%: %s", s, v)
		case p > 1:
			return Value{}, fmt.Errorf("eviction percentage threshold %v must be <= 100%%: %s", s, v)
		}
		return Value{Percentage: p}, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return Value{}, fmt.Errorf("eviction threshold %v: %w", s, err)
	}
	switch {
	case reclaim && q.Sign() < 0:
		return Value{}, fmt.Errorf("negative eviction minimum reclaim specified for %v", s)
	case !reclaim && q.Sign() <= 0:
		return Value{}, fmt.Errorf("eviction threshold %v must be positive: %s", s, &q)
	}
	return Value{Quantity: &q}, nil
}
