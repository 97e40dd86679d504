// Package defaultstorageclass is upstream's DefaultStorageClass admission
// plugin: a PersistentVolumeClaim created without a storage class (neither
// spec.storageClassName nor the beta annotation; an explicit "" is a
// class, the empty one) gets the default StorageClass, the one annotated
// storageclass.kubernetes.io/is-default-class: "true" (or the beta
// annotation); of several, the newest, then the first by name. Without a
// default class the claim is left alone (the PV controller assigns the
// class later, should one become default).
package defaultstorageclass

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
)

const (
	// PluginName is the plugin's name in upstream's admission chain.
	PluginName = "DefaultStorageClass"
	// IsDefaultAnnotation marks the default StorageClass.
	IsDefaultAnnotation = "storageclass.kubernetes.io/is-default-class"
	// BetaIsDefaultAnnotation is its older name, still honoured.
	BetaIsDefaultAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

// Plugin is the DefaultStorageClass admission plugin.
type Plugin struct {
	*admission.Handler
	classes storagelisters.StorageClassLister
}

var _ admission.MutationInterface = &Plugin{}

// New returns the plugin reading StorageClasses from factory (started by
// the caller).
func New(factory informers.SharedInformerFactory) *Plugin {
	informer := factory.Storage().V1().StorageClasses()
	p := &Plugin{Handler: admission.NewHandler(admission.Create), classes: informer.Lister()}
	p.SetReadyFunc(informer.Informer().HasSynced)
	return p
}

// Admit sets the default class on a new class-less claim.
func (p *Plugin) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != corev1.Resource("persistentvolumeclaims") || a.GetSubresource() != "" {
		return nil
	}
	pvc, ok := a.GetObject().(*corev1.PersistentVolumeClaim)
	if !ok || storagehelpers.PersistentVolumeClaimHasClass(pvc) {
		return nil
	}
	if !p.WaitForReady() {
		return admission.NewForbidden(a, fmt.Errorf("not yet ready to handle request"))
	}
	def, err := Default(p.classes)
	if err != nil {
		return admission.NewForbidden(a, err)
	}
	if def == nil {
		return nil
	}
	klog.V(4).InfoS("Defaulting storage class for claim", "PVC", klog.KObj(pvc), "generateName", pvc.GenerateName, "storageClassName", def.Name)
	pvc.Spec.StorageClassName = &def.Name
	return nil
}

// IsDefault says whether class is marked default.
func IsDefault(class *storagev1.StorageClass) bool {
	return class.Annotations[IsDefaultAnnotation] == "true" || class.Annotations[BetaIsDefaultAnnotation] == "true"
}

// Default is the default StorageClass of lister (upstream's
// GetDefaultClass): the newest of those marked default, then the first
// by name; nil if none is.
func Default(lister storagelisters.StorageClassLister) (*storagev1.StorageClass, error) {
	all, err := lister.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return Pick(all), nil
}

// Pick is the default class among classes (see Default).
func Pick(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var defaults []*storagev1.StorageClass
	for _, c := range classes {
		if IsDefault(c) {
			defaults = append(defaults, c)
		}
	}
	if len(defaults) == 0 {
		return nil
	}
	sort.Slice(defaults, func(i, j int) bool {
		ti, tj := defaults[i].CreationTimestamp.UnixNano(), defaults[j].CreationTimestamp.UnixNano()
		if ti == tj {
			return defaults[i].Name < defaults[j].Name
		}
		return ti > tj
	})
	if len(defaults) > 1 {
		klog.V(4).InfoS("Several default StorageClasses were found", "count", len(defaults), "chosen", defaults[0].Name)
	}
	return defaults[0]
}
