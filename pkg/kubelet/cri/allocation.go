package cri

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// allocationFile is the checkpoint of the resources granted to the pods'
// containers and those their running instances have, in the kubelet's
// root dir, as upstream's allocation manager keeps allocated_pods_state
// and actuated_pods_state: a restarted agent neither resizes again nor
// forgets a resize it deferred.
const allocationFile = "allocated_pods_state"

// podResources are one pod's container resources by container name.
type podResources struct {
	// Allocated are the resources the node granted.
	Allocated map[string]corev1.ResourceRequirements `json:"allocated,omitempty"`
	// Actuated are the resources applied to each container's instance.
	Actuated map[string]actuated `json:"actuated,omitempty"`
}

type actuated struct {
	// ID is the CRI id of the instance they were applied to.
	ID        string                      `json:"id"`
	Resources corev1.ResourceRequirements `json:"resources"`
}

// allocations are the checkpointed podResources of the node's pods.
type allocations struct {
	path string
	mu   sync.Mutex
	pods map[types.UID]*podResources
}

// loadAllocations reads the checkpoint at path; a missing one is empty, a
// corrupt one is an error (as upstream, which then starts afresh).
func loadAllocations(path string) (*allocations, error) {
	a := &allocations{path: path, pods: map[types.UID]*podResources{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(data, &a.pods); err != nil {
		a.pods = map[types.UID]*podResources{}
		return a, fmt.Errorf("reading the resource allocation checkpoint %s: %w", path, err)
	}
	return a, nil
}

// get is a copy of the pod's resources; ok: the pod has some.
func (a *allocations) get(uid types.UID) (podResources, bool) {
	if a == nil {
		return podResources{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pods[uid]
	if p == nil {
		return podResources{}, false
	}
	out := podResources{Allocated: map[string]corev1.ResourceRequirements{}, Actuated: map[string]actuated{}}
	for k, v := range p.Allocated {
		out.Allocated[k] = *v.DeepCopy()
	}
	for k, v := range p.Actuated {
		out.Actuated[k] = actuated{ID: v.ID, Resources: *v.Resources.DeepCopy()}
	}
	return out, true
}

// others are the allocated resources of every pod but uid that live says
// is still the node's (nil: all).
func (a *allocations) others(uid types.UID, live func(types.UID) bool) []map[string]corev1.ResourceRequirements {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]corev1.ResourceRequirements
	for k, p := range a.pods {
		if k != uid && (live == nil || live(k)) {
			out = append(out, p.Allocated)
		}
	}
	return out
}

// setAllocated records the pod's granted resources.
func (a *allocations) setAllocated(uid types.UID, allocated map[string]corev1.ResourceRequirements) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.entry(uid)
	p.Allocated = allocated
	return a.save()
}

// setActuated records what the container's instance id has.
func (a *allocations) setActuated(uid types.UID, name, id string, r corev1.ResourceRequirements) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.entry(uid)
	if p.Actuated == nil {
		p.Actuated = map[string]actuated{}
	}
	if cur, ok := p.Actuated[name]; ok && cur.ID == id && equalResources(cur.Resources, r) {
		return nil
	}
	p.Actuated[name] = actuated{ID: id, Resources: *r.DeepCopy()}
	return a.save()
}

// remove forgets a pod that is gone.
func (a *allocations) remove(uid types.UID) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.pods[uid]; !ok {
		return nil
	}
	delete(a.pods, uid)
	return a.save()
}

func (a *allocations) entry(uid types.UID) *podResources {
	p := a.pods[uid]
	if p == nil {
		p = &podResources{}
		a.pods[uid] = p
	}
	return p
}

// save writes the checkpoint atomically (a crash leaves the old one).
func (a *allocations) save() error {
	if a.path == "" {
		return nil
	}
	data, err := json.Marshal(a.pods)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
		return err
	}
	tmp := a.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, a.path)
}
