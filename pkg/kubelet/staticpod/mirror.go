package staticpod

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// Mirrors keeps the API's mirror pods of a node's static pods as
// upstream's kubelet: one per static pod, owned by the Node, recreated
// when it is deleted or its static pod changed, deleted when its static
// pod went.
type Mirrors struct {
	client   kubernetes.Interface
	nodeName string
}

// NewMirrors keeps the mirror pods of node nodeName through client (the
// node's own: NodeRestriction lets a node create only mirror pods of its
// own that it owns).
func NewMirrors(client kubernetes.Interface, nodeName string) *Mirrors {
	return &Mirrors{client: client, nodeName: nodeName}
}

// Run syncs the mirror pods of src's pods on each of its changes and
// every interval (the API may have lost or deleted some)
// (default: DefaultCheckFrequency) until ctx ends.
func (m *Mirrors) Run(ctx context.Context, src *Source, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultCheckFrequency
	}
	changes := src.Changes()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-timer.C:
		}
		if err := m.Sync(ctx, src.Pods()); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Syncing the mirror pods failed", "node", m.nodeName)
		}
		timer.Reset(interval)
	}
}

// Sync makes the API's mirror pods of this node those of static.
func (m *Mirrors) Sync(ctx context.Context, static []*corev1.Pod) error {
	logger := klog.FromContext(ctx)
	list, err := m.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", m.nodeName).String(),
	})
	if err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", m.nodeName, err)
	}
	mirrors := map[string]*corev1.Pod{}
	for i := range list.Items {
		if p := &list.Items[i]; IsMirrorPod(p) {
			mirrors[p.Namespace+"/"+p.Name] = p
		}
	}
	var errs []error
	var node *corev1.Node
	for _, pod := range static {
		key := pod.Namespace + "/" + pod.Name
		mirror := mirrors[key]
		delete(mirrors, key)
		if mirror != nil && (mirror.DeletionTimestamp != nil || !IsMirrorPodOf(mirror, pod)) {
			// Deleted, or of the static pod before it changed: replaced.
			logger.V(2).Info("Deleting a mirror pod that is not its static pod's", "pod", klog.KObj(mirror), "podUID", mirror.UID)
			if err := m.delete(ctx, mirror); err != nil {
				errs = append(errs, err)
				continue
			}
			mirror = nil
		}
		if mirror != nil {
			continue
		}
		if node == nil {
			if node, err = m.client.CoreV1().Nodes().Get(ctx, m.nodeName, metav1.GetOptions{}); err != nil {
				return errors.Join(append(errs, fmt.Errorf("getting node %s for its mirror pods: %w", m.nodeName, err))...)
			}
		}
		if node.DeletionTimestamp != nil {
			logger.V(4).Info("Node is being deleted: no mirror pods", "node", m.nodeName)
			continue
		}
		if err := m.create(ctx, pod, node); err != nil {
			errs = append(errs, err)
		}
	}
	for _, orphan := range mirrors {
		logger.V(2).Info("Deleting the mirror pod of a static pod that went", "pod", klog.KObj(orphan), "podUID", orphan.UID)
		if err := m.delete(ctx, orphan); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Mirror is the mirror pod of pod as upstream's kubelet creates it: the
// static pod with the config.mirror annotation (its hash) and the Node as
// its controller.
func Mirror(pod *corev1.Pod, node *corev1.Node) *corev1.Pod {
	mirror := pod.DeepCopy()
	mirror.Annotations[ConfigMirrorAnnotation] = pod.Annotations[ConfigHashAnnotation]
	mirror.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true),
	}}
	mirror.Status = corev1.PodStatus{}
	return mirror
}

func (m *Mirrors) create(ctx context.Context, pod *corev1.Pod, node *corev1.Node) error {
	mirror := Mirror(pod, node)
	got, err := m.client.CoreV1().Pods(pod.Namespace).Create(ctx, mirror, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Ours already, or a pod of the API by that name: that one stays.
		if got, err := m.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); err == nil && IsMirrorPodOf(got, pod) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("creating the mirror pod of static pod %s: %w", klog.KObj(pod), err)
	}
	klog.FromContext(ctx).V(2).Info("Created a mirror pod", "pod", klog.KObj(got), "podUID", got.UID, "staticPodUID", pod.UID)
	return nil
}

// delete deletes a mirror pod at once, that one only (by its UID).
func (m *Mirrors) delete(ctx context.Context, mirror *corev1.Pod) error {
	err := m.client.CoreV1().Pods(mirror.Namespace).Delete(ctx, mirror.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &mirror.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting mirror pod %s: %w", klog.KObj(mirror), err)
	}
	return nil
}
