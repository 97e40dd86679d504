// Package history is upstream's pkg/controller/history for skiff's
// controllers: ControllerRevisions as the StatefulSet and DaemonSet
// controllers keep them (names <parent>-<hash>, the template stored as a
// strategic merge patch that replaces it, revision numbers, collision
// counts, adoption of orphans).
package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ControllerRevisionHashLabel is the label of a revision's hash
// (upstream's).
const ControllerRevisionHashLabel = "controller.kubernetes.io/hash"

// Name is <prefix>-<hash>, the prefix cut to 223 characters (upstream's
// ControllerRevisionName).
func Name(prefix, hash string) string {
	if len(prefix) > 223 {
		prefix = prefix[:223]
	}
	return prefix + "-" + hash
}

// Hash is upstream's HashControllerRevision: fnv32 of the data, then of
// probe in decimal, in rand's safe alphabet.
func Hash(cr *appsv1.ControllerRevision, probe *int32) string {
	hf := fnv.New32()
	hf.Write(cr.Data.Raw)
	if probe != nil {
		hf.Write([]byte(strconv.FormatInt(int64(*probe), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(hf.Sum32()))
}

// New is upstream's NewControllerRevision: a revision of parent (its
// controller reference), with the template's labels plus the hash label,
// named by the hash of data and collisionCount.
func New(parent metav1.Object, kind schema.GroupVersionKind, templateLabels map[string]string, data []byte, revision int64, collisionCount *int32) *appsv1.ControllerRevision {
	lbls := make(map[string]string, len(templateLabels)+1)
	for k, v := range templateLabels {
		lbls[k] = v
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Labels:          lbls,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(parent, kind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}
	hash := Hash(cr, collisionCount)
	cr.Name = Name(parent.GetName(), hash)
	cr.Labels[ControllerRevisionHashLabel] = hash
	return cr
}

// TemplatePatch is what both controllers store in a revision: the
// object's spec.template with "$patch": "replace", as a strategic merge
// patch ({"spec":{"template":{...}}}, keys sorted).
func TemplatePatch(obj any) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	spec, _ := raw["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		return nil, fmt.Errorf("object has no spec.template")
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
}

// Sort orders revisions by revision number, then creation, then name.
func Sort(revisions []*appsv1.ControllerRevision) {
	sort.SliceStable(revisions, func(i, j int) bool {
		a, b := revisions[i], revisions[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.Name < b.Name
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	})
}

// Equal says whether two revisions hold the same data.
func Equal(a, b *appsv1.ControllerRevision) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Data.Raw, b.Data.Raw)
}

// FindEqual are the revisions holding needle's data.
func FindEqual(revisions []*appsv1.ControllerRevision, needle *appsv1.ControllerRevision) []*appsv1.ControllerRevision {
	var eq []*appsv1.ControllerRevision
	for _, r := range revisions {
		if Equal(r, needle) {
			eq = append(eq, r)
		}
	}
	return eq
}

// History reads revisions through a cache and writes them through Core.
type History struct {
	Client client.Reader
	Core   kubernetes.Interface
}

// List are the revisions in parent's namespace that selector matches and
// that parent controls or no one does (read-only: shared with the cache).
func (h *History) List(ctx context.Context, parent metav1.Object, selector labels.Selector) ([]*appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	if err := h.Client.List(ctx, &list, client.InNamespace(parent.GetNamespace()), client.MatchingLabelsSelector{Selector: selector}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var owned []*appsv1.ControllerRevision
	for i := range list.Items {
		cr := &list.Items[i]
		if ref := metav1.GetControllerOfNoCopy(cr); ref == nil || ref.UID == parent.GetUID() {
			owned = append(owned, cr)
		}
	}
	return owned, nil
}

// Create creates revision, renamed by the hash with collisionCount; a
// revision of that name holding the same data is taken as it is, one
// holding other data bumps collisionCount and the next name is tried.
func (h *History) Create(ctx context.Context, parent metav1.Object, revision *appsv1.ControllerRevision, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	if collisionCount == nil {
		return nil, fmt.Errorf("collisionCount should not be nil")
	}
	clone := revision.DeepCopy()
	ns := parent.GetNamespace()
	for {
		hash := Hash(revision, collisionCount)
		// Upstream renames it only: the hash label keeps the first hash.
		clone.Name = Name(parent.GetName(), hash)
		created, err := h.Core.AppsV1().ControllerRevisions(ns).Create(ctx, clone, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			exists, err := h.Core.AppsV1().ControllerRevisions(ns).Get(ctx, clone.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if bytes.Equal(exists.Data.Raw, clone.Data.Raw) {
				return exists, nil
			}
			*collisionCount++
			continue
		}
		return created, err
	}
}

// UpdateRevision gives revision the number newRevision.
func (h *History) UpdateRevision(ctx context.Context, revision *appsv1.ControllerRevision, newRevision int64) (*appsv1.ControllerRevision, error) {
	clone := revision.DeepCopy()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if clone.Revision == newRevision {
			return nil
		}
		clone.Revision = newRevision
		updated, err := h.Core.AppsV1().ControllerRevisions(clone.Namespace).Update(ctx, clone, metav1.UpdateOptions{})
		if err == nil {
			clone = updated
			return nil
		}
		if fresh, gerr := h.Core.AppsV1().ControllerRevisions(clone.Namespace).Get(ctx, clone.Name, metav1.GetOptions{}); gerr == nil {
			clone = fresh
		}
		return err
	})
	return clone, err
}

// Delete deletes revision.
func (h *History) Delete(ctx context.Context, revision *appsv1.ControllerRevision) error {
	return h.Core.AppsV1().ControllerRevisions(revision.Namespace).Delete(ctx, revision.Name, metav1.DeleteOptions{})
}

// Adopt makes parent the controller of the orphan revision.
func (h *History) Adopt(ctx context.Context, parent metav1.Object, kind schema.GroupVersionKind, revision *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	if owner := metav1.GetControllerOfNoCopy(revision); owner != nil {
		return nil, fmt.Errorf("attempt to adopt revision owned by %v", owner)
	}
	return h.Core.AppsV1().ControllerRevisions(parent.GetNamespace()).Patch(ctx, revision.Name, types.StrategicMergePatchType, AdoptPatch(parent, kind, revision.UID), metav1.PatchOptions{})
}

// Release removes parent's reference from revision (gone or invalid
// revisions count as released).
func (h *History) Release(ctx context.Context, parent metav1.Object, revision *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	released, err := h.Core.AppsV1().ControllerRevisions(revision.Namespace).Patch(ctx, revision.Name, types.StrategicMergePatchType, ReleasePatch(parent, revision.UID), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil, nil
	}
	return released, err
}
