package garbagecollector

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

type eventType int

const (
	addEvent eventType = iota
	updateEvent
	deleteEvent
)

func (e eventType) String() string {
	switch e {
	case addEvent:
		return "add"
	case updateEvent:
		return "update"
	case deleteEvent:
		return "delete"
	}
	return fmt.Sprintf("unknown(%d)", int(e))
}

// An event is a change an informer saw, or a "virtual" delete: the API
// server said a node's object does not exist.
type event struct {
	virtual bool
	typ     eventType
	obj     metav1.Object
	old     metav1.Object // updates only
	gvk     schema.GroupVersionKind
}

// A monitor list-watches one resource's object metadata.
type monitor struct {
	informer cache.SharedIndexInformer
	gvk      schema.GroupVersionKind
	// stop ends it; nil until started.
	stop chan struct{}
}

// graphBuilder turns the monitors' events into the dependency graph (one
// goroutine, processGraphChanges) and queues the nodes the workers act on.
type graphBuilder struct {
	mapper   meta.RESTMapper
	metadata metadata.Interface
	recorder record.EventRecorder
	ignored  map[schema.GroupResource]bool
	// resourcesChanged is called when a CustomResourceDefinition or an
	// APIService changes: what discovery serves may have.
	resourcesChanged func()

	monitorMu sync.Mutex
	monitors  map[schema.GroupVersionResource]*monitor
	running   bool
	stopped   chan struct{} // closed once Run ends
	monitorWG sync.WaitGroup

	changes         workqueue.TypedInterface[*event]
	graph           *graph
	attemptToDelete workqueue.TypedRateLimitingInterface[types.UID]
	attemptToOrphan workqueue.TypedRateLimitingInterface[types.UID]
	absent          *referenceCache
}

// trimMetadata keeps what the graph needs of an object: its informer's
// store then holds a fraction of the metadata (no managedFields, labels,
// annotations).
func trimMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp, OwnerReferences: m.OwnerReferences, Finalizers: m.Finalizers,
	}}, nil
}

// matters: an update changes what the graph holds of an object. Status
// and spec updates, most of a busy cluster's, are left out.
func matters(old, cur metav1.Object) bool {
	return old.GetUID() != cur.GetUID() ||
		(old.GetDeletionTimestamp() == nil) != (cur.GetDeletionTimestamp() == nil) ||
		!slices.Equal(old.GetFinalizers(), cur.GetFinalizers()) ||
		!reflect.DeepEqual(old.GetOwnerReferences(), cur.GetOwnerReferences())
}

func (gb *graphBuilder) newMonitor(logger klog.Logger, resource schema.GroupVersionResource, kind schema.GroupVersionKind) (*monitor, error) {
	inf := metadatainformer.NewFilteredMetadataInformer(gb.metadata, resource, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	if err := inf.SetTransform(trimMetadata); err != nil {
		return nil, err
	}
	watchesResources := kind.Group == "apiextensions.k8s.io" && kind.Kind == "CustomResourceDefinition" ||
		kind.Group == "apiregistration.k8s.io" && kind.Kind == "APIService"
	add := func(e *event) {
		if e != nil {
			gb.changes.Add(e)
		}
		if watchesResources && gb.resourcesChanged != nil {
			gb.resourcesChanged()
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(metav1.Object); ok {
				add(&event{typ: addEvent, obj: o, gvk: kind})
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(metav1.Object)
			n, ok2 := newObj.(metav1.Object)
			switch {
			case ok1 && ok2 && matters(o, n):
				add(&event{typ: updateEvent, obj: n, old: o, gvk: kind})
			case watchesResources:
				add(nil)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(metav1.Object); ok {
				add(&event{typ: deleteEvent, obj: o, gvk: kind})
			}
		},
	})
	if err != nil {
		return nil, err
	}
	logger.V(4).Info("Using a metadata informer", "resource", resource, "kind", kind)
	return &monitor{informer: inf, gvk: kind}, nil
}

// syncMonitors makes the monitors those of resources (less the ignored),
// stopping the others. New monitors start with startMonitors.
func (gb *graphBuilder) syncMonitors(logger klog.Logger, resources map[schema.GroupVersionResource]struct{}) error {
	gb.monitorMu.Lock()
	defer gb.monitorMu.Unlock()
	toRemove := gb.monitors
	current := map[schema.GroupVersionResource]*monitor{}
	var errs []error
	kept, added := 0, 0
	for resource := range resources {
		if gb.ignored[resource.GroupResource()] {
			continue
		}
		if m, ok := toRemove[resource]; ok {
			current[resource] = m
			delete(toRemove, resource)
			kept++
			continue
		}
		kind, err := gb.mapper.KindFor(resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("couldn't look up resource %q: %v", resource, err))
			continue
		}
		m, err := gb.newMonitor(logger, resource, kind)
		if err != nil {
			errs = append(errs, fmt.Errorf("couldn't start monitor for resource %q: %v", resource, err))
			continue
		}
		current[resource] = m
		added++
	}
	gb.monitors = current
	for _, m := range toRemove {
		if m.stop != nil {
			close(m.stop)
		}
	}
	logger.V(4).Info("Synced monitors", "added", added, "kept", kept, "removed", len(toRemove))
	return utilerrors.NewAggregate(errs)
}

// startMonitors runs the monitors not yet running, once Run has begun.
func (gb *graphBuilder) startMonitors(logger klog.Logger) {
	gb.monitorMu.Lock()
	defer gb.monitorMu.Unlock()
	if !gb.running {
		return
	}
	started := 0
	for _, m := range gb.monitors {
		if m.stop == nil {
			m.stop = make(chan struct{})
			inf, stop := m.informer, m.stop
			gb.monitorWG.Go(func() { inf.Run(stop) })
			started++
		}
	}
	logger.V(4).Info("Started new monitors", "new", started, "current", len(gb.monitors))
}

// isSynced: there are monitors and each has listed its resource.
func (gb *graphBuilder) isSynced(logger klog.Logger) bool {
	gb.monitorMu.Lock()
	defer gb.monitorMu.Unlock()
	if len(gb.monitors) == 0 {
		logger.V(4).Info("Garbage controller monitor not synced: no monitors")
		return false
	}
	for resource, m := range gb.monitors {
		if !m.informer.HasSynced() {
			logger.V(4).Info("Garbage controller monitor not yet synced", "resource", resource)
			return false
		}
	}
	return true
}

func (gb *graphBuilder) isResourceSynced(resource schema.GroupVersionResource) bool {
	gb.monitorMu.Lock()
	defer gb.monitorMu.Unlock()
	m, ok := gb.monitors[resource]
	return ok && m.informer.HasSynced()
}

// store is the monitor's store of resource, if there is one.
func (gb *graphBuilder) store(resource schema.GroupVersionResource) cache.Store {
	gb.monitorMu.Lock()
	defer gb.monitorMu.Unlock()
	if m, ok := gb.monitors[resource]; ok {
		return m.informer.GetStore()
	}
	return nil
}

// Run processes the graph changes until ctx ends, then stops the monitors.
func (gb *graphBuilder) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	logger.Info("Running", "component", "GraphBuilder")
	defer logger.Info("Stopping", "component", "GraphBuilder")
	gb.monitorMu.Lock()
	gb.running = true
	gb.monitorMu.Unlock()
	gb.startMonitors(logger)

	go func() {
		<-ctx.Done()
		gb.changes.ShutDown()
	}()
	wait.Until(func() {
		for gb.processGraphChanges(logger) {
		}
	}, time.Second, ctx.Done())

	gb.monitorMu.Lock()
	gb.running = false
	stopped := 0
	for _, m := range gb.monitors {
		if m.stop != nil {
			close(m.stop)
			stopped++
		}
	}
	total := len(gb.monitors)
	gb.monitors = nil
	gb.monitorMu.Unlock()
	gb.monitorWG.Wait()
	logger.Info("Stopped monitors", "stopped", stopped, "total", total)
}

// enqueueVirtualDeleteEvent: ref's object is not there (the API server
// said so); its virtual node is to go.
func (gb *graphBuilder) enqueueVirtualDeleteEvent(ref objectReference) {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	gb.changes.Add(&event{virtual: true, typ: deleteEvent, gvk: gv.WithKind(ref.Kind),
		obj: &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: ref.APIVersion, Kind: ref.Kind},
			ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, UID: ref.UID, Name: ref.Name},
		}})
}

// addDependentToOwners adds n to the dependents of owners, creating
// virtual nodes for owners not in the graph (queued, so that the API
// server is asked whether they exist). A reference that disagrees with an
// observed owner (namespace, coordinates) queues n to be checked.
func (gb *graphBuilder) addDependentToOwners(logger klog.Logger, n *node, owners []metav1.OwnerReference) {
	suspicious := false
	for _, owner := range owners {
		ownerNode, ok := gb.graph.read(owner.UID)
		if !ok {
			ownerNode = newNode(objectReference{OwnerReference: coordinates(owner), Namespace: n.identity.Namespace}, nil)
			ownerNode.virtual = true
			logger.V(5).Info("Add virtual item", "identity", ownerNode.identity)
			gb.graph.write(ownerNode)
		}
		ownerNode.addDependent(n)
		if !ok {
			gb.attemptToDelete.Add(ownerNode.identity.UID)
			continue
		}
		if suspicious {
			continue
		}
		ownerNamespaced := ownerNode.identity.Namespace != ""
		switch {
		case ownerNamespaced && ownerNode.identity.Namespace != n.identity.Namespace:
			// A namespaced owner only owns objects of its namespace
			// (cluster-scoped owners may own any).
			if ownerNode.isObserved() {
				logger.V(2).Info("Item references an owner but does not match namespaces", "item", n.identity, "owner", ownerNode.identity)
				gb.reportInvalidNamespaceOwnerRef(n, owner.UID)
			}
			suspicious = true
		case !sameCoordinates(owner, ownerNode.identity.OwnerReference):
			if ownerNode.isObserved() {
				logger.V(2).Info("Item references an owner with coordinates that do not match the observed identity", "item", n.identity, "owner", ownerNode.identity)
			}
			suspicious = true
		case !ownerNamespaced && ownerNode.identity.Namespace != n.identity.Namespace && !ownerNode.isObserved():
			// A virtual cluster-scoped owner that may really be a missing
			// namespaced one named by a cluster-scoped dependent.
			suspicious = true
		}
	}
	if suspicious {
		gb.attemptToDelete.Add(n.identity.UID)
	}
}

// reportInvalidNamespaceOwnerRef is upstream's OwnerRefInvalidNamespace
// warning on n.
func (gb *graphBuilder) reportInvalidNamespaceOwnerRef(n *node, ownerUID types.UID) {
	i := slices.IndexFunc(n.getOwners(), func(r metav1.OwnerReference) bool { return r.UID == ownerUID })
	if i < 0 {
		return
	}
	bad := n.getOwners()[i]
	ref := &corev1.ObjectReference{Kind: n.identity.Kind, APIVersion: n.identity.APIVersion,
		Namespace: n.identity.Namespace, Name: n.identity.Name, UID: n.identity.UID}
	invalid := objectReference{OwnerReference: coordinates(bad), Namespace: n.identity.Namespace}
	gb.recorder.Eventf(ref, corev1.EventTypeWarning, "OwnerRefInvalidNamespace", "ownerRef %s does not exist in namespace %q", invalid, n.identity.Namespace)
}

func (gb *graphBuilder) insertNode(logger klog.Logger, n *node) {
	gb.graph.write(n)
	gb.addDependentToOwners(logger, n, n.getOwners())
}

func (gb *graphBuilder) removeDependentFromOwners(n *node, owners []metav1.OwnerReference) {
	for _, owner := range owners {
		if o, ok := gb.graph.read(owner.UID); ok {
			o.deleteDependent(n)
		}
	}
}

func (gb *graphBuilder) removeNode(n *node) {
	gb.graph.remove(n.identity.UID)
	gb.removeDependentFromOwners(n, n.getOwners())
}

type refPair struct{ old, cur metav1.OwnerReference }

// referencesDiffs compares two lists of owner references by uid.
func referencesDiffs(old, cur []metav1.OwnerReference) (added, removed []metav1.OwnerReference, changed []refPair) {
	byUID := make(map[types.UID]metav1.OwnerReference, len(old))
	for _, r := range old {
		byUID[r.UID] = r
	}
	for _, r := range cur {
		if o, ok := byUID[r.UID]; ok {
			if !reflect.DeepEqual(o, r) {
				changed = append(changed, refPair{o, r})
			}
			delete(byUID, r.UID)
		} else {
			added = append(added, r)
		}
	}
	for _, r := range old {
		if _, ok := byUID[r.UID]; ok {
			removed = append(removed, r)
		}
	}
	return added, removed, changed
}

func blocks(r metav1.OwnerReference) bool {
	return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion
}

// addUnblockedOwnersToDeleteQueue: owners a dependent stopped blocking
// (reference removed, or blockOwnerDeletion turned off) may now finish a
// foreground deletion.
func (gb *graphBuilder) addUnblockedOwnersToDeleteQueue(logger klog.Logger, removed []metav1.OwnerReference, changed []refPair) {
	var unblocked []types.UID
	for _, r := range removed {
		if blocks(r) {
			unblocked = append(unblocked, r.UID)
		}
	}
	for _, c := range changed {
		if blocks(c.old) && !blocks(c.cur) {
			unblocked = append(unblocked, c.cur.UID)
		}
	}
	for _, uid := range unblocked {
		if _, ok := gb.graph.read(uid); !ok {
			logger.V(5).Info("Cannot find uid in uidToNode", "uid", uid)
			continue
		}
		gb.attemptToDelete.Add(uid)
	}
}

func beingDeleted(o metav1.Object) bool { return o.GetDeletionTimestamp() != nil }

func hasFinalizer(o metav1.Object, f string) bool { return slices.Contains(o.GetFinalizers(), f) }

func hasDeleteDependentsFinalizer(o metav1.Object) bool {
	return hasFinalizer(o, metav1.FinalizerDeleteDependents)
}

func hasOrphanFinalizer(o metav1.Object) bool {
	return hasFinalizer(o, metav1.FinalizerOrphanDependents)
}

// deletionStartsWithFinalizer: cur is being deleted with finalizer f and
// old (nil for a new object) was not.
func deletionStartsWithFinalizer(old, cur metav1.Object, f string) bool {
	if !beingDeleted(cur) || !hasFinalizer(cur, f) {
		return false
	}
	return old == nil || !beingDeleted(old) || !hasFinalizer(old, f)
}

// processTransitions queues an object whose deletion just began with the
// orphan finalizer (orphan its dependents) or the foregroundDeletion one
// (delete its dependents first).
func (gb *graphBuilder) processTransitions(logger klog.Logger, old, cur metav1.Object, n *node) {
	if deletionStartsWithFinalizer(old, cur, metav1.FinalizerOrphanDependents) {
		logger.V(5).Info("Add item to attemptToOrphan", "item", n.identity)
		gb.attemptToOrphan.Add(n.identity.UID)
		return
	}
	if deletionStartsWithFinalizer(old, cur, metav1.FinalizerDeleteDependents) {
		logger.V(2).Info("Add item to attemptToDelete, because it's waiting for its dependents to be deleted", "item", n.identity)
		// A virtual node's flag is not set yet.
		n.markDeletingDependents()
		for _, d := range n.getDependents() {
			gb.attemptToDelete.Add(d.identity.UID)
		}
		gb.attemptToDelete.Add(n.identity.UID)
	}
}

func identityFromEvent(e *event) objectReference {
	return objectReference{OwnerReference: metav1.OwnerReference{APIVersion: e.gvk.GroupVersion().String(),
		Kind: e.gvk.Kind, UID: e.obj.GetUID(), Name: e.obj.GetName()}, Namespace: e.obj.GetNamespace()}
}

// processGraphChanges applies one event to the graph; false once the
// queue is shut down.
func (gb *graphBuilder) processGraphChanges(logger klog.Logger) bool {
	e, quit := gb.changes.Get()
	if quit {
		return false
	}
	defer gb.changes.Done(e)
	obj := e.obj
	if v := logger.V(5); v.Enabled() {
		v.Info("GraphBuilder process object", "apiVersion", e.gvk.GroupVersion().String(), "kind", e.gvk.Kind,
			"object", klog.KObj(obj), "uid", string(obj.GetUID()), "eventType", e.typ, "virtual", e.virtual)
	}

	existing, found := gb.graph.read(obj.GetUID())
	if found && !e.virtual && !existing.isObserved() {
		// The informer saw the object a virtual node stood for. Dependents
		// that named it otherwise are to be checked.
		observed := identityFromEvent(e)
		if observed != existing.identity {
			_, mismatched := partitionDependents(existing.getDependents(), observed)
			for _, dep := range mismatched {
				if observed.Namespace != "" && dep.identity.Namespace != observed.Namespace {
					logger.V(2).Info("Item references an owner but does not match namespaces", "item", dep.identity, "owner", observed)
					gb.reportInvalidNamespaceOwnerRef(dep, observed.UID)
				}
				gb.attemptToDelete.Add(dep.identity.UID)
			}
			logger.V(2).Info("Replacing virtual item with observed item", "virtual", existing.identity, "observed", observed)
			existing = existing.clone()
			existing.identity = observed
			gb.graph.write(existing)
		}
		existing.markObserved()
	}

	switch {
	case (e.typ == addEvent || e.typ == updateEvent) && !found:
		n := newNode(identityFromEvent(e), obj.GetOwnerReferences())
		n.deletingDependents = beingDeleted(obj) && hasDeleteDependentsFinalizer(obj)
		n.beingDeleted = beingDeleted(obj)
		gb.insertNode(logger, n)
		// An add may stand for a creation and a deletion at once.
		gb.processTransitions(logger, e.old, obj, n)
	case e.typ == addEvent || e.typ == updateEvent:
		added, removed, changed := referencesDiffs(existing.getOwners(), obj.GetOwnerReferences())
		if len(added) != 0 || len(removed) != 0 || len(changed) != 0 {
			gb.addUnblockedOwnersToDeleteQueue(logger, removed, changed)
			existing.setOwners(obj.GetOwnerReferences())
			gb.addDependentToOwners(logger, existing, added)
			gb.removeDependentFromOwners(existing, removed)
		}
		if beingDeleted(obj) {
			existing.markBeingDeleted()
		}
		gb.processTransitions(logger, e.old, obj, existing)
	case e.typ == deleteEvent:
		if !found {
			logger.V(5).Info("Item doesn't exist in the graph, this shouldn't happen", "item", obj.GetUID())
			return true
		}
		if e.virtual && !gb.virtualDeleteRemoves(existing, identityFromEvent(e)) {
			return true
		}
		gb.removeNode(existing)
		deps := existing.getDependents()
		if len(deps) > 0 {
			gb.absent.Add(identityFromEvent(e))
		}
		for _, d := range deps {
			gb.attemptToDelete.Add(d.identity.UID)
		}
		for _, owner := range existing.getOwners() {
			if o, ok := gb.graph.read(owner.UID); ok && o.isDeletingDependents() {
				// The owner's foreground deletion may be done.
				gb.attemptToDelete.Add(owner.UID)
			}
		}
	}
	return true
}

// virtualDeleteRemoves decides a virtual delete of deleted (the API server
// has no such object) for the node existing: whether the node goes. When
// dependents name the uid with other coordinates it stays (under another
// of those identities if it was virtual), and the dependents that named
// the absent coordinates are checked.
func (gb *graphBuilder) virtualDeleteRemoves(existing *node, deleted objectReference) bool {
	if !existing.isObserved() {
		matching, nonmatching := partitionDependents(existing.getDependents(), deleted)
		if len(nonmatching) == 0 {
			return true
		}
		if len(matching) > 0 {
			gb.absent.Add(deleted)
			for _, d := range matching {
				gb.attemptToDelete.Add(d.identity.UID)
			}
		}
		if existing.identity == deleted {
			if alt := alternateOwnerIdentity(nonmatching, deleted); alt != nil {
				replacement := existing.clone()
				replacement.identity = *alt
				gb.graph.write(replacement)
				gb.attemptToDelete.AddRateLimited(replacement.identity.UID)
			}
		}
		return false
	}
	if existing.identity == deleted {
		return true
	}
	// An observed object is not removed by a virtual delete of other
	// coordinates; dependents naming those are checked.
	matching, _ := partitionDependents(existing.getDependents(), deleted)
	if len(matching) > 0 {
		gb.absent.Add(deleted)
		for _, d := range matching {
			gb.attemptToDelete.Add(d.identity.UID)
		}
	}
	return false
}

// partitionDependents splits dependents into those whose reference to
// owner's uid matches owner's coordinates (and namespace) and those with
// one that does not (a dependent may be in both).
func partitionDependents(dependents []*node, owner objectReference) (matching, nonmatching []*node) {
	namespaced := owner.Namespace != ""
	for _, d := range dependents {
		match, mismatch := false, false
		if namespaced && owner.Namespace != d.identity.Namespace {
			mismatch = true
		} else {
			for _, r := range d.getOwners() {
				if r.UID == owner.UID {
					if sameCoordinates(r, owner.OwnerReference) {
						match = true
					} else {
						mismatch = true
					}
				}
			}
		}
		if match {
			matching = append(matching, d)
		}
		if mismatch {
			nonmatching = append(nonmatching, d)
		}
	}
	return matching, nonmatching
}

func referenceLess(a, b objectReference) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.APIVersion != b.APIVersion {
		return a.APIVersion < b.APIVersion
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.UID < b.UID
}

// alternateOwnerIdentity is another identity deps give absent's uid: the
// first after absent in referenceLess order, else the first; nil if none.
func alternateOwnerIdentity(deps []*node, absent objectReference) *objectReference {
	clusterScoped := absent.Namespace == ""
	seen := map[objectReference]bool{absent: true}
	var first, firstAfter *objectReference
	for _, d := range deps {
		for _, r := range d.getOwners() {
			if r.UID != absent.UID {
				continue
			}
			if sameCoordinates(r, absent.OwnerReference) && (clusterScoped || absent.Namespace == d.identity.Namespace) {
				continue
			}
			ref := objectReference{OwnerReference: coordinates(r), Namespace: d.identity.Namespace}
			if clusterScoped && ref.APIVersion == absent.APIVersion && ref.Kind == absent.Kind {
				// That kind is known to be cluster-scoped.
				ref.Namespace = ""
			}
			if seen[ref] {
				continue
			}
			seen[ref] = true
			if first == nil || referenceLess(ref, *first) {
				first = &ref
			}
			if referenceLess(absent, ref) && (firstAfter == nil || referenceLess(ref, *firstAfter)) {
				firstAfter = &ref
			}
		}
	}
	if firstAfter != nil {
		return firstAfter
	}
	return first
}
