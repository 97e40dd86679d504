package garbagecollector

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/lru"
)

// referenceCache remembers owners the API server said are absent.
type referenceCache struct{ c *lru.Cache }

func newReferenceCache(size int) *referenceCache { return &referenceCache{lru.New(size)} }

func (c *referenceCache) Add(r objectReference) { c.c.Add(r, nil) }

func (c *referenceCache) Has(r objectReference) bool {
	_, ok := c.c.Get(r)
	return ok
}

// restMappingError: a reference names a kind discovery does not serve (yet).
type restMappingError struct{ kind, version string }

func (r *restMappingError) Error() string {
	return fmt.Sprintf("unable to get REST mapping for %s/%s.", r.version, r.kind)
}

func (gc *GarbageCollector) apiResource(apiVersion, kind string) (schema.GroupVersionResource, bool, error) {
	gvk := schema.FromAPIVersionAndKind(apiVersion, kind)
	mapping, err := gc.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false, &restMappingError{kind: kind, version: apiVersion}
	}
	return mapping.Resource, mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

func namespaceIf(namespaced bool, ns string) string {
	if namespaced {
		return ns
	}
	return ""
}

// deleteObject deletes item with preconditions on its uid and, if given,
// resourceVersion; a conflict on the version alone (the owner references
// unchanged) is retried with the uid only.
func (gc *GarbageCollector) deleteObject(ctx context.Context, item objectReference, resourceVersion string, owners []metav1.OwnerReference, policy *metav1.DeletionPropagation) error {
	resource, namespaced, err := gc.apiResource(item.APIVersion, item.Kind)
	if err != nil {
		return err
	}
	uid := item.UID
	pre := metav1.Preconditions{UID: &uid}
	if resourceVersion != "" {
		pre.ResourceVersion = &resourceVersion
	}
	client := gc.metadata.Resource(resource).Namespace(namespaceIf(namespaced, item.Namespace))
	err = client.Delete(ctx, item.Name, metav1.DeleteOptions{Preconditions: &pre, PropagationPolicy: policy})
	if apierrors.IsConflict(err) && resourceVersion != "" {
		live, liveErr := client.Get(ctx, item.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(liveErr) {
			return liveErr
		}
		if liveErr == nil && live.UID == item.UID && live.ResourceVersion != resourceVersion && reflect.DeepEqual(live.OwnerReferences, owners) {
			return gc.deleteObject(ctx, item, "", nil, policy)
		}
	}
	return err
}

func (gc *GarbageCollector) getObject(ctx context.Context, item objectReference) (*metav1.PartialObjectMetadata, error) {
	resource, namespaced, err := gc.apiResource(item.APIVersion, item.Kind)
	if err != nil {
		return nil, err
	}
	if namespaced && item.Namespace == "" {
		return nil, errNamespacedOwnerOfClusterScopedObject
	}
	return gc.metadata.Resource(resource).Namespace(namespaceIf(namespaced, item.Namespace)).Get(ctx, item.Name, metav1.GetOptions{})
}

func (gc *GarbageCollector) patchObject(ctx context.Context, item objectReference, patch []byte, pt types.PatchType) (*metav1.PartialObjectMetadata, error) {
	resource, namespaced, err := gc.apiResource(item.APIVersion, item.Kind)
	if err != nil {
		return nil, err
	}
	return gc.metadata.Resource(resource).Namespace(namespaceIf(namespaced, item.Namespace)).Patch(ctx, item.Name, pt, patch, metav1.PatchOptions{})
}

// cachedMetadata is item's object from its monitor's store, else from
// the API server.
func (gc *GarbageCollector) cachedMetadata(ctx context.Context, item objectReference) (metav1.Object, error) {
	resource, namespaced, err := gc.apiResource(item.APIVersion, item.Kind)
	if err != nil {
		return nil, err
	}
	ns := namespaceIf(namespaced, item.Namespace)
	if s := gc.builder.store(resource); s != nil {
		key := item.Name
		if ns != "" {
			key = ns + "/" + item.Name
		}
		if raw, ok, err := s.GetByKey(key); err != nil {
			return nil, err
		} else if ok {
			return meta.Accessor(raw)
		}
	}
	return gc.metadata.Resource(resource).Namespace(ns).Get(ctx, item.Name, metav1.GetOptions{})
}

// removeFinalizer takes finalizer off owner's object (a merge patch at its
// resourceVersion, retried on conflicts).
func (gc *GarbageCollector) removeFinalizer(ctx context.Context, owner *node, finalizer string) error {
	logger := klog.FromContext(ctx)
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		obj, err := gc.getObject(ctx, owner.identity)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot finalize owner %s, because cannot get it: %v. The garbage collector will retry later", owner.identity, err)
		}
		if !slices.Contains(obj.Finalizers, finalizer) {
			logger.V(5).Info("Finalizer already removed from object", "finalizer", finalizer, "object", owner.identity)
			return nil
		}
		finalizers := slices.DeleteFunc(slices.Clone(obj.Finalizers), func(f string) bool { return f == finalizer })
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": obj.ResourceVersion, "finalizers": finalizers}})
		if err != nil {
			return fmt.Errorf("unable to finalize %s due to an error serializing patch: %v", owner.identity, err)
		}
		_, err = gc.patchObject(ctx, owner.identity, patch, types.MergePatchType)
		return err
	})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("updateMaxRetries(%d) has reached. The garbage collector will retry later for owner %v", retry.DefaultBackoff.Steps, owner.identity)
	}
	return err
}

// patch applies a strategic merge patch, or for resources without one
// (custom resources answer 415) the JSON merge patch jmp builds.
func (gc *GarbageCollector) patch(ctx context.Context, item *node, smp []byte, jmp func(context.Context, *node) ([]byte, error)) error {
	_, err := gc.patchObject(ctx, item.identity, smp, types.StrategicMergePatchType)
	if err == nil || !apierrors.IsUnsupportedMediaType(err) {
		return err
	}
	p, err := jmp(ctx, item)
	if err != nil {
		return err
	}
	_, err = gc.patchObject(ctx, item.identity, p, types.MergePatchType)
	return err
}

// deleteOwnerRefsSMP is upstream's strategic merge patch removing the
// references to owners from the object with uid dependent.
func deleteOwnerRefsSMP(dependent types.UID, owners []types.UID) ([]byte, error) {
	refs := make([]map[string]string, 0, len(owners))
	for _, o := range owners {
		refs = append(refs, map[string]string{"$patch": "delete", "uid": string(o)})
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{"uid": dependent, "ownerReferences": refs}})
}

// ownerRefsMergePatch is the JSON merge patch setting item's references
// (at the resourceVersion they were read at) to those edit makes of them.
func (gc *GarbageCollector) ownerRefsMergePatch(ctx context.Context, item *node, edit func([]metav1.OwnerReference) []metav1.OwnerReference) ([]byte, error) {
	obj, err := gc.cachedMetadata(ctx, item.identity)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": obj.GetResourceVersion(), "ownerReferences": edit(obj.GetOwnerReferences())}})
}

func (gc *GarbageCollector) deleteOwnerRefsJMP(owners ...types.UID) func(context.Context, *node) ([]byte, error) {
	return func(ctx context.Context, item *node) ([]byte, error) {
		return gc.ownerRefsMergePatch(ctx, item, func(refs []metav1.OwnerReference) []metav1.OwnerReference {
			kept := []metav1.OwnerReference{}
			for _, r := range refs {
				if !slices.Contains(owners, r.UID) {
					kept = append(kept, r)
				}
			}
			return kept
		})
	}
}

// unblockOwnerReferencesSMP turns blockOwnerDeletion off in n's blocking
// references.
func unblockOwnerReferencesSMP(n *node) ([]byte, error) {
	var refs []metav1.OwnerReference
	for _, o := range n.getOwners() {
		if blocks(o) {
			o.BlockOwnerDeletion = new(bool)
			refs = append(refs, o)
		}
	}
	m := map[string]any{"uid": n.identity.UID}
	if len(refs) > 0 {
		// Never null: that would drop every reference.
		m["ownerReferences"] = refs
	}
	return json.Marshal(map[string]any{"metadata": m})
}

func (gc *GarbageCollector) unblockOwnerReferencesJMP(ctx context.Context, n *node) ([]byte, error) {
	return gc.ownerRefsMergePatch(ctx, n, func([]metav1.OwnerReference) []metav1.OwnerReference {
		var refs []metav1.OwnerReference
		for _, o := range n.getOwners() {
			o.BlockOwnerDeletion = new(bool)
			refs = append(refs, o)
		}
		return refs
	})
}
