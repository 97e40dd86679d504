// Package apps builds the storage of the apps/v1 resources.
package apps

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	appsfields "github.com/skiff-dev/skiff/pkg/apis/apps"
	appsvalidation "github.com/skiff-dev/skiff/pkg/apis/apps/validation"
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	"github.com/skiff-dev/skiff/pkg/registry/scale"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

func gr(resource string) schema.GroupResource {
	return schema.GroupResource{Group: appsv1.GroupName, Resource: resource}
}

var all = []string{"all"}

// Resources describes every apps/v1 resource.
var Resources = []store.Resource{
	{Resource: gr("deployments"), PrepareForStatusUpdate: func(obj, old runtime.Object) {
		// As upstream: a status writer may not relabel a Deployment.
		obj.(*appsv1.Deployment).Labels = old.(*appsv1.Deployment).Labels
	}, Generation: store.GenerationOnSpec, Singular: "deployment", Namespaced: true, ShortNames: []string{"deploy"}, Categories: all, HasStatus: true,
		New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
		Validate: corevalidation.ForCreate(appsvalidation.ValidateDeployment), ValidateUpdate: corevalidation.ForUpdate(appsvalidation.ValidateDeploymentUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(appsvalidation.ValidateDeploymentStatusUpdate)},
	{Resource: gr("replicasets"), Generation: store.GenerationOnSpec, Singular: "replicaset", Namespaced: true, ShortNames: []string{"rs"}, Categories: all, HasStatus: true,
		Fields: appsfields.Fields["ReplicaSet"],
		New:    func() runtime.Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
		Validate: corevalidation.ForCreate(appsvalidation.ValidateReplicaSet), ValidateUpdate: corevalidation.ForUpdate(appsvalidation.ValidateReplicaSetUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(appsvalidation.ValidateReplicaSetStatusUpdate)},
	{Resource: gr("statefulsets"), Generation: store.GenerationOnSpec, Singular: "statefulset", Namespaced: true, ShortNames: []string{"sts"}, Categories: all, HasStatus: true,
		New: func() runtime.Object { return &appsv1.StatefulSet{} }, NewList: func() runtime.Object { return &appsv1.StatefulSetList{} },
		Validate: corevalidation.ForCreate(appsvalidation.ValidateStatefulSet), ValidateUpdate: corevalidation.ForUpdate(appsvalidation.ValidateStatefulSetUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(appsvalidation.ValidateStatefulSetStatusUpdate)},
	{Resource: gr("daemonsets"), PrepareForCreate: prepareDaemonSetForCreate, PrepareForUpdate: prepareDaemonSetForUpdate, Generation: store.GenerationOnSpec, Singular: "daemonset", Namespaced: true, ShortNames: []string{"ds"}, Categories: all, HasStatus: true,
		New: func() runtime.Object { return &appsv1.DaemonSet{} }, NewList: func() runtime.Object { return &appsv1.DaemonSetList{} },
		Validate: corevalidation.ForCreate(appsvalidation.ValidateDaemonSet), ValidateUpdate: corevalidation.ForUpdate(appsvalidation.ValidateDaemonSetUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(appsvalidation.ValidateDaemonSetStatusUpdate)},
	{Resource: gr("controllerrevisions"), Singular: "controllerrevision", Namespaced: true,
		New: func() runtime.Object { return &appsv1.ControllerRevision{} }, NewList: func() runtime.Object { return &appsv1.ControllerRevisionList{} },
		Validate: corevalidation.ForCreate(appsvalidation.ValidateControllerRevision), ValidateUpdate: corevalidation.ForUpdate(appsvalidation.ValidateControllerRevisionUpdate)},
}

// Storage returns the apps/v1 storage map, subresources included.
func Storage(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	m, err := store.Build(Resources, optsGetter)
	if err != nil {
		return nil, err
	}
	m["deployments/scale"] = scale.New(m["deployments"].(*store.REST).Store, scale.Replicas{
		Get: func(obj runtime.Object) (int32, int32, string) {
			d := obj.(*appsv1.Deployment)
			return replicas(d.Spec.Replicas), d.Status.Replicas, selector(d.Spec.Selector)
		},
		Set: func(obj runtime.Object, n int32) { obj.(*appsv1.Deployment).Spec.Replicas = &n },
	})
	m["replicasets/scale"] = scale.New(m["replicasets"].(*store.REST).Store, scale.Replicas{
		Get: func(obj runtime.Object) (int32, int32, string) {
			rs := obj.(*appsv1.ReplicaSet)
			return replicas(rs.Spec.Replicas), rs.Status.Replicas, selector(rs.Spec.Selector)
		},
		Set: func(obj runtime.Object, n int32) { obj.(*appsv1.ReplicaSet).Spec.Replicas = &n },
	})
	m["statefulsets/scale"] = scale.New(m["statefulsets"].(*store.REST).Store, scale.Replicas{
		Get: func(obj runtime.Object) (int32, int32, string) {
			s := obj.(*appsv1.StatefulSet)
			return replicas(s.Spec.Replicas), s.Status.Replicas, selector(s.Spec.Selector)
		},
		Set: func(obj runtime.Object, n int32) { obj.(*appsv1.StatefulSet).Spec.Replicas = &n },
	})
	return m, nil
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func selector(s *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return ""
	}
	return sel.String()
}
