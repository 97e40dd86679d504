package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

var (
	// errVirtualDelete: the item is gone; a virtual delete event will
	// take it out of the graph.
	errVirtualDelete = errors.New("enqueued virtual delete event")
	// errNamespacedOwnerOfClusterScopedObject will not resolve by retrying.
	errNamespacedOwnerOfClusterScopedObject = errors.New("cluster-scoped objects cannot refer to namespaced owners")
)

// reconcileDelete is the attemptToDelete worker: it deletes the node's
// object if none of its owners remains, or moves its foreground deletion
// on.
func (gc *GarbageCollector) reconcileDelete(ctx context.Context, uid types.UID) (reconcile.Result, error) {
	n, ok := gc.graph.read(uid)
	if !ok {
		return reconcile.Result{}, nil
	}
	logger := klog.FromContext(ctx)
	err := gc.attemptToDeleteItem(ctx, n)
	var mappingErr *restMappingError
	switch {
	case errors.Is(err, errVirtualDelete), errors.Is(err, errNamespacedOwnerOfClusterScopedObject):
		return reconcile.Result{}, nil
	case errors.As(err, &mappingErr):
		// A custom kind discovery does not serve yet, or an invalid one:
		// retried quietly, as upstream.
		logger.V(5).Info("Error syncing item", "item", n.identity, "err", err)
		return reconcile.Result{Requeue: true}, nil //nolint:staticcheck // a rate-limited retry without an error log
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("error syncing item %s: %w", n.identity, err)
	case !n.isObserved():
		// Checked again until an informer sees it or it is found absent
		// (a virtual node of an object created and deleted while a watch
		// was down must not stay forever).
		logger.V(5).Info("Item hasn't been observed via informer yet", "item", n.identity)
		return reconcile.Result{Requeue: true}, nil //nolint:staticcheck // as above
	}
	return reconcile.Result{}, nil
}

// isDangling: reference's owner does not exist (absent per the cache, not
// found, or found with another uid). Otherwise it returns the owner read
// from the API server.
func (gc *GarbageCollector) isDangling(ctx context.Context, reference metav1.OwnerReference, item *node) (bool, *metav1.PartialObjectMetadata, error) {
	logger := klog.FromContext(ctx)
	key := objectReference{OwnerReference: coordinates(reference)}
	if gc.absent.Has(key) {
		logger.V(5).Info("According to the absentOwnerCache, item's owner does not exist", "item", item.identity, "owner", reference)
		return true, nil, nil
	}
	key.Namespace = item.identity.Namespace
	if gc.absent.Has(key) {
		logger.V(5).Info("According to the absentOwnerCache, item's owner does not exist in namespace", "item", item.identity, "owner", reference)
		return true, nil, nil
	}
	resource, namespaced, err := gc.apiResource(reference.APIVersion, reference.Kind)
	if err != nil {
		return false, nil, err
	}
	if !namespaced {
		key.Namespace = ""
	}
	if item.identity.Namespace == "" && namespaced {
		logger.V(2).Info("Item is cluster-scoped, but refers to a namespaced owner", "item", item.identity, "owner", reference)
		return false, nil, errNamespacedOwnerOfClusterScopedObject
	}
	owner, err := gc.metadata.Resource(resource).Namespace(namespaceIf(namespaced, item.identity.Namespace)).Get(ctx, reference.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		gc.absent.Add(key)
		logger.V(5).Info("Item's owner is not found", "item", item.identity, "owner", reference)
		return true, nil, nil
	case err != nil:
		return false, nil, err
	}
	if owner.UID != reference.UID {
		logger.V(5).Info("Item's owner is not found, UID mismatch", "item", item.identity, "owner", reference)
		gc.absent.Add(key)
		return true, nil, nil
	}
	return false, owner, nil
}

// classifyReferences sorts refs: solid (the owner exists and is not
// deleting its dependents first), dangling (absent), and waiting (the
// owner is being deleted with the foregroundDeletion finalizer).
func (gc *GarbageCollector) classifyReferences(ctx context.Context, item *node, refs []metav1.OwnerReference) (solid, dangling, waiting []metav1.OwnerReference, err error) {
	for _, ref := range refs {
		isDangling, owner, err := gc.isDangling(ctx, ref, item)
		if err != nil {
			return nil, nil, nil, err
		}
		switch {
		case isDangling:
			dangling = append(dangling, ref)
		case owner.DeletionTimestamp != nil && hasDeleteDependentsFinalizer(owner):
			waiting = append(waiting, ref)
		default:
			solid = append(solid, ref)
		}
	}
	return solid, dangling, waiting, nil
}

func uids(refs []metav1.OwnerReference) []types.UID {
	ret := make([]types.UID, 0, len(refs))
	for _, r := range refs {
		ret = append(ret, r.UID)
	}
	return ret
}

// attemptToDeleteItem reads item's object and deletes it (uid
// precondition) if it is not held by deleting its own dependents and all
// its owners are gone; with some owners left it drops the references to
// the absent and to those waiting for their dependents. An item not found
// (or of another uid) gets a virtual delete event (errVirtualDelete).
func (gc *GarbageCollector) attemptToDeleteItem(ctx context.Context, item *node) error {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Processing item", "item", item.identity, "virtual", !item.isObserved())

	// A deletion under way is a one-way trip: its dependents are looked at
	// once it is gone.
	if item.isBeingDeleted() && !item.isDeletingDependents() {
		logger.V(5).Info("Processing item returned at once, because its DeletionTimestamp is non-nil", "item", item.identity)
		return nil
	}
	latest, err := gc.getObject(ctx, item.identity)
	switch {
	case apierrors.IsNotFound(err):
		logger.V(5).Info("Item not found, generating a virtual delete event", "item", item.identity)
		gc.builder.enqueueVirtualDeleteEvent(item.identity)
		return errVirtualDelete
	case err != nil:
		return err
	}
	if latest.UID != item.identity.UID {
		logger.V(5).Info("UID doesn't match, item not found, generating a virtual delete event", "item", item.identity)
		gc.builder.enqueueVirtualDeleteEvent(item.identity)
		return errVirtualDelete
	}
	if item.isDeletingDependents() {
		return gc.processDeletingDependentsItem(ctx, item)
	}
	refs := latest.OwnerReferences
	if len(refs) == 0 {
		logger.V(2).Info("Item doesn't have an owner, continue on next item", "item", item.identity)
		return nil
	}
	solid, dangling, waiting, err := gc.classifyReferences(ctx, item, refs)
	if err != nil {
		return err
	}
	logger.V(5).Info("Classify item's references", "item", item.identity, "solid", solid, "dangling", dangling, "waitingForDependentsDeletion", waiting)

	switch {
	case len(solid) != 0:
		logger.V(2).Info("Item has at least one existing owner, will not garbage collect", "item", item.identity, "owner", solid)
		if len(dangling) == 0 && len(waiting) == 0 {
			return nil
		}
		// References to owners waiting for their dependents go too, or
		// those owners would keep foregroundDeletion forever.
		logger.V(2).Info("Remove dangling references and waiting references for item", "item", item.identity, "dangling", dangling, "waitingForDependentsDeletion", waiting)
		gone := append(uids(dangling), uids(waiting)...)
		p, err := deleteOwnerRefsSMP(item.identity.UID, gone)
		if err != nil {
			return err
		}
		return gc.patch(ctx, item, p, gc.deleteOwnerRefsJMP(gone...))
	case len(waiting) != 0 && item.dependentsLength() != 0:
		for _, dep := range item.getDependents() {
			if dep.isDeletingDependents() {
				// A possible cycle: item stops blocking its owners, then
				// goes in the foreground.
				logger.V(2).Info("Processing item, some of its owners and its dependent have FinalizerDeletingDependents, to prevent potential cycle, its ownerReferences are going to be modified to be non-blocking, then the item is going to be deleted with Foreground", "item", item.identity, "dependent", dep.identity)
				p, err := unblockOwnerReferencesSMP(item)
				if err != nil {
					return err
				}
				if err := gc.patch(ctx, item, p, gc.unblockOwnerReferencesJMP); err != nil {
					return err
				}
				break
			}
		}
		logger.V(2).Info("At least one owner of item has FinalizerDeletingDependents, and the item itself has dependents, so it is going to be deleted in Foreground", "item", item.identity)
		policy := metav1.DeletePropagationForeground
		return gc.deleteOrVirtual(ctx, item, latest, policy)
	default:
		// No owner left: the item goes, honouring a finalizer it already
		// carries, else in the background.
		policy := metav1.DeletePropagationBackground
		switch {
		case hasOrphanFinalizer(latest):
			policy = metav1.DeletePropagationOrphan
		case hasDeleteDependentsFinalizer(latest):
			policy = metav1.DeletePropagationForeground
		}
		logger.V(2).Info("Deleting item", "item", item.identity, "propagationPolicy", policy)
		return gc.deleteOrVirtual(ctx, item, latest, policy)
	}
}

func (gc *GarbageCollector) deleteOrVirtual(ctx context.Context, item *node, latest *metav1.PartialObjectMetadata, policy metav1.DeletionPropagation) error {
	err := gc.deleteObject(ctx, item.identity, latest.ResourceVersion, latest.OwnerReferences, &policy)
	if apierrors.IsNotFound(err) {
		gc.builder.enqueueVirtualDeleteEvent(item.identity)
		return errVirtualDelete
	}
	return err
}

// processDeletingDependentsItem: item is deleted in the foreground. Once
// no dependent blocks it its finalizer goes; until then its blocking
// dependents are queued for deletion.
func (gc *GarbageCollector) processDeletingDependentsItem(ctx context.Context, item *node) error {
	logger := klog.FromContext(ctx)
	blocking := item.blockingDependents()
	if len(blocking) == 0 {
		logger.V(2).Info("Remove DeleteDependents finalizer for item", "item", item.identity)
		return gc.removeFinalizer(ctx, item, metav1.FinalizerDeleteDependents)
	}
	for _, dep := range blocking {
		if !dep.isDeletingDependents() {
			logger.V(2).Info("Adding dependent to attemptToDelete, because its owner is deletingDependents", "item", item.identity, "dependent", dep.identity)
			gc.attemptToDelete.Add(dep.identity.UID)
		}
	}
	return nil
}

// orphanDependents removes the references to owner from its dependents,
// in parallel.
func (gc *GarbageCollector) orphanDependents(ctx context.Context, owner objectReference, dependents []*node) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, dep := range dependents {
		wg.Go(func() {
			p, err := deleteOwnerRefsSMP(dep.identity.UID, []types.UID{owner.UID})
			if err == nil {
				err = gc.patch(ctx, dep, p, gc.deleteOwnerRefsJMP(owner.UID))
			}
			// A reference already gone is no error for a strategic merge
			// patch; a dependent gone is none either.
			if err != nil && !apierrors.IsNotFound(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("orphaning %s failed, %v", dep.identity, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) != 0 {
		return fmt.Errorf("failed to orphan dependents of owner %s, got errors: %s", owner, utilerrors.NewAggregate(errs).Error())
	}
	klog.FromContext(ctx).V(5).Info("Successfully updated all dependents", "owner", owner)
	return nil
}

// reconcileOrphan is the attemptToOrphan worker: the owner is being
// deleted with the orphan finalizer; its dependents lose their references
// to it, then it loses the finalizer.
func (gc *GarbageCollector) reconcileOrphan(ctx context.Context, uid types.UID) (reconcile.Result, error) {
	owner, ok := gc.graph.read(uid)
	if !ok {
		return reconcile.Result{}, nil
	}
	if err := gc.orphanDependents(ctx, owner.identity, owner.getDependents()); err != nil {
		return reconcile.Result{}, fmt.Errorf("orphanDependents for %s failed with %w", owner.identity, err)
	}
	if err := gc.removeFinalizer(ctx, owner, metav1.FinalizerOrphanDependents); err != nil {
		return reconcile.Result{}, fmt.Errorf("removeOrphanFinalizer for %s failed with %w", owner.identity, err)
	}
	return reconcile.Result{}, nil
}
