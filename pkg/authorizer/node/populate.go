package node

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Populate keeps g up to date from the pods, PersistentVolumes and
// VolumeAttachments of factory (which the caller starts) and returns
// when the handlers have seen the informers' first lists.
func Populate(g *Graph, factory informers.SharedInformerFactory) ([]cache.InformerSynced, error) {
	pods, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { g.podChanged(nil, obj) },
		UpdateFunc: g.podChanged,
		DeleteFunc: g.podDeleted,
	})
	if err != nil {
		return nil, err
	}
	pvs, err := factory.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    g.pvChanged,
		UpdateFunc: func(_, obj any) { g.pvChanged(obj) },
		DeleteFunc: g.pvDeleted,
	})
	if err != nil {
		return nil, err
	}
	attachments, err := factory.Storage().V1().VolumeAttachments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    g.attachmentChanged,
		UpdateFunc: func(_, obj any) { g.attachmentChanged(obj) },
		DeleteFunc: g.attachmentDeleted,
	})
	if err != nil {
		return nil, err
	}
	return []cache.InformerSynced{pods.HasSynced, pvs.HasSynced, attachments.HasSynced}, nil
}

// tombstone unwraps a deletion the informer missed.
func tombstone(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func (g *Graph) podChanged(oldObj, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return
	}
	// A bound pod's references change only with new ephemeral containers
	// or claims named in its status; status updates are frequent, skip
	// the rest.
	if old, ok := oldObj.(*corev1.Pod); ok && old.Spec.NodeName == pod.Spec.NodeName && old.UID == pod.UID &&
		len(old.Spec.EphemeralContainers) == len(pod.Spec.EphemeralContainers) &&
		apiequality.Semantic.DeepEqual(old.Status.ResourceClaimStatuses, pod.Status.ResourceClaimStatuses) &&
		apiequality.Semantic.DeepEqual(old.Status.ExtendedResourceClaimStatus, pod.Status.ExtendedResourceClaimStatus) {
		return
	}
	klog.V(4).InfoS("Node authorizer graph: pod bound", "pod", klog.KObj(pod), "node", pod.Spec.NodeName)
	g.SetPod(pod)
}

func (g *Graph) podDeleted(obj any) {
	pod, ok := tombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	g.DeletePod(pod.Namespace, pod.Name)
}

func (g *Graph) pvChanged(obj any) {
	if pv, ok := obj.(*corev1.PersistentVolume); ok {
		g.SetPV(pv)
	}
}

func (g *Graph) pvDeleted(obj any) {
	if pv, ok := tombstone(obj).(*corev1.PersistentVolume); ok {
		g.DeletePV(pv.Name)
	}
}

func (g *Graph) attachmentChanged(obj any) {
	if va, ok := obj.(*storagev1.VolumeAttachment); ok {
		g.SetNodeOf(VolumeAttachment, va.Name, va.Spec.NodeName)
	}
}

func (g *Graph) attachmentDeleted(obj any) {
	if va, ok := tombstone(obj).(*storagev1.VolumeAttachment); ok {
		g.SetNodeOf(VolumeAttachment, va.Name, "")
	}
}
