package job

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

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
