package daemonset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// expectationsTimeout: expectations never met (a lost watch event) expire
// after this long (upstream's).
const expectationsTimeout = 5 * time.Minute

// expectations are upstream's ControllerExpectations: per DaemonSet, how
// many pod creations and deletions it still expects to see in the watch;
// until then (or the timeout) it does not create or delete again.
type expectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[string]*expectation
}

type expectation struct {
	uid      types.UID
	add, del int
	at       time.Time
}

func newExpectations(c clock.PassiveClock) *expectations {
	return &expectations{clock: c, m: map[string]*expectation{}}
}

// satisfied: nothing more expected, expired, or another object's of the
// same name (forgotten then).
func (e *expectations) satisfied(key string, uid types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.uid != uid {
		delete(e.m, key)
		return true
	}
	return (x.add <= 0 && x.del <= 0) || e.clock.Since(x.at) > expectationsTimeout
}

// pending is how long until unmet expectations expire; false if none.
func (e *expectations) pending(key string) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || (x.add <= 0 && x.del <= 0) {
		return 0, false
	}
	return max(expectationsTimeout-e.clock.Since(x.at), 0) + time.Second, true
}

func (e *expectations) set(key string, uid types.UID, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{uid: uid, add: add, del: del, at: e.clock.Now()}
}

func (e *expectations) lower(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= add
		x.del -= del
	}
}

func (e *expectations) creationObserved(key string) { e.lower(key, 1, 0) }

func (e *expectations) deletionObserved(key string) { e.lower(key, 0, 1) }

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
