package cri

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// podState is what the runtime remembers of a pod between syncs; the
// containers themselves are always read from CRI.
type podState struct {
	// crashLoop back-offs by container name.
	crashLoop map[string]*backoff
	// pulls are the image pull back-offs by image.
	pulls map[string]*pullState
	// waiting is why a container was not started at its last try, by
	// name; cleared once it starts.
	waiting map[string]waiting
	// hooks are the postStart hooks under way, by container id.
	hooks map[string]*hookRun
	// kill is the pod's kill under way.
	kill *killRun
	// stopping are the containers being killed alone (a failed
	// postStart), by container id.
	stopping map[string]bool
	// resizeConditions are the pod's resize conditions as the last sync
	// left them; resizePending and resizeError what was last reported (an
	// event each time they change); resizing: a resize is being applied.
	resizeConditions           []corev1.PodCondition
	resizePending, resizeError string
	resizing                   bool
}

type waiting struct{ reason, message string }

type pullState struct {
	backoff backoff
	lastErr string
	// job is the pull under way.
	job *pullJob
}

type hookRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

type killRun struct {
	deadline time.Time
	cancel   context.CancelFunc
	done     chan struct{}
}

func (k *killRun) finished() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

func (r *Runtime) state(uid types.UID) *podState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.pods[uid]
	if s == nil {
		s = &podState{
			crashLoop: map[string]*backoff{}, pulls: map[string]*pullState{},
			waiting: map[string]waiting{}, hooks: map[string]*hookRun{}, stopping: map[string]bool{},
		}
		r.pods[uid] = s
	}
	return s
}

func (r *Runtime) forget(uid types.UID) {
	r.mu.Lock()
	s := r.pods[uid]
	delete(r.pods, uid)
	r.mu.Unlock()
	if err := r.allocs.remove(uid); err != nil {
		klog.Background().Error(err, "Forgetting the pod's resources failed", "podUID", uid)
	}
	if s == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range s.hooks {
		h.cancel()
	}
	if s.kill != nil {
		s.kill.cancel()
	}
}

// backoff is upstream's flowcontrol.Backoff for one key: each restart
// doubles the wait, counted from the last exit; a container that ran
// long enough (or was not restarted for as long) starts over.
type backoff struct {
	wait    time.Duration
	updated time.Time
}

// remaining is how long a restart after an exit at finished still waits;
// none once the last restart is older than reset.
func (b *backoff) remaining(now, finished time.Time, reset time.Duration) time.Duration {
	if b.wait == 0 || now.Sub(b.updated) > reset {
		return 0
	}
	if d := finished.Add(b.wait).Sub(now); d > 0 {
		return d
	}
	return 0
}

// next records a restart now: the next one waits twice as long, unless the
// last was longer than reset ago.
func (b *backoff) next(now time.Time, initial, max, reset time.Duration) {
	switch {
	case b.wait == 0 || now.Sub(b.updated) > reset:
		b.wait = initial
	default:
		b.wait = min(2*b.wait, max)
	}
	b.updated = now
}
