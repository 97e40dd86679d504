// Package core builds the storage of the core ("" group) v1 resources.
package core

import (
	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	corefields "github.com/skiff-dev/skiff/pkg/apis/core"
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	"github.com/skiff-dev/skiff/pkg/registry/core/namespace"
	"github.com/skiff-dev/skiff/pkg/registry/core/pod"
	"github.com/skiff-dev/skiff/pkg/registry/core/service"
	"github.com/skiff-dev/skiff/pkg/registry/scale"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

func gr(resource string) schema.GroupResource { return schema.GroupResource{Resource: resource} }

var all = []string{"all"}

// Resources describes every core/v1 resource backed by a store.
var Resources = []store.Resource{
	{Resource: gr("pods"), Singular: "pod", Namespaced: true, Generation: store.GenerationOnSpec, ReturnDeletedObject: true, ShortNames: []string{"po"}, Categories: all, HasStatus: true,
		New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidatePod), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidatePodUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(corevalidation.ValidatePodStatusUpdate), PrepareForStatusUpdate: pod.PrepareForStatusUpdate,
		Fields: corefields.Fields["Pod"], GracePeriod: pod.GracePeriod, PrepareForCreate: pod.PrepareForCreate},
	{Resource: gr("services"), Singular: "service", Namespaced: true, ReturnDeletedObject: true, ShortNames: []string{"svc"}, Categories: all, HasStatus: true,
		New: func() runtime.Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateService), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidateServiceUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(corevalidation.ValidateServiceStatusUpdate),
		Fields:               corefields.Fields["Service"], ValidateName: apimachineryvalidation.NameIsDNSLabel, AllowCreateOnUpdate: true},
	{Resource: gr("endpoints"), Singular: "endpoints", Namespaced: true, ShortNames: []string{"ep"}, AllowCreateOnUpdate: true,
		New: func() runtime.Object { return &corev1.Endpoints{} }, NewList: func() runtime.Object { return &corev1.EndpointsList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateEndpoints), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidateEndpointsUpdate)},
	{Resource: gr("configmaps"), Singular: "configmap", Namespaced: true, ShortNames: []string{"cm"},
		New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateConfigMap), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidateConfigMapUpdate)},
	{Resource: gr("secrets"), Singular: "secret", Namespaced: true, Fields: corefields.Fields["Secret"],
		New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateSecret), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidateSecretUpdate),
		Warnings: corevalidation.SecretWarnings},
	{Resource: gr("serviceaccounts"), Singular: "serviceaccount", Namespaced: true, ReturnDeletedObject: true, ShortNames: []string{"sa"}, AllowCreateOnUpdate: true,
		New: func() runtime.Object { return &corev1.ServiceAccount{} }, NewList: func() runtime.Object { return &corev1.ServiceAccountList{} }},
	{Resource: gr("nodes"), Singular: "node", ShortNames: []string{"no"}, HasStatus: true, KeepStatusOnCreate: true, Fields: corefields.Fields["Node"],
		New: func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateNode), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidateNodeUpdate)},
	{Resource: gr("namespaces"), Singular: "namespace", ShortNames: []string{"ns"}, HasStatus: true, Fields: corefields.Fields["Namespace"],
		ValidateName: apimachineryvalidation.ValidateNamespaceName,
		New:          func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
		Validate:             corevalidation.ForCreate(corevalidation.ValidateNamespace),
		ValidateStatusUpdate: corevalidation.ForUpdate(corevalidation.ValidateNamespaceStatusUpdate),
		PrepareForCreate:     namespace.PrepareForCreate, PrepareForUpdate: namespace.KeepFinalizers,
		ShouldDeleteDuringUpdate: namespace.ShouldDeleteDuringUpdate},
	{Resource: gr("events"), Singular: "event", Namespaced: true, ShortNames: []string{"ev"}, AllowCreateOnUpdate: true, Fields: corefields.Fields["Event"],
		New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateEvent)},
	{Resource: gr("resourcequotas"), Singular: "resourcequota", Namespaced: true, ReturnDeletedObject: true, ShortNames: []string{"quota"}, HasStatus: true,
		New: func() runtime.Object { return &corev1.ResourceQuota{} }, NewList: func() runtime.Object { return &corev1.ResourceQuotaList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateResourceQuota), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidateResourceQuotaUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(corevalidation.ValidateResourceQuotaStatusUpdate)},
	{Resource: gr("limitranges"), Singular: "limitrange", Namespaced: true, ShortNames: []string{"limits"}, AllowCreateOnUpdate: true,
		New: func() runtime.Object { return &corev1.LimitRange{} }, NewList: func() runtime.Object { return &corev1.LimitRangeList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateLimitRange)},
	{Resource: gr("persistentvolumes"), Singular: "persistentvolume", ReturnDeletedObject: true, ShortNames: []string{"pv"}, HasStatus: true,
		New: func() runtime.Object { return &corev1.PersistentVolume{} }, NewList: func() runtime.Object { return &corev1.PersistentVolumeList{} },
		PrepareForCreate: func(obj runtime.Object) {
			// Upstream stamps the (defaulted Pending) phase's start.
			now := metav1.Now()
			obj.(*corev1.PersistentVolume).Status.LastPhaseTransitionTime = &now
		},
		Validate: corevalidation.ForCreate(corevalidation.ValidatePersistentVolume), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidatePersistentVolumeUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(corevalidation.ValidatePersistentVolumeStatusUpdate)},
	{Resource: gr("persistentvolumeclaims"), Singular: "persistentvolumeclaim", Namespaced: true, ReturnDeletedObject: true, ShortNames: []string{"pvc"}, HasStatus: true,
		New: func() runtime.Object { return &corev1.PersistentVolumeClaim{} }, NewList: func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidatePersistentVolumeClaim), ValidateUpdate: corevalidation.ForUpdate(corevalidation.ValidatePersistentVolumeClaimUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(corevalidation.ValidatePersistentVolumeClaimStatusUpdate)},
	{Resource: gr("replicationcontrollers"), Singular: "replicationcontroller", Namespaced: true, Generation: store.GenerationOnSpec, OrphanByDefault: true, ShortNames: []string{"rc"}, Categories: all, HasStatus: true,
		Fields: corefields.Fields["ReplicationController"],
		New:    func() runtime.Object { return &corev1.ReplicationController{} }, NewList: func() runtime.Object { return &corev1.ReplicationControllerList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidateReplicationController), ValidateStatusUpdate: corevalidation.ForUpdate(corevalidation.ValidateReplicationControllerStatusUpdate)},
	{Resource: gr("podtemplates"), Singular: "podtemplate", Namespaced: true, ReturnDeletedObject: true, Generation: store.GenerationOnContent,
		New: func() runtime.Object { return &corev1.PodTemplate{} }, NewList: func() runtime.Object { return &corev1.PodTemplateList{} },
		Validate: corevalidation.ForCreate(corevalidation.ValidatePodTemplate)},
}

// Storage returns the core/v1 storage map, subresources included. Services
// take their ClusterIPs and NodePorts from services; the subresources
// served by nodes reach them through conns (connect.go).
func Storage(optsGetter generic.RESTOptionsGetter, services *service.Allocators, conns Connections) (map[string]rest.Storage, error) {
	m, err := store.Build(Resources, optsGetter)
	if err != nil {
		return nil, err
	}
	if err := addConnectSubresources(m, conns); err != nil {
		return nil, err
	}
	services.Install(m["services"].(*store.REST).Store)
	pods := m["pods"].(*store.REST)
	m["pods/binding"] = &pod.BindingREST{Store: pods.Store}
	m["pods/resize"] = pod.NewResizeREST(pods.Store)
	m["pods/ephemeralcontainers"] = pod.NewEphemeralContainersREST(pods.Store)
	if m["pods/eviction"], err = pod.NewEvictionREST(pods.Store, m["pods/status"].(*store.StatusREST), optsGetter); err != nil {
		return nil, err
	}
	namespaces := m["namespaces"].(*store.REST)
	m["namespaces"] = namespace.New(namespaces)
	m["namespaces/finalize"] = namespaces.Subresource(func(obj, old runtime.Object) {
		// Only spec.finalizers changes through /finalize.
		obj.(*corev1.Namespace).Status = old.(*corev1.Namespace).Status
	}, "status")
	rcs := m["replicationcontrollers"].(*store.REST)
	m["replicationcontrollers/scale"] = scale.New(rcs.Store, scale.Replicas{
		Get: func(obj runtime.Object) (int32, int32, string) {
			rc := obj.(*corev1.ReplicationController)
			return derefReplicas(rc.Spec.Replicas), rc.Status.Replicas, labels.SelectorFromSet(rc.Spec.Selector).String()
		},
		Set: func(obj runtime.Object, n int32) { obj.(*corev1.ReplicationController).Spec.Replicas = &n },
	})
	return m, nil
}

func derefReplicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
