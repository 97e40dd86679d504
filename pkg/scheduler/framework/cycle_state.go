package framework

import (
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/util/sets"
)

// ErrNotFound is CycleState.Read's error for a key never written.
var ErrNotFound = errors.New("not found")

// StateKey names one plugin's data in a CycleState.
type StateKey string

// StateData is what a plugin keeps for one pod's scheduling cycle (e.g.
// PreFilter's precomputation read by its Filter). Clone is used when
// preemption simulates removing pods.
type StateData interface {
	Clone() StateData
}

// CycleState is the data of one pod's scheduling cycle. Plugins write
// their own keys; reads and writes are safe from the parallel Filter and
// Score calls.
type CycleState struct {
	mu      sync.RWMutex
	storage map[StateKey]StateData
	// SkipFilterPlugins and SkipScorePlugins are the plugins whose
	// PreFilter or PreScore returned Skip; SkipPreBindPlugins those whose
	// PreBindPreFlight did.
	SkipFilterPlugins  sets.Set[string]
	SkipScorePlugins   sets.Set[string]
	SkipPreBindPlugins sets.Set[string]
}

// NewCycleState is an empty CycleState.
func NewCycleState() *CycleState {
	return &CycleState{storage: map[StateKey]StateData{}}
}

// Read returns key's data or ErrNotFound.
func (c *CycleState) Read(key StateKey) (StateData, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.storage[key]; ok {
		return v, nil
	}
	return nil, ErrNotFound
}

// Write stores key's data.
func (c *CycleState) Write(key StateKey, val StateData) {
	c.mu.Lock()
	c.storage[key] = val
	c.mu.Unlock()
}

// Delete removes key's data.
func (c *CycleState) Delete(key StateKey) {
	c.mu.Lock()
	delete(c.storage, key)
	c.mu.Unlock()
}

// Clone copies the state, cloning each plugin's data.
func (c *CycleState) Clone() *CycleState {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := NewCycleState()
	for k, v := range c.storage {
		n.storage[k] = v.Clone()
	}
	n.SkipFilterPlugins = c.SkipFilterPlugins.Clone()
	n.SkipScorePlugins = c.SkipScorePlugins.Clone()
	n.SkipPreBindPlugins = c.SkipPreBindPlugins.Clone()
	return n
}
