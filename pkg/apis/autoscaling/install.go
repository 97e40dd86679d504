// Package autoscaling installs the autoscaling group into a scheme:
// autoscaling/v2 HorizontalPodAutoscalers (the preferred and storage
// version, whose Go type is also the internal one), autoscaling/v1 with
// upstream's conversion to and from v2, and autoscaling/v1 Scale, the body
// of every scale subresource.
package autoscaling

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/pkg/apis/core"
)

// Internal is the group's internal version.
var Internal = schema.GroupVersion{Group: autoscalingv1.GroupName, Version: runtime.APIVersionInternal}

// Install registers autoscaling/v2 and v1, their internal version (v2's
// HorizontalPodAutoscaler, v1's Scale), the v1<->v2 conversions and both
// versions' defaulters; v2 is preferred.
func Install(scheme *runtime.Scheme) error {
	if err := autoscalingv1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := autoscalingv2.AddToScheme(scheme); err != nil {
		return err
	}
	scheme.AddKnownTypes(Internal, &autoscalingv1.Scale{}, &autoscalingv2.HorizontalPodAutoscaler{}, &autoscalingv2.HorizontalPodAutoscalerList{})
	if err := addConversions(scheme); err != nil {
		return err
	}
	core.AddDefaulters(scheme, &autoscalingv2.HorizontalPodAutoscaler{}, &autoscalingv2.HorizontalPodAutoscalerList{},
		func(l *autoscalingv2.HorizontalPodAutoscalerList) []autoscalingv2.HorizontalPodAutoscaler {
			return l.Items
		}, SetDefaultsHorizontalPodAutoscaler)
	core.AddDefaulters(scheme, &autoscalingv1.HorizontalPodAutoscaler{}, &autoscalingv1.HorizontalPodAutoscalerList{},
		func(l *autoscalingv1.HorizontalPodAutoscalerList) []autoscalingv1.HorizontalPodAutoscaler {
			return l.Items
		}, SetDefaultsV1HorizontalPodAutoscaler)
	return scheme.SetVersionPriority(autoscalingv2.SchemeGroupVersion, autoscalingv1.SchemeGroupVersion)
}

func addConversions(scheme *runtime.Scheme) error {
	for _, c := range []struct {
		a, b any
		fn   conversion.ConversionFunc
	}{
		{(*autoscalingv1.HorizontalPodAutoscaler)(nil), (*autoscalingv2.HorizontalPodAutoscaler)(nil), func(a, b any, _ conversion.Scope) error {
			return ConvertV1ToV2(a.(*autoscalingv1.HorizontalPodAutoscaler), b.(*autoscalingv2.HorizontalPodAutoscaler))
		}},
		{(*autoscalingv2.HorizontalPodAutoscaler)(nil), (*autoscalingv1.HorizontalPodAutoscaler)(nil), func(a, b any, _ conversion.Scope) error {
			return ConvertV2ToV1(a.(*autoscalingv2.HorizontalPodAutoscaler), b.(*autoscalingv1.HorizontalPodAutoscaler))
		}},
		{(*autoscalingv1.HorizontalPodAutoscalerList)(nil), (*autoscalingv2.HorizontalPodAutoscalerList)(nil), func(a, b any, _ conversion.Scope) error {
			in, out := a.(*autoscalingv1.HorizontalPodAutoscalerList), b.(*autoscalingv2.HorizontalPodAutoscalerList)
			out.ListMeta = in.ListMeta
			return convertItems(in.Items, &out.Items, ConvertV1ToV2)
		}},
		{(*autoscalingv2.HorizontalPodAutoscalerList)(nil), (*autoscalingv1.HorizontalPodAutoscalerList)(nil), func(a, b any, _ conversion.Scope) error {
			in, out := a.(*autoscalingv2.HorizontalPodAutoscalerList), b.(*autoscalingv1.HorizontalPodAutoscalerList)
			out.ListMeta = in.ListMeta
			return convertItems(in.Items, &out.Items, ConvertV2ToV1)
		}},
	} {
		if err := scheme.AddConversionFunc(c.a, c.b, c.fn); err != nil {
			return err
		}
	}
	return nil
}

// convertItems converts a list's items with convert.
func convertItems[A, B any](in []A, out *[]B, convert func(*A, *B) error) error {
	*out = nil
	if in == nil {
		return nil
	}
	*out = make([]B, len(in))
	for i := range in {
		if err := convert(&in[i], &(*out)[i]); err != nil {
			return err
		}
	}
	return nil
}
