package pod

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// ResizeREST serves pods/resize: reads return the pod; writes change only
// the containers' (and sidecars') resources and resize policies, as
// upstream's podResizeStrategy, bumping metadata.generation.
type ResizeREST struct {
	store *genericregistry.Store
}

var _ rest.Patcher = &ResizeREST{}

// NewResizeREST serves pods/resize over the pods' store.
func NewResizeREST(pods *genericregistry.Store) *ResizeREST {
	sub := *pods
	sub.UpdateStrategy = resizeStrategy{pods.UpdateStrategy}
	// No reset fields, as upstream's subresource: server-side apply
	// attributes to its manager all it sent, though only the resources
	// change.
	sub.ResetFieldsStrategy = nil
	return &ResizeREST{store: &sub}
}

// New returns an empty Pod.
func (r *ResizeREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pods' storage owns the store.
func (r *ResizeREST) Destroy() {}

// Get returns the whole pod.
func (r *ResizeREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update resizes the pod; it never creates one.
func (r *ResizeREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// ConvertToTable prints the pod like the pods' endpoint.
func (r *ResizeREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

// resizeStrategy is the pods' update strategy but for what a resize may
// change and how it is validated.
type resizeStrategy struct {
	rest.RESTUpdateStrategy
}

func (resizeStrategy) AllowCreateOnUpdate(context.Context) bool { return false }

// PrepareForUpdate keeps the stored pod but for the containers' resources
// and resize policies (and names, by index, so that a reorder is caught by
// validation rather than lost); the metadata stays as for a status write.
// metadata.generation counts the spec change.
func (resizeStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	spec := oldPod.Spec.DeepCopy()
	spec.Containers = takeResizable(spec.Containers, pod.Spec.Containers, false)
	spec.InitContainers = takeResizable(spec.InitContainers, pod.Spec.InitContainers, true)
	pod.Spec = *spec
	pod.Status = oldPod.Status
	metav1.ResetObjectMetaForStatus(&pod.ObjectMeta, &oldPod.ObjectMeta)
	if !apiequality.Semantic.DeepEqual(pod.Spec, oldPod.Spec) {
		pod.Generation = oldPod.Generation + 1
	}
}

// takeResizable copies the resizable fields of req into stored (sidecars
// only, for init containers); a request with other containers is taken
// whole, for validation to refuse.
func takeResizable(stored, req []corev1.Container, sidecarsOnly bool) []corev1.Container {
	if len(stored) != len(req) {
		return req
	}
	for i := range stored {
		if sidecarsOnly && (stored[i].RestartPolicy == nil || *stored[i].RestartPolicy != corev1.ContainerRestartPolicyAlways) {
			continue
		}
		stored[i].Name = req[i].Name
		stored[i].Resources = req[i].Resources
		stored[i].ResizePolicy = req[i].ResizePolicy
	}
	return stored
}

// ValidateUpdate checks the metadata and the resize.
func (resizeStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	newMeta, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	oldMeta, err := meta.Accessor(old)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessorUpdate(newMeta, oldMeta, field.NewPath("metadata"))
	return append(errs, corevalidation.ValidatePodResize(obj.(*corev1.Pod), old.(*corev1.Pod))...)
}
