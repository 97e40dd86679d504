package prober

import "sync"

// results are one probe type's results by container ID, as upstream's
// results manager.
type results struct {
	mu    sync.RWMutex
	cache map[string]Result
}

func newResults() *results { return &results{cache: map[string]Result{}} }

func (r *results) get(id string) (Result, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	res, ok := r.cache[id]
	return res, ok
}

// set tells whether the result changed.
func (r *results) set(id string, res Result) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok := r.cache[id]
	r.cache[id] = res
	return !ok || prev != res
}

func (r *results) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cache, id)
}
