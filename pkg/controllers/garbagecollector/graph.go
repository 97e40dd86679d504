package garbagecollector

import (
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// objectReference is an object's coordinates: an owner reference's
// (apiVersion, kind, name, uid) and the namespace.
type objectReference struct {
	metav1.OwnerReference
	Namespace string
}

// String is upstream's form, which its events and logs show, e.g.
// "[v1/ConfigMap, namespace: ns, name: owner, uid: 1234]".
func (s objectReference) String() string {
	return fmt.Sprintf("[%s/%s, namespace: %s, name: %s, uid: %s]", s.APIVersion, s.Kind, s.Namespace, s.Name, s.UID)
}

// MarshalLog keeps structured logs short.
func (s objectReference) MarshalLog() any {
	return struct {
		Name       string    `json:"name"`
		Namespace  string    `json:"namespace"`
		APIVersion string    `json:"apiVersion"`
		Kind       string    `json:"kind"`
		UID        types.UID `json:"uid"`
	}{s.Name, s.Namespace, s.APIVersion, s.Kind, s.UID}
}

// coordinates is ref without controller and blockOwnerDeletion.
func coordinates(ref metav1.OwnerReference) metav1.OwnerReference {
	return metav1.OwnerReference{UID: ref.UID, Name: ref.Name, Kind: ref.Kind, APIVersion: ref.APIVersion}
}

func sameCoordinates(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && a.Name == b.Name && a.Kind == b.Kind && a.APIVersion == b.APIVersion
}

// A node is an object of the dependency graph: one the informers
// observed, or a "virtual" one that only dependents name so far (its
// existence is checked with the API server).
type node struct {
	// identity never changes: a node with a corrected identity is a clone.
	identity objectReference

	mu                 sync.RWMutex
	dependents         map[*node]struct{}
	owners             []metav1.OwnerReference
	deletingDependents bool // being deleted with the foregroundDeletion finalizer
	beingDeleted       bool
	virtual            bool
}

func newNode(identity objectReference, owners []metav1.OwnerReference) *node {
	return &node{identity: identity, owners: owners, dependents: map[*node]struct{}{}}
}

// clone is a copy under another identity's name (the caller sets it).
func (n *node) clone() *node {
	n.mu.RLock()
	defer n.mu.RUnlock()
	c := &node{identity: n.identity, dependents: make(map[*node]struct{}, len(n.dependents)),
		owners: append([]metav1.OwnerReference(nil), n.owners...), deletingDependents: n.deletingDependents,
		beingDeleted: n.beingDeleted, virtual: n.virtual}
	for d := range n.dependents {
		c.dependents[d] = struct{}{}
	}
	return c
}

func (n *node) markBeingDeleted() {
	n.mu.Lock()
	n.beingDeleted = true
	n.mu.Unlock()
}

func (n *node) isBeingDeleted() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.beingDeleted
}

func (n *node) markObserved() {
	n.mu.Lock()
	n.virtual = false
	n.mu.Unlock()
}

func (n *node) isObserved() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return !n.virtual
}

func (n *node) markDeletingDependents() {
	n.mu.Lock()
	n.deletingDependents = true
	n.mu.Unlock()
}

func (n *node) isDeletingDependents() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.deletingDependents
}

func (n *node) setOwners(owners []metav1.OwnerReference) {
	n.mu.Lock()
	n.owners = owners
	n.mu.Unlock()
}

func (n *node) getOwners() []metav1.OwnerReference {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.owners
}

func (n *node) addDependent(d *node) {
	n.mu.Lock()
	n.dependents[d] = struct{}{}
	n.mu.Unlock()
}

func (n *node) deleteDependent(d *node) {
	n.mu.Lock()
	delete(n.dependents, d)
	n.mu.Unlock()
}

func (n *node) dependentsLength() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.dependents)
}

func (n *node) getDependents() []*node {
	n.mu.RLock()
	defer n.mu.RUnlock()
	ret := make([]*node, 0, len(n.dependents))
	for d := range n.dependents {
		ret = append(ret, d)
	}
	return ret
}

// blockingDependents are the dependents whose reference to n has
// blockOwnerDeletion: a foreground deletion of n waits for them.
func (n *node) blockingDependents() []*node {
	var ret []*node
	for _, d := range n.getDependents() {
		for _, o := range d.getOwners() {
			if o.UID == n.identity.UID && o.BlockOwnerDeletion != nil && *o.BlockOwnerDeletion {
				ret = append(ret, d)
				break
			}
		}
	}
	return ret
}

// graph maps uids to nodes. Only the graph builder's single goroutine
// writes it; the workers read it.
type graph struct {
	mu    sync.RWMutex
	nodes map[types.UID]*node
}

func newGraph() *graph { return &graph{nodes: map[types.UID]*node{}} }

func (g *graph) write(n *node) {
	g.mu.Lock()
	g.nodes[n.identity.UID] = n
	g.mu.Unlock()
}

func (g *graph) read(uid types.UID) (*node, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n, ok := g.nodes[uid]
	return n, ok
}

func (g *graph) remove(uid types.UID) {
	g.mu.Lock()
	delete(g.nodes, uid)
	g.mu.Unlock()
}

func (g *graph) len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.nodes)
}
