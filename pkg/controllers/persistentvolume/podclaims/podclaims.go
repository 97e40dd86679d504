// Package podclaims is what the storage controllers share about pods and
// the PersistentVolumeClaims they use: one cache index of pods by claim
// (upstream's PodPVCIndex: "<namespace>/<claim>" of each
// persistentVolumeClaim and generic ephemeral volume), and upstream's
// test of a terminated pod.
package podclaims

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/storage/ephemeral"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Index is the field index of pods by the claims they use.
const Index = "storage.podclaims"

var (
	mu      sync.Mutex
	indexed = map[manager.Manager]bool{}
)

// IndexPods adds Index to mgr's cache, once per manager whichever storage
// controller asks first.
func IndexPods(mgr manager.Manager) error {
	mu.Lock()
	defer mu.Unlock()
	if indexed[mgr] {
		return nil
	}
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Pod{}, Index, func(o client.Object) []string {
		pod, ok := o.(*corev1.Pod)
		if !ok {
			return nil
		}
		return Keys(pod)
	})
	if err == nil {
		indexed[mgr] = true
	}
	return err
}

// Keys are "<namespace>/<claim>" of the claims pod uses.
func Keys(pod *corev1.Pod) []string {
	var keys []string
	for i := range pod.Spec.Volumes {
		if name := ClaimName(pod, &pod.Spec.Volumes[i]); name != "" {
			keys = append(keys, pod.Namespace+"/"+name)
		}
	}
	return keys
}

// ClaimName is the claim a pod's volume uses: its claimName, or for a
// generic ephemeral volume "<pod>-<volume>"; "" for other volumes.
func ClaimName(pod *corev1.Pod, vol *corev1.Volume) string {
	switch {
	case vol.PersistentVolumeClaim != nil:
		return vol.PersistentVolumeClaim.ClaimName
	case vol.Ephemeral != nil:
		return ephemeral.VolumeClaimName(pod, vol)
	}
	return ""
}

// PodsUsing lists, from the cache of c, the pods that use the claim
// namespace/name.
func PodsUsing(ctx context.Context, c client.Reader, namespace, name string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingFields{Index: namespace + "/" + name}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// IsTerminated is upstream's IsPodTerminated: the pod failed or succeeded,
// or it is being deleted and none of its containers runs.
func IsTerminated(pod *corev1.Pod) bool {
	s := pod.Status
	return s.Phase == corev1.PodFailed || s.Phase == corev1.PodSucceeded ||
		(pod.DeletionTimestamp != nil && notRunning(s.InitContainerStatuses) && notRunning(s.ContainerStatuses) && notRunning(s.EphemeralContainerStatuses))
}

func notRunning(statuses []corev1.ContainerStatus) bool {
	for _, s := range statuses {
		if s.State.Terminated == nil && s.State.Waiting == nil {
			return false
		}
	}
	return true
}
