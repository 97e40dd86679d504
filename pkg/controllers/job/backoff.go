package job

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Upstream's pod failure backoff: 10 s doubling per consecutive failure,
// at most 10 minutes (variables for tests).
var (
	defaultPodFailureBackoff = 10 * time.Second
	maxPodFailureBackoff     = 10 * time.Minute
)

// backoffRecord is a Job's count of pod failures since its last success
// and the time of the last one.
type backoffRecord struct {
	failuresAfterLastSuccess int32
	lastFailureTime          *time.Time
}

// backoffStore keeps the records of the Jobs in memory, as upstream's: a
// restarted controller starts afresh.
type backoffStore struct {
	mu sync.Mutex
	m  map[types.NamespacedName]backoffRecord
}

func newBackoffStore() *backoffStore {
	return &backoffStore{m: map[types.NamespacedName]backoffRecord{}}
}

func (s *backoffStore) update(key types.NamespacedName, r backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = r
}

func (s *backoffStore) remove(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// next is the record with the newly finished pods (not yet counted).
func (s *backoffStore) next(key types.NamespacedName, succeeded, failed []*corev1.Pod) backoffRecord {
	s.mu.Lock()
	r := s.m[key]
	s.mu.Unlock()
	sortByFinishedTime(succeeded)
	sortByFinishedTime(failed)
	if len(succeeded) == 0 {
		if len(failed) == 0 {
			return r
		}
		t := finishedTime(failed[len(failed)-1])
		return backoffRecord{failuresAfterLastSuccess: r.failuresAfterLastSuccess + int32(len(failed)), lastFailureTime: &t}
	}
	r = backoffRecord{}
	lastSuccess := finishedTime(succeeded[len(succeeded)-1])
	for i := len(failed) - 1; i >= 0; i-- {
		t := finishedTime(failed[i])
		if !t.After(lastSuccess) {
			break
		}
		if r.lastFailureTime == nil {
			r.lastFailureTime = &t
		}
		r.failuresAfterLastSuccess++
	}
	return r
}

func (r backoffRecord) remaining(c clock.PassiveClock) time.Duration {
	return remainingBackoff(c, r.failuresAfterLastSuccess, r.lastFailureTime)
}

// remainingBackoff is how long pod creation still waits after failures
// consecutive failures, the last at last.
func remainingBackoff(c clock.PassiveClock, failures int32, last *time.Time) time.Duration {
	if failures == 0 || last == nil {
		return 0
	}
	d := defaultPodFailureBackoff
	for i := 1; i < int(failures); i++ {
		d *= 2
		if d >= maxPodFailureBackoff {
			d = maxPodFailureBackoff
			break
		}
	}
	elapsed := c.Since(*last)
	if d < elapsed {
		return 0
	}
	return d - elapsed
}

// remainingBackoffPerIndex is how long the index of the last failed pod
// waits before its replacement (backoffLimitPerIndex).
func remainingBackoffPerIndex(logger klog.Logger, c clock.PassiveClock, lastFailed *corev1.Pod) time.Duration {
	if lastFailed == nil {
		return 0
	}
	t := finishedTime(lastFailed)
	return remainingBackoff(c, absoluteIndexFailureCount(logger, lastFailed)+1, &t)
}
