// Package runner runs a function as upstream kube-proxy's
// BoundedFrequencyRunner: on request, but never more often than every
// minInterval, and at least every maxInterval (sooner, after retryInterval,
// when a run failed).
package runner

import (
	"context"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/klog/v2"
)

// Runner is a bounded-frequency runner of one function.
type Runner struct {
	name                                    string
	fn                                      func() error
	minInterval, retryInterval, maxInterval time.Duration
	requests                                chan struct{}
}

// New returns a runner of fn; it runs once Loop does.
func New(name string, fn func() error, minInterval, retryInterval, maxInterval time.Duration) *Runner {
	if maxInterval < minInterval {
		maxInterval = minInterval
	}
	if retryInterval <= 0 || retryInterval > maxInterval {
		retryInterval = maxInterval
	}
	return &Runner{name: name, fn: fn, minInterval: minInterval, retryInterval: retryInterval, maxInterval: maxInterval,
		requests: make(chan struct{}, 1)}
}

// Run asks for a run as soon as minInterval allows; requests made before
// that run are folded into it.
func (r *Runner) Run() {
	select {
	case r.requests <- struct{}{}:
	default:
	}
}

// Loop runs fn until ctx ends: first at a request or after maxInterval.
func (r *Runner) Loop(ctx context.Context) {
	klog.V(3).InfoS("Runner loop started", "runner", r.name)
	next := time.NewTimer(r.maxInterval)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		case <-r.requests:
		}
		next.Stop()
		var err error
		func() {
			defer utilruntime.HandleCrash()
			err = r.fn()
		}()
		interval := r.maxInterval
		if err != nil {
			interval = r.retryInterval
			klog.V(3).InfoS("Scheduling a retry", "runner", r.name, "interval", interval, "err", err)
		}
		next.Reset(interval)
		// Requests during the pause wait in the channel.
		pause := time.NewTimer(r.minInterval)
		select {
		case <-ctx.Done():
			pause.Stop()
			return
		case <-pause.C:
		}
	}
}
