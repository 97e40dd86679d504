package pod

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
)

// SpecSubresourceREST serves a pods subresource that writes one part of
// the pod's spec (pods/ephemeralcontainers, pods/resize): GET, PUT and
// PATCH of the whole Pod, of which only that part changes. Subresources of
// their own, as upstream, so that RBAC grants them apart from pod updates.
type SpecSubresourceREST struct {
	store *genericregistry.Store
}

var _ rest.Patcher = &SpecSubresourceREST{}

// specPart is what one such subresource may change and how it is checked.
type specPart struct {
	// take copies into spec, the stored pod's, what req may change.
	take func(spec *corev1.PodSpec, req *corev1.Pod)
	// validate checks the change, metadata apart.
	validate func(pod, old *corev1.Pod) field.ErrorList
}

func newSpecSubresourceREST(pods *genericregistry.Store, part specPart) *SpecSubresourceREST {
	s := *pods
	s.UpdateStrategy = specPartStrategy{RESTUpdateStrategy: pods.UpdateStrategy, part: part}
	// No reset fields, as upstream's subresources: server-side apply
	// attributes to its manager all it sent, though only the part changes.
	s.ResetFieldsStrategy = nil
	return &SpecSubresourceREST{store: &s}
}

// New returns an empty Pod.
func (r *SpecSubresourceREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pods' storage owns the store.
func (r *SpecSubresourceREST) Destroy() {}

// Get returns the whole pod.
func (r *SpecSubresourceREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update changes the part of the pod; it never creates one.
func (r *SpecSubresourceREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// ConvertToTable prints the pod like the pods' endpoint.
func (r *SpecSubresourceREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

// specPartStrategy is the pods' update strategy but for what an update
// through the subresource keeps and how it is validated.
type specPartStrategy struct {
	rest.RESTUpdateStrategy
	part specPart
}

func (specPartStrategy) AllowCreateOnUpdate(context.Context) bool { return false }

// PrepareForUpdate keeps the stored pod but for the part; the metadata
// stays as for a status write (labels, annotations, finalizers, owner
// references, deletion timestamp). metadata.generation counts the spec
// change.
func (s specPartStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	spec := oldPod.Spec.DeepCopy()
	s.part.take(spec, pod)
	pod.Spec = *spec
	pod.Status = oldPod.Status
	metav1.ResetObjectMetaForStatus(&pod.ObjectMeta, &oldPod.ObjectMeta)
	if !apiequality.Semantic.DeepEqual(pod.Spec, oldPod.Spec) {
		pod.Generation = oldPod.Generation + 1
	}
}

// ValidateUpdate checks the metadata and the part.
func (s specPartStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&pod.ObjectMeta, &oldPod.ObjectMeta, field.NewPath("metadata"))
	return append(errs, s.part.validate(pod, oldPod)...)
}

// WarningsOnUpdate: none, as upstream.
func (specPartStrategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
