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

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// EphemeralContainersREST serves pods/ephemeralcontainers (kubectl debug):
// GET, PUT and PATCH of the whole Pod, of which only
// spec.ephemeralContainers changes, and only by additions. A separate
// subresource, as upstream, so that RBAC grants it apart from pod updates.
type EphemeralContainersREST struct {
	store *genericregistry.Store
}

var _ rest.Patcher = &EphemeralContainersREST{}

// NewEphemeralContainersREST serves the subresource from the pods' store.
func NewEphemeralContainersREST(pods *genericregistry.Store) *EphemeralContainersREST {
	s := *pods
	s.UpdateStrategy = ephemeralContainersStrategy{RESTUpdateStrategy: pods.UpdateStrategy}
	// No reset fields, as upstream's subresource: server-side apply
	// attributes to its manager all it sent, though only the ephemeral
	// containers change.
	s.ResetFieldsStrategy = nil
	return &EphemeralContainersREST{store: &s}
}

// New returns an empty Pod.
func (r *EphemeralContainersREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pod storage owns the store.
func (r *EphemeralContainersREST) Destroy() {}

// Get returns the whole pod.
func (r *EphemeralContainersREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update adds ephemeral containers to the pod; it never creates one.
func (r *EphemeralContainersREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// ConvertToTable prints the pod like pods do.
func (r *EphemeralContainersREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

// ephemeralContainersStrategy is the pods' update strategy but for what
// an update through the subresource keeps and how it is validated.
type ephemeralContainersStrategy struct {
	rest.RESTUpdateStrategy
}

// PrepareForUpdate keeps the stored pod but for spec.ephemeralContainers;
// of the metadata, labels, annotations, finalizers, owner references and
// the deletion timestamp stay as stored too (upstream resets them as for
// a status write). metadata.generation counts the spec change.
func (ephemeralContainersStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	containers := pod.Spec.EphemeralContainers
	pod.Spec = *oldPod.Spec.DeepCopy()
	pod.Spec.EphemeralContainers = containers
	pod.Status = oldPod.Status
	metav1.ResetObjectMetaForStatus(&pod.ObjectMeta, &oldPod.ObjectMeta)
	if !apiequality.Semantic.DeepEqual(pod.Spec, oldPod.Spec) {
		pod.Generation = oldPod.Generation + 1
	}
}

// ValidateUpdate checks the metadata and the ephemeral containers.
func (ephemeralContainersStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&pod.ObjectMeta, &oldPod.ObjectMeta, field.NewPath("metadata"))
	return append(errs, corevalidation.ValidatePodEphemeralContainersUpdate(pod, oldPod)...)
}

// WarningsOnUpdate: none, as upstream.
func (ephemeralContainersStrategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
