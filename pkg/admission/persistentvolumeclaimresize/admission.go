// Package persistentvolumeclaimresize is upstream's
// PersistentVolumeClaimResize admission plugin: a claim's storage request
// may grow only once it is Bound, and only if its StorageClass (unchanged,
// not "") has allowVolumeExpansion: true. Shrinking is validation's
// business (not below status.capacity).
package persistentvolumeclaimresize

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// PluginName is the plugin's name in upstream's admission chain.
const PluginName = "PersistentVolumeClaimResize"

// Plugin is the PersistentVolumeClaimResize admission plugin.
type Plugin struct {
	*admission.Handler
	classes storagelisters.StorageClassLister
}

var _ admission.ValidationInterface = &Plugin{}

// New returns the plugin reading StorageClasses from factory (started by
// the caller).
func New(factory informers.SharedInformerFactory) *Plugin {
	informer := factory.Storage().V1().StorageClasses()
	p := &Plugin{Handler: admission.NewHandler(admission.Update), classes: informer.Lister()}
	p.SetReadyFunc(informer.Informer().HasSynced)
	return p
}

// Validate refuses growing a claim that is not Bound or whose class does
// not allow expansion, in upstream's words.
func (p *Plugin) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != corev1.Resource("persistentvolumeclaims") || a.GetSubresource() != "" {
		return nil
	}
	pvc, ok := a.GetObject().(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	old, ok := a.GetOldObject().(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	newSize, oldSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) <= 0 {
		return nil
	}
	if old.Status.Phase != corev1.ClaimBound {
		return admission.NewForbidden(a, fmt.Errorf("Only bound persistent volume claims can be expanded"))
	}
	if !p.WaitForReady() {
		return admission.NewForbidden(a, fmt.Errorf("not yet ready to handle request"))
	}
	if !p.allowResize(pvc, old) {
		return admission.NewForbidden(a, fmt.Errorf("only dynamically provisioned pvc can be resized and "+
			"the storageclass that provisions the pvc must support resize"))
	}
	return nil
}

func (p *Plugin) allowResize(pvc, old *corev1.PersistentVolumeClaim) bool {
	class, oldClass := storagehelpers.GetPersistentVolumeClaimClass(pvc), storagehelpers.GetPersistentVolumeClaimClass(old)
	if class == "" || class != oldClass {
		return false
	}
	sc, err := p.classes.Get(class)
	if err != nil {
		return false
	}
	return sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
}
