package history

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AdoptPatch is the strategic merge patch that makes owner the controller
// of the object uid (upstream's, with the object's UID as precondition).
func AdoptPatch(owner metav1.Object, kind schema.GroupVersionKind, uid types.UID) []byte {
	return fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"apiVersion":%q,"kind":%q,"name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}],"uid":%q}}`,
		kind.GroupVersion().String(), kind.Kind, owner.GetName(), owner.GetUID(), uid)
}

// ReleasePatch is the strategic merge patch that removes owner's reference
// from the object uid.
func ReleasePatch(owner metav1.Object, uid types.UID) []byte {
	return fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, owner.GetUID(), uid)
}

// Claimer is upstream's ControllerRefManager for one owner: which objects
// it claims, and how it adopts and releases them.
type Claimer struct {
	Owner    metav1.Object
	Kind     schema.GroupVersionKind
	Selector labels.Selector
	// Recheck is called once before the first adoption: an uncached read
	// that fails if the owner is gone or being deleted.
	Recheck func(ctx context.Context) error
	// Patch applies a strategic merge patch to the object.
	Patch func(ctx context.Context, obj client.Object, patch []byte) error
}

// Claim are the objects the owner controls whose labels match (and that
// pass filter, if set), plus the orphans that match, which it adopts; the
// objects it controls that no longer match are released. Objects of other
// controllers are left alone.
func Claim[T client.Object](ctx context.Context, c Claimer, objs []T, filter func(T) bool) ([]T, error) {
	var claimed []T
	var errs []error
	var canAdopt error
	checked := false
	deleting := c.Owner.GetDeletionTimestamp() != nil
	for _, o := range objs {
		matches := c.Selector.Matches(labels.Set(o.GetLabels())) && (filter == nil || filter(o))
		ref := metav1.GetControllerOfNoCopy(o)
		if ref != nil && ref.UID == c.Owner.GetUID() {
			if matches {
				claimed = append(claimed, o)
			} else if !deleting {
				if err := c.Patch(ctx, o, ReleasePatch(c.Owner, o.GetUID())); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
					errs = append(errs, err)
				}
			}
			continue
		}
		if ref != nil || !matches || deleting || o.GetDeletionTimestamp() != nil || o.GetNamespace() != c.Owner.GetNamespace() {
			continue
		}
		if !checked {
			canAdopt, checked = c.Recheck(ctx), true
		}
		if canAdopt != nil {
			errs = append(errs, fmt.Errorf("can't adopt %T %v/%v (%v): %v", o, o.GetNamespace(), o.GetName(), o.GetUID(), canAdopt))
			continue
		}
		if err := c.Patch(ctx, o, AdoptPatch(c.Owner, c.Kind, o.GetUID())); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		claimed = append(claimed, o)
	}
	return claimed, errors.Join(errs...)
}

// Recheck is the usual Claimer.Recheck: get reads the owner uncached; it
// must still have the UID and not be being deleted.
func Recheck(owner metav1.Object, kind string, get func(ctx context.Context) (metav1.Object, error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return fmt.Errorf("can't recheck DeletionTimestamp: %v", err)
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("original %s %v/%v is gone: got uid %v, wanted %v", kind, owner.GetNamespace(), owner.GetName(), fresh.GetUID(), owner.GetUID())
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%v/%v has just been deleted at %v", fresh.GetNamespace(), fresh.GetName(), fresh.GetDeletionTimestamp())
		}
		return nil
	}
}
