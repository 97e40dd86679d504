package volumebinding

import (
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// assumeCache is upstream's passive assume cache: the informer's objects,
// with objects the scheduler has assumed (Reserve) but not yet written
// (PreBind) laid over them, so that the next scheduling cycles see a PV
// as taken or a claim's selected node before the API server does. An
// assumed object counts only while the informer still holds the version
// it was assumed from: any newer version from the informer replaces it.
//
// Every informer event also wakes the binding cycles waiting for claims
// to be bound (changed).
type assumeCache[T metav1.Object] struct {
	gr    schema.GroupResource
	store cache.Indexer

	mu      sync.RWMutex
	assumed map[string]T
	// changed is closed and replaced at each informer event.
	changed chan struct{}
}

// informer is the part of a SharedIndexInformer the cache uses.
type informer interface {
	AddEventHandler(handler cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error)
	GetIndexer() cache.Indexer
}

func newAssumeCache[T metav1.Object](inf informer, gr schema.GroupResource) (*assumeCache[T], error) {
	c := &assumeCache[T]{gr: gr, store: inf.GetIndexer(), assumed: map[string]T{}, changed: make(chan struct{})}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.event(obj) },
		UpdateFunc: func(_, obj any) { c.event(obj) },
		DeleteFunc: func(obj any) { c.event(obj) },
	})
	return c, err
}

// event drops the assumed object of the key unless the informer still
// holds the version it was assumed from (a resync), and wakes waiters.
func (c *assumeCache[T]) event(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if assumed, ok := c.assumed[key]; ok {
		stored, err := c.apiObj(key)
		if err != nil || stored.GetResourceVersion() != assumed.GetResourceVersion() {
			delete(c.assumed, key)
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// Changed is closed at the next informer event.
func (c *assumeCache[T]) Changed() <-chan struct{} {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.changed
}

func (c *assumeCache[T]) apiObj(key string) (T, error) {
	var zero T
	obj, ok, err := c.store.GetByKey(key)
	if err != nil {
		return zero, err
	}
	if !ok {
		return zero, apierrors.NewNotFound(c.gr, key)
	}
	v, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("object %q is %T, not %T", key, obj, zero)
	}
	return v, nil
}

// GetAPIObj is the informer's version of key.
func (c *assumeCache[T]) GetAPIObj(key string) (T, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.apiObj(key)
}

// Get is the assumed version of key if there is one still current, else
// the informer's.
func (c *assumeCache[T]) Get(key string) (T, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	obj, err := c.apiObj(key)
	if err != nil {
		return obj, err
	}
	if assumed, ok := c.assumed[key]; ok && assumed.GetResourceVersion() == obj.GetResourceVersion() {
		return assumed, nil
	}
	return obj, nil
}

// ByIndex lists the informer's objects of an index value, each replaced
// by its current assumed version (the index is the informer's).
func (c *assumeCache[T]) ByIndex(index, value string) ([]T, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	objs, err := c.store.ByIndex(index, value)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		v, ok := o.(T)
		if !ok {
			continue
		}
		if assumed, ok := c.assumed[keyOf(v)]; ok && assumed.GetResourceVersion() == v.GetResourceVersion() {
			v = assumed
		}
		out = append(out, v)
	}
	return out, nil
}

func keyOf(obj metav1.Object) string {
	return cache.MetaObjectToName(obj).String()
}

// Assume lays obj over the informer's object, which must be of obj's
// version.
func (c *assumeCache[T]) Assume(obj T) error {
	key := keyOf(obj)
	c.mu.Lock()
	defer c.mu.Unlock()
	stored, err := c.apiObj(key)
	if err != nil {
		return err
	}
	if stored.GetResourceVersion() != obj.GetResourceVersion() {
		return fmt.Errorf("%q is out of sync (stored: %s, assume: %s)", key, stored.GetResourceVersion(), obj.GetResourceVersion())
	}
	c.assumed[key] = obj
	return nil
}

// Restore drops the assumed version of obj's key if it is obj's version.
func (c *assumeCache[T]) Restore(obj T) {
	key := keyOf(obj)
	c.mu.Lock()
	defer c.mu.Unlock()
	if assumed, ok := c.assumed[key]; ok && assumed.GetResourceVersion() == obj.GetResourceVersion() {
		delete(c.assumed, key)
	}
}

// storageClassIndex indexes PVs by class.
const storageClassIndex = "storageclass"

func pvStorageClassIndexFunc(obj any) ([]string, error) {
	if pv, ok := obj.(*v1.PersistentVolume); ok {
		return []string{storagehelpers.GetPersistentVolumeClass(pv)}, nil
	}
	return nil, fmt.Errorf("object is not a v1.PersistentVolume: %T", obj)
}

// newPVCache is the PVs' assume cache, indexed by class (the index is
// shared by the profiles on one informer).
func newPVCache(inf cache.SharedIndexInformer) (*assumeCache[*v1.PersistentVolume], error) {
	if err := inf.GetIndexer().AddIndexers(cache.Indexers{storageClassIndex: pvStorageClassIndexFunc}); err != nil {
		if inf.GetIndexer().GetIndexers()[storageClassIndex] == nil {
			return nil, err
		}
	}
	return newAssumeCache[*v1.PersistentVolume](inf, schema.GroupResource{Resource: "persistentvolumes"})
}
