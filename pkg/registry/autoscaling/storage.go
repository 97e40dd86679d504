// Package autoscaling builds the storage of horizontalpodautoscalers,
// served as autoscaling/v2 (stored) and autoscaling/v1.
package autoscaling

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	autoscalingapi "github.com/skiff-dev/skiff/pkg/apis/autoscaling"
	autoscalingvalidation "github.com/skiff-dev/skiff/pkg/apis/autoscaling/validation"
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Versions are the served versions, preferred first.
var Versions = []string{autoscalingv2.SchemeGroupVersion.Version, autoscalingv1.SchemeGroupVersion.Version}

// Resource describes horizontalpodautoscalers: generation counts spec
// changes (HPAGeneration, beta in 1.37), status is a subresource, and the
// v1 round-trip annotations never reach storage (upstream's v2 conversion
// drops them).
var Resource = store.Resource{Resource: schema.GroupResource{Group: autoscalingv1.GroupName, Resource: "horizontalpodautoscalers"},
	Singular: "horizontalpodautoscaler", Namespaced: true, ShortNames: []string{"hpa"}, Categories: []string{"all"},
	HasStatus: true, Generation: store.GenerationOnSpec,
	PrepareForCreate:     func(obj runtime.Object) { dropRoundTripAnnotations(obj) },
	PrepareForUpdate:     func(obj, _ runtime.Object) { dropRoundTripAnnotations(obj) },
	New:                  func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
	NewList:              func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscalerList{} },
	Validate:             corevalidation.ForCreate(autoscalingvalidation.ValidateHorizontalPodAutoscaler),
	ValidateUpdate:       corevalidation.ForUpdate(autoscalingvalidation.ValidateHorizontalPodAutoscalerUpdate),
	ValidateStatusUpdate: corevalidation.ForUpdate(autoscalingvalidation.ValidateHorizontalPodAutoscalerStatusUpdate),
}

func dropRoundTripAnnotations(obj runtime.Object) {
	hpa := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	hpa.Annotations, _ = autoscalingapi.DropRoundTripAnnotations(hpa.Annotations)
}

// Storage builds horizontalpodautoscalers and their status.
func Storage(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	main, status, err := store.New(Resource, optsGetter)
	if err != nil {
		return nil, err
	}
	return map[string]rest.Storage{
		"horizontalpodautoscalers":        &hpaREST{REST: main},
		"horizontalpodautoscalers/status": &hpaStatusREST{StatusREST: status},
	}, nil
}

// withV1 adds autoscaling/v1 to reset fields given for v2 (the Go type
// knows only v2; upstream resets the same fields for both).
func withV1(fields map[fieldpath.APIVersion]*fieldpath.Set) map[fieldpath.APIVersion]*fieldpath.Set {
	if set, ok := fields[fieldpath.APIVersion(autoscalingv2.SchemeGroupVersion.String())]; ok {
		fields[fieldpath.APIVersion(autoscalingv1.SchemeGroupVersion.String())] = set
	}
	return fields
}

type hpaREST struct{ *store.REST }

func (r *hpaREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return withV1(r.REST.GetResetFields())
}

type hpaStatusREST struct{ *store.StatusREST }

func (r *hpaStatusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return withV1(r.StatusREST.GetResetFields())
}
