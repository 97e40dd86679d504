package apps

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
)

// templateGenerationAnnotation is the v1 form of upstream's internal
// DaemonSet templateGeneration: 1 at create, +1 per pod template change.
const templateGenerationAnnotation = "deprecated.daemonset.template.generation"

func prepareDaemonSetForCreate(obj runtime.Object) {
	setTemplateGeneration(obj.(*appsv1.DaemonSet), 1)
}

func prepareDaemonSetForUpdate(obj, old runtime.Object) {
	ds, was := obj.(*appsv1.DaemonSet), old.(*appsv1.DaemonSet)
	generation, _ := strconv.ParseInt(was.Annotations[templateGenerationAnnotation], 10, 64)
	if !apiequality.Semantic.DeepEqual(ds.Spec.Template, was.Spec.Template) {
		generation++
	}
	setTemplateGeneration(ds, generation)
}

func setTemplateGeneration(ds *appsv1.DaemonSet, generation int64) {
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[templateGenerationAnnotation] = strconv.FormatInt(generation, 10)
}
