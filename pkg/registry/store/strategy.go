package store

import (
	"context"
	"reflect"
	"strings"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// strategy is the create/update/delete behaviour shared by every resource:
// metadata validation, the status/spec split and generation bumps.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	res Resource
}

func newStrategy(res Resource) *strategy {
	if res.ValidateName == nil {
		res.ValidateName = apimachineryvalidation.NameIsDNSSubdomain
	}
	return &strategy{ObjectTyper: apis.Scheme, NameGenerator: names.SimpleNameGenerator, res: res}
}

func (s *strategy) NamespaceScoped() bool { return s.res.Namespaced }

func (s *strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.res.HasStatus && !s.res.KeepStatusOnCreate {
		resetField(obj, "Status")
	}
	if s.res.Generation != NoGeneration {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetGeneration(1)
		}
	}
	if s.res.PrepareForCreate != nil {
		s.res.PrepareForCreate(obj)
	}
}

func (s *strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.res.HasStatus {
		copyField(obj, old, "Status")
	}
	if s.res.PrepareForUpdate != nil {
		s.res.PrepareForUpdate(obj, old)
	}
	if s.res.Generation != NoGeneration && (contentChanged(obj, old, s.res.Generation) ||
		s.res.Generation == GenerationOnContentAndLabels && labelsChanged(obj, old)) {
		newMeta, err1 := meta.Accessor(obj)
		oldMeta, err2 := meta.Accessor(old)
		if err1 == nil && err2 == nil {
			newMeta.SetGeneration(oldMeta.GetGeneration() + 1)
		}
	}
}

// DefaultGarbageCollectionPolicy is what a DELETE without a propagation
// policy does to dependents.
func (s *strategy) DefaultGarbageCollectionPolicy(context.Context) rest.GarbageCollectionPolicy {
	if s.res.OrphanByDefault {
		return rest.OrphanDependents
	}
	return rest.DeleteDependents
}

func (s *strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(m, s.res.Namespaced, s.res.ValidateName, field.NewPath("metadata"))
	if s.res.Validate != nil {
		errs = append(errs, s.res.Validate(obj)...)
	}
	return errs
}

func (s *strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	newMeta, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	oldMeta, err := meta.Accessor(old)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessorUpdate(newMeta, oldMeta, field.NewPath("metadata"))
	switch {
	case s.res.ValidateUpdate != nil:
		errs = append(errs, s.res.ValidateUpdate(obj, old)...)
	case s.res.Validate != nil:
		errs = append(errs, s.res.Validate(obj)...)
	}
	return errs
}

func (s *strategy) WarningsOnCreate(_ context.Context, obj runtime.Object) []string {
	if s.res.Warnings == nil {
		return nil
	}
	return s.res.Warnings(obj, nil)
}

func (s *strategy) WarningsOnUpdate(_ context.Context, obj, old runtime.Object) []string {
	if s.res.Warnings == nil {
		return nil
	}
	return s.res.Warnings(obj, old)
}
func (s *strategy) Canonicalize(runtime.Object)                   {}
func (s *strategy) AllowCreateOnUpdate(context.Context) bool      { return s.res.AllowCreateOnUpdate }
func (s *strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

// CheckGracefulDelete sets the grace period of a delete for resources with
// graceful deletion (pods): the object then stays, with a deletionTimestamp,
// until its owner (the kubelet) deletes it with grace period 0.
func (s *strategy) CheckGracefulDelete(_ context.Context, obj runtime.Object, options *metav1.DeleteOptions) bool {
	if s.res.GracePeriod == nil || options == nil {
		return false
	}
	period := s.res.GracePeriod(obj, options)
	options.GracePeriodSeconds = &period
	return true
}

// GetResetFields: writes to the main resource do not own the status.
func (s *strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	if !s.res.HasStatus {
		return nil
	}
	return s.resetFields("status")
}

func (s *strategy) resetFields(field string) map[fieldpath.APIVersion]*fieldpath.Set {
	gvks, _, err := s.ObjectKinds(s.res.New())
	if err != nil {
		return nil
	}
	out := map[fieldpath.APIVersion]*fieldpath.Set{}
	for _, gvk := range gvks {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		out[fieldpath.APIVersion(gvk.GroupVersion().String())] = fieldpath.NewSet(fieldpath.MakePathOrDie(field))
	}
	return out
}

// subresourceStrategy governs updates through a subresource such as
// /status: the stored object is kept but for what keep lets through (and,
// as upstream for most kinds, the metadata the request changes).
type subresourceStrategy struct {
	*strategy
	keep     func(obj, old runtime.Object)
	resets   string
	validate func(obj, old runtime.Object) field.ErrorList
}

func (s *subresourceStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	s.keep(obj, old)
}

// ValidateUpdate checks the metadata and, with validate, what the
// subresource may change instead of the whole object.
func (s *subresourceStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	if s.validate == nil {
		return s.strategy.ValidateUpdate(ctx, obj, old)
	}
	newMeta, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	oldMeta, err := meta.Accessor(old)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessorUpdate(newMeta, oldMeta, field.NewPath("metadata"))
	return append(errs, s.validate(obj, old)...)
}

func (s *subresourceStrategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	if s.resets == "" || !hasField(s.res.New(), strings.ToUpper(s.resets[:1])+s.resets[1:]) {
		return nil
	}
	return s.resetFields(s.resets)
}

// keepOnlyStatus is the status subresource's rule: the status and the
// metadata (which subresourceStrategy then resets but for managed fields)
// come from the request, everything else stays as stored.
func keepOnlyStatus(obj, old runtime.Object) {
	newV, oldV := reflect.ValueOf(obj).Elem(), reflect.ValueOf(old).Elem()
	for i := 0; i < newV.NumField(); i++ {
		switch newV.Type().Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		newV.Field(i).Set(oldV.Field(i))
	}
}

// contentChanged compares the spec (GenerationOnSpec) or every field but
// metadata and status (GenerationOnContent).
func contentChanged(obj, old runtime.Object, policy Generation) bool {
	newV, oldV := reflect.ValueOf(obj).Elem(), reflect.ValueOf(old).Elem()
	for i := 0; i < newV.NumField(); i++ {
		name := newV.Type().Field(i).Name
		switch {
		case name == "TypeMeta" || name == "ObjectMeta" || name == "Status":
			continue
		case policy == GenerationOnSpec && name != "Spec":
			continue
		}
		if !apiequality.Semantic.DeepEqual(newV.Field(i).Interface(), oldV.Field(i).Interface()) {
			return true
		}
	}
	return false
}

func hasField(obj runtime.Object, name string) bool {
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct && v.Elem().FieldByName(name).IsValid()
}

func resetField(obj runtime.Object, name string) {
	if !hasField(obj, name) {
		return
	}
	f := reflect.ValueOf(obj).Elem().FieldByName(name)
	f.Set(reflect.Zero(f.Type()))
}

func copyField(dst, src runtime.Object, name string) {
	if !hasField(dst, name) || !hasField(src, name) {
		return
	}
	reflect.ValueOf(dst).Elem().FieldByName(name).Set(reflect.ValueOf(src).Elem().FieldByName(name))
}

func labelsChanged(obj, old runtime.Object) bool {
	newMeta, err1 := meta.Accessor(obj)
	oldMeta, err2 := meta.Accessor(old)
	return err1 == nil && err2 == nil && !apiequality.Semantic.DeepEqual(newMeta.GetLabels(), oldMeta.GetLabels())
}
