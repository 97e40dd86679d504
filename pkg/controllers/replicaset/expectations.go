package replicaset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// ExpectationsTimeout is how long the controller waits for the watch
// events of the pods it created or deleted before it acts again anyway
// (upstream's: a lost event must not leave an owner asleep forever).
const ExpectationsTimeout = 5 * time.Minute

// expectations are, per owner (namespace/name), the pod creations and
// deletions it made whose watch events have not been seen yet, as
// upstream's UIDTrackingControllerExpectations: until they are seen (or
// expire) the owner is not synced again, so that a burst of events about
// it never creates or deletes twice. Deletions are tracked by pod key, so
// that a pod first marked for deletion and then gone counts once.
type expectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[string]*expectation
}

type expectation struct {
	uid       types.UID
	add, del  int
	deletions sets.Set[string]
	at        time.Time
}

func newExpectations(c clock.PassiveClock) *expectations {
	return &expectations{clock: c, m: map[string]*expectation{}}
}

// satisfied says whether the owner key (of uid) may be synced: it expects
// nothing more, its expectations expired, or they were another object's of
// the same name (then they are forgotten).
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
	return (x.add <= 0 && x.del <= 0) || e.clock.Since(x.at) > ExpectationsTimeout
}

// pending is how long until the owner's unfulfilled expectations expire;
// false if it has none.
func (e *expectations) pending(key string) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || (x.add <= 0 && x.del <= 0) {
		return 0, false
	}
	return max(ExpectationsTimeout-e.clock.Since(x.at), 0) + time.Second, true
}

// expectCreations replaces the owner's expectations by n creations.
func (e *expectations) expectCreations(key string, uid types.UID, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{uid: uid, add: n, at: e.clock.Now()}
}

// expectDeletions replaces the owner's expectations by the deletions of
// the pods podKeys.
func (e *expectations) expectDeletions(key string, uid types.UID, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := sets.New(podKeys...)
	e.m[key] = &expectation{uid: uid, del: s.Len(), deletions: s, at: e.clock.Now()}
}

// creationObserved counts one creation the owner expected as seen (or as
// never to be seen: it was not made).
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add--
	}
}

// deletionObserved counts the deletion of podKey as seen, if the owner
// expected it and has not seen it yet.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.deletions.Has(podKey) {
		x.deletions.Delete(podKey)
		x.del--
	}
}

// forget drops the owner's expectations (it is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
