// Package expectations is upstream's ControllerExpectations (and the
// deletions-by-pod-key part of UIDTrackingControllerExpectations) for the
// controllers that create and delete pods: per owner, how many creations
// and deletions it issued whose watch events the cache has not shown yet.
// Until they are seen (or expire) the owner is not managed again, so that a
// burst of events about it never creates or deletes twice.
package expectations

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// Timeout is upstream's ExpectationsTimeout: expectations older than this
// count as satisfied, so that a lost watch event cannot leave an owner
// asleep forever.
const Timeout = 5 * time.Minute

// Expectations are keyed by owner key K (namespace/name); each remembers
// the owner's UID, so that another object of the same name does not
// inherit them.
type Expectations[K comparable] struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[K]*expectation
}

type expectation struct {
	uid      types.UID
	add, del int
	// deletions, when set by ExpectDeletions, are the pod keys whose
	// deletion is expected: each counts once (DeletionObservedOf).
	deletions sets.Set[string]
	at        time.Time
}

// New returns empty expectations timed by c.
func New[K comparable](c clock.PassiveClock) *Expectations[K] {
	return &Expectations[K]{clock: c, m: map[K]*expectation{}}
}

// Satisfied says whether the owner key (of uid) may be managed: it expects
// nothing more, its expectations expired, or they were another object's of
// the same name (then they are forgotten).
func (e *Expectations[K]) Satisfied(key K, uid types.UID) bool {
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
	return (x.add <= 0 && x.del <= 0) || e.clock.Since(x.at) > Timeout
}

// Pending is how long until the owner's unmet expectations expire (plus a
// second, to requeue after they did); false if it has none.
func (e *Expectations[K]) Pending(key K) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || (x.add <= 0 && x.del <= 0) {
		return 0, false
	}
	return max(Timeout-e.clock.Since(x.at), 0) + time.Second, true
}

// Expect replaces the owner's expectations by add creations and del
// deletions about to be issued (upstream's SetExpectations).
func (e *Expectations[K]) Expect(key K, uid types.UID, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{uid: uid, add: add, del: del, at: e.clock.Now()}
}

// ExpectDeletions replaces the owner's expectations by the deletions of
// the pods podKeys (upstream's ExpectDeletions of
// UIDTrackingControllerExpectations): a pod first marked for deletion and
// then gone counts once.
func (e *Expectations[K]) ExpectDeletions(key K, uid types.UID, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := sets.New(podKeys...)
	e.m[key] = &expectation{uid: uid, del: s.Len(), deletions: s, at: e.clock.Now()}
}

// Lower counts add creations and del deletions as observed (or as never to
// be observed: they were not issued, or failed).
func (e *Expectations[K]) Lower(key K, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= add
		x.del -= del
	}
}

// CreationObserved counts one expected creation as seen.
func (e *Expectations[K]) CreationObserved(key K) { e.Lower(key, 1, 0) }

// DeletionObserved counts one expected deletion as seen.
func (e *Expectations[K]) DeletionObserved(key K) { e.Lower(key, 0, 1) }

// DeletionObservedOf counts the deletion of podKey as seen, if the owner
// expected it (by ExpectDeletions) and has not seen it yet.
func (e *Expectations[K]) DeletionObservedOf(key K, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.deletions.Has(podKey) {
		x.deletions.Delete(podKey)
		x.del--
	}
}

// Forget drops the owner's expectations (it is gone).
func (e *Expectations[K]) Forget(key K) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
