// Package store builds the etcd-backed REST storage of one resource from a
// short description: the k8s.io/apiserver generic registry Store, a strategy,
// the optional status subresource, short names, categories and table columns.
package store

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/warning"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-dev/skiff/pkg/apis/selectable"
	"github.com/skiff-dev/skiff/pkg/printers"
)

// Resource describes one served resource.
type Resource struct {
	// Resource is the plural, lower-case name with its group ("deployments" in "apps").
	Resource   schema.GroupResource
	Singular   string
	Namespaced bool
	New        func() runtime.Object
	NewList    func() runtime.Object
	ShortNames []string
	Categories []string
	// Fields are the selectable fields beyond metadata.name/namespace.
	Fields selectable.Fields
	// HasStatus gives the resource a status subresource: updates of the main
	// resource keep the stored status, and /status updates keep the rest.
	HasStatus bool
	// KeepStatusOnCreate keeps the status a create sends (upstream's nodes:
	// a kubelet registers with its addresses and capacity); otherwise a
	// create starts with an empty status.
	KeepStatusOnCreate bool
	// ValidateName checks metadata.name; DNS-1123 subdomain when nil.
	ValidateName func(name string, prefix bool) []string
	// AllowCreateOnUpdate lets PUT create a missing object, as upstream allows
	// for a few kinds (services, endpoints, events, ...).
	AllowCreateOnUpdate bool
	// PrepareForCreate, Validate and ValidateUpdate add kind-specific
	// behaviour; ValidateUpdate (immutable fields, allowed transitions) runs
	// on updates instead of Validate when set.
	PrepareForCreate func(obj runtime.Object)
	PrepareForUpdate func(obj, old runtime.Object)
	// PrepareForStatusUpdate adds to the status subresource's rule (which
	// keeps all but the status and metadata), e.g. to keep labels too.
	PrepareForStatusUpdate func(obj, old runtime.Object)
	// Warnings are upstream's warnings on a create (old is nil) or update
	// of the resource, sent as Warning headers.
	Warnings func(obj, old runtime.Object) []string
	// DeleteWarning is sent when a DELETE names no propagation policy
	// (upstream warns so for batch/v1 Jobs, whose default orphans pods).
	DeleteWarning string
	// ShouldDeleteDuringUpdate replaces the generic store's rule that an
	// update leaving a deleted object without metadata.finalizers removes
	// it (namespaces also wait for spec.finalizers). It applies to the
	// subresources too.
	ShouldDeleteDuringUpdate func(ctx context.Context, key string, obj, existing runtime.Object) bool
	Validate                 func(obj runtime.Object) field.ErrorList
	ValidateUpdate           func(obj, old runtime.Object) field.ErrorList
	// ValidateStatusUpdate validates writes through the status subresource
	// (upstream's status strategies check the status, not the spec, which
	// /status keeps as stored); the subresource runs ValidateUpdate when nil.
	ValidateStatusUpdate func(obj, old runtime.Object) field.ErrorList
	// Generation says when metadata.generation counts up (upstream sets it
	// only for some kinds).
	Generation Generation
	// ReturnDeletedObject answers DELETE with the deleted object instead of
	// a Status, as upstream does for some kinds.
	ReturnDeletedObject bool
	// OrphanByDefault makes a DELETE without a propagation policy orphan
	// dependents (upstream's legacy default for core/v1 RCs and batch/v1 Jobs).
	OrphanByDefault bool
	// GracePeriod, when set, makes deletion graceful: it returns the grace
	// period in seconds for deleting obj with options (0: at once).
	GracePeriod func(obj runtime.Object, options *metav1.DeleteOptions) int64
}

// Generation is a metadata.generation policy.
type Generation int

const (
	// NoGeneration leaves metadata.generation unset.
	NoGeneration Generation = iota
	// GenerationOnSpec starts at 1 and counts every change of .spec.
	GenerationOnSpec
	// GenerationOnContent starts at 1 and counts every change outside
	// metadata (for kinds without a spec, such as EndpointSlices).
	GenerationOnContent
	// GenerationOnContentAndLabels also counts label changes (EndpointSlices).
	GenerationOnContentAndLabels
)

// REST is the storage of a resource's main endpoint.
type REST struct {
	*genericregistry.Store
	shortNames []string
	categories []string
	strategy   *strategy
}

var (
	_ rest.ShortNamesProvider   = &REST{}
	_ rest.CategoriesProvider   = &REST{}
	_ rest.SingularNameProvider = &REST{}
)

// ShortNames are the aliases kubectl accepts (`po` for pods).
func (r *REST) ShortNames() []string { return r.shortNames }

// Delete is the generic store's, with the resource's DeleteWarning.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	r.warnOnDelete(ctx, options)
	return r.Store.Delete(ctx, name, deleteValidation, options)
}

// DeleteCollection is the generic store's, with the resource's DeleteWarning.
func (r *REST) DeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions, listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	r.warnOnDelete(ctx, options)
	return r.Store.DeleteCollection(ctx, deleteValidation, options, listOptions)
}

func (r *REST) warnOnDelete(ctx context.Context, options *metav1.DeleteOptions) {
	if w := r.strategy.res.DeleteWarning; w != "" && (options == nil || options.PropagationPolicy == nil && options.OrphanDependents == nil) {
		warning.AddWarning(ctx, "", w)
	}
}

// Categories are the groups of resources this one belongs to (`all`).
func (r *REST) Categories() []string { return r.categories }

// New builds the storage of res; status is nil unless res.HasStatus.
func New(res Resource, optsGetter generic.RESTOptionsGetter) (main *REST, status *StatusREST, err error) {
	strategy := newStrategy(res)
	tableConvertor := printers.ForResource(res.Resource)
	if tableConvertor == nil {
		tableConvertor = rest.NewDefaultTableConvertor(res.Resource)
	}
	singular := res.Resource
	singular.Resource = res.Singular
	s := &genericregistry.Store{
		NewFunc:                   res.New,
		NewListFunc:               res.NewList,
		DefaultQualifiedResource:  res.Resource,
		SingularQualifiedResource: singular,
		CreateStrategy:            strategy,
		UpdateStrategy:            strategy,
		DeleteStrategy:            strategy,
		ResetFieldsStrategy:       strategy,
		TableConvertor:            tableConvertor,
		ReturnDeletedObject:       res.ReturnDeletedObject,
		ShouldDeleteDuringUpdate:  res.ShouldDeleteDuringUpdate,
	}
	attrs := func(obj runtime.Object) (labels.Set, fields.Set, error) {
		return attributes(obj, res.Namespaced, res.Fields)
	}
	s.PredicateFunc = func(label labels.Selector, field fields.Selector) storage.SelectionPredicate {
		return storage.SelectionPredicate{Label: label, Field: field, GetAttrs: attrs}
	}
	if err := s.CompleteWithOptions(&generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: attrs}); err != nil {
		return nil, nil, err
	}
	main = &REST{Store: s, shortNames: res.ShortNames, categories: res.Categories, strategy: strategy}
	if res.HasStatus {
		keep := keepOnlyStatus
		if res.PrepareForStatusUpdate != nil {
			keep = func(obj, old runtime.Object) {
				keepOnlyStatus(obj, old)
				res.PrepareForStatusUpdate(obj, old)
			}
		}
		status = main.subresource(keep, "spec", res.ValidateStatusUpdate)
	}
	return main, status, nil
}

// Subresource returns an update-only subresource of r (status, finalize):
// keep sets on the updated object what the subresource does not change from
// the stored one; resets names the top-level field server-side apply must not
// attribute to the subresource's writers.
func (r *REST) Subresource(keep func(obj, old runtime.Object), resets string) *StatusREST {
	return r.subresource(keep, resets, nil)
}

// subresource is Subresource with its own update validation (nil: the
// main resource's).
func (r *REST) subresource(keep func(obj, old runtime.Object), resets string, validate func(obj, old runtime.Object) field.ErrorList) *StatusREST {
	sub := *r.Store
	st := &subresourceStrategy{strategy: r.strategy, keep: keep, resets: resets, validate: validate}
	sub.UpdateStrategy = st
	sub.ResetFieldsStrategy = st
	return &StatusREST{store: &sub}
}

func attributes(obj runtime.Object, namespaced bool, f selectable.Fields) (labels.Set, fields.Set, error) {
	set, err := f.Set(obj, namespaced)
	if err != nil {
		return nil, nil, err
	}
	accessor, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	return labels.Set(accessor.GetLabels()), set, nil
}

// StatusREST serves the status subresource.
type StatusREST struct {
	store *genericregistry.Store
}

var _ rest.Patcher = &StatusREST{}

// New returns an empty object of the resource.
func (r *StatusREST) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the main REST owns the storage.
func (r *StatusREST) Destroy() {}

// Get retrieves the whole object.
func (r *StatusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update changes only the status of the object.
func (r *StatusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// A status update never creates the object.
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// GetResetFields tells server-side apply which fields /status does not own.
func (r *StatusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// ConvertToTable prints the object like the main resource.
func (r *StatusREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

// Build creates the storage of every resource, keyed by plural name, with
// each status subresource under "<plural>/status".
func Build(resources []Resource, optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	m := map[string]rest.Storage{}
	for _, res := range resources {
		main, status, err := New(res, optsGetter)
		if err != nil {
			return nil, err
		}
		m[res.Resource.Resource] = main
		if status != nil {
			m[res.Resource.Resource+"/status"] = status
		}
	}
	return m, nil
}
