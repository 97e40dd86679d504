package eviction

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestDefaultThresholds(t *testing.T) {
	got := fmt.Sprint(DefaultThresholds())
	want := "[allocatableMemory.available<100Mi imagefs.available<15% imagefs.inodesFree<5% memory.available<100Mi nodefs.available<10% nodefs.inodesFree<5%]"
	if got != want {
		t.Errorf("DefaultThresholds() = %s, want %s", got, want)
	}
	for _, th := range DefaultThresholds() {
		if !th.Hard() {
			t.Errorf("%s is not hard", th)
		}
	}
}

func TestParseThresholds(t *testing.T) {
	parse := func(hard, soft, grace, reclaim string) ([]Threshold, error) {
		var maps []map[string]string
		for i, s := range []string{hard, soft, grace, reclaim} {
			sep := "<"
			if i >= 2 {
				sep = "="
			}
			m, err := ParseSignalMap(s, sep)
			if err != nil {
				return nil, err
			}
			maps = append(maps, m)
		}
		return ParseThresholds(maps[0], maps[1], maps[2], maps[3])
	}
	for _, tc := range []struct {
		name                      string
		hard, soft, grace, reclai string
		want, err                 string
	}{
		{name: "hard", hard: "memory.available<100Mi,nodefs.available<10%",
			want: "[allocatableMemory.available<100Mi memory.available<100Mi nodefs.available<10%]"},
		{name: "spaces and percentages", hard: " pid.available < 10% , imagefs.available<12.5%",
			want: "[imagefs.available<12.5% pid.available<10%]"},
		{name: "0% and 100% ignore a signal", hard: "nodefs.available<0%,imagefs.available<100%,memory.available<1Gi",
			want: "[allocatableMemory.available<1Gi memory.available<1Gi]"},
		{name: "soft with grace", soft: "memory.available<1.5Gi", grace: "memory.available=1m30s",
			want: "[memory.available<1536Mi for 1m30s]"},
		{name: "min reclaim", hard: "nodefs.available<10%", reclai: "nodefs.available=1Gi",
			want: "[nodefs.available<10%]"},
		{name: "empty", want: "[]"},
		{name: "unknown signal", hard: "cpu.available<1", err: "unsupported eviction signal cpu.available"},
		{name: "negative", hard: "memory.available<-1Mi", err: "must be positive"},
		{name: "zero", hard: "memory.available<0", err: "must be positive"},
		{name: "over 100%", hard: "nodefs.available<120%", err: "must be <= 100%"},
		{name: "negative percentage", hard: "nodefs.available<-5%", err: "must be >= 0%"},
		{name: "garbage", hard: "memory.available<lots", err: "memory.available"},
		{name: "no separator", hard: "memory.available=100Mi", err: "malformed pair"},
		{name: "soft without grace", soft: "memory.available<1Gi", err: "grace period must be specified for the soft eviction threshold memory.available"},
		{name: "bad grace", soft: "memory.available<1Gi", grace: "memory.available=soon", err: "grace period"},
		{name: "negative grace", soft: "memory.available<1Gi", grace: "memory.available=-1s", err: "must be a positive value"},
		{name: "zero reclaim percentage", hard: "nodefs.available<10%", reclai: "nodefs.available=0%", err: "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.hard, tc.soft, tc.grace, tc.reclai)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && len(got) == 0) {
				t.Errorf("got %s, want %s", s, tc.want)
			}
		})
	}
}

func TestParseMinReclaimAndGrace(t *testing.T) {
	got, err := ParseThresholds(map[string]string{"nodefs.available": "10%"},
		map[string]string{"memory.available": "500Mi"}, map[string]string{"memory.available": "2m"},
		map[string]string{"nodefs.available": "5%", "memory.available": "100Mi"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	mem, fs := got[0], got[1]
	if mem.Signal != SignalMemoryAvailable || mem.GracePeriod != 2*time.Minute || mem.MinReclaim == nil || mem.MinReclaim.String() != "100Mi" {
		t.Errorf("soft memory threshold %+v", mem)
	}
	if fs.Signal != SignalNodeFsAvailable || !fs.Hard() || fs.MinReclaim == nil || fs.MinReclaim.String() != "5%" {
		t.Errorf("nodefs threshold %+v", fs)
	}
	// A soft memory threshold adds no allocatable one.
	for _, th := range got {
		if th.Signal == SignalAllocatableMemoryAvailable {
			t.Errorf("allocatable threshold for a soft memory threshold: %s", th)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		thresholds string
		transition time.Duration
		maxGrace   int64
		err        string
	}{
		{args: nil, thresholds: fmt.Sprint(DefaultThresholds()), transition: 5 * time.Minute},
		{args: []string{"--eviction-hard=memory.available<1Gi"}, thresholds: "[allocatableMemory.available<1Gi memory.available<1Gi]", transition: 5 * time.Minute},
		{args: []string{"--eviction-hard="}, thresholds: "[]", transition: 5 * time.Minute},
		{args: []string{"--eviction-hard=nodefs.available<20%", "--eviction-soft=memory.available<2Gi", "--eviction-soft-grace-period=memory.available=30s",
			"--eviction-pressure-transition-period=1m", "--eviction-max-pod-grace-period=15"},
			thresholds: "[memory.available<2Gi for 30s nodefs.available<20%]", transition: time.Minute, maxGrace: 15},
		{args: []string{"--eviction-soft=memory.available<2Gi"}, err: "grace period must be specified"},
		{args: []string{"--eviction-hard=disk.available<1%"}, err: "unsupported eviction signal disk.available"},
		{args: []string{"--eviction-pressure-transition-period=-1s"}, err: "must not be negative"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var f Flags
			fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
			f.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var cfg Config
			err := f.Apply(&cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(cfg.Thresholds); got != tc.thresholds || cfg.Thresholds == nil {
				t.Errorf("thresholds %s (nil: %t), want %s", got, cfg.Thresholds == nil, tc.thresholds)
			}
			if cfg.PressureTransitionPeriod != tc.transition || cfg.MaxPodGracePeriodSeconds != tc.maxGrace {
				t.Errorf("transition %s, max grace %d", cfg.PressureTransitionPeriod, cfg.MaxPodGracePeriodSeconds)
			}
		})
	}
}
