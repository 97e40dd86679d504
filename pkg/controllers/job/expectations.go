package job

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// expectationsTimeout is upstream's ExpectationsTimeout: expectations older
// than this are considered satisfied, so a lost watch event cannot stall a
// Job forever.
const expectationsTimeout = 5 * time.Minute

// expectations count, per Job, the pod creations and deletions the
// controller has issued but not yet seen in its cache, as upstream's
// ControllerExpectations: a Job is not managed again until they are seen,
// so a burst of events never creates pods twice.
type expectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[types.NamespacedName]*expectation
}

type expectation struct {
	add, del  int
	timestamp time.Time
}

func newExpectations(c clock.PassiveClock) *expectations {
	return &expectations{clock: c, m: map[types.NamespacedName]*expectation{}}
}

// satisfied says whether every issued creation and deletion was observed
// (or the expectations expired, or there are none).
func (e *expectations) satisfied(key types.NamespacedName) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.add <= 0 && x.del <= 0 {
		return true
	}
	return e.clock.Since(x.timestamp) > expectationsTimeout
}

// expect records creations and deletions about to be issued, replacing
// what was expected before (as upstream's SetExpectations).
func (e *expectations) expect(key types.NamespacedName, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{add: add, del: del, timestamp: e.clock.Now()}
}

// lower records observed (or failed) creations and deletions.
func (e *expectations) lower(key types.NamespacedName, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= add
		x.del -= del
	}
}

func (e *expectations) creationObserved(key types.NamespacedName) { e.lower(key, 1, 0) }
func (e *expectations) deletionObserved(key types.NamespacedName) { e.lower(key, 0, 1) }

func (e *expectations) forget(key types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// finalizerExpectations are, per Job, the pods whose tracking finalizer
// the controller removed but whose update it has not seen yet (upstream's
// uidTrackingExpectations): they are not counted again meanwhile.
type finalizerExpectations struct {
	mu sync.Mutex
	m  map[types.NamespacedName]sets.Set[types.UID]
}

func newFinalizerExpectations() *finalizerExpectations {
	return &finalizerExpectations{m: map[types.NamespacedName]sets.Set[types.UID]{}}
}

func (f *finalizerExpectations) expected(key types.NamespacedName) sets.Set[types.UID] {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[key].Clone()
}

func (f *finalizerExpectations) expectRemoved(key types.NamespacedName, uids ...types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.m[key]
	if s == nil {
		s = sets.New[types.UID]()
		f.m[key] = s
	}
	s.Insert(uids...)
}

func (f *finalizerExpectations) observed(key types.NamespacedName, uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.m[key]; s != nil {
		s.Delete(uid)
		if s.Len() == 0 {
			delete(f.m, key)
		}
	}
}

func (f *finalizerExpectations) forget(key types.NamespacedName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
}
