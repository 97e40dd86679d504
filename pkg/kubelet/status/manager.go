package status

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// informerLag is how long a status just written may be missing from the
// informer's copy before it is written again.
const informerLag = 10 * time.Second

// Manager writes pods' statuses. The pods it is given come from an
// informer; what it wrote is remembered until the informer catches up, so
// a resync in between sends nothing. One Manager serves many nodes.
type Manager struct {
	client kubernetes.Interface
	clock  clock.Clock

	// WriteUID is the UID of the API pod a pod's status goes to ("": none
	// yet, nothing is written); nil: the pod's own. A static pod's status
	// goes to its mirror pod.
	WriteUID func(pod *corev1.Pod) types.UID

	mu      sync.Mutex
	written map[types.UID]writtenStatus
}

type writtenStatus struct {
	status corev1.PodStatus
	at     time.Time
}

// NewManager is a Manager writing through client.
func NewManager(client kubernetes.Interface, clk clock.Clock) *Manager {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Manager{client: client, clock: clk, written: map[types.UID]writtenStatus{}}
}

// SetPodStatus writes status as pod's new status if it differs from the
// pod's (ignoring probe times), merged as upstream's status manager does:
// conditions the kubelet does not own and fields other components own
// stay, a terminal phase is final. It patches pods/status with the pod's
// UID as precondition. A pod that is gone or replaced is not an error: its
// next event brings the truth. It tells whether it wrote.
func (m *Manager) SetPodStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) (bool, error) {
	old := pod.Status
	status = merge(old, status)
	if Equal(&old, &status) {
		m.forget(pod.UID)
		return false, nil
	}
	m.mu.Lock()
	w, ok := m.written[pod.UID]
	m.mu.Unlock()
	if ok && m.clock.Since(w.at) < informerLag && EqualIgnoringTransitions(&w.status, &status) {
		return false, nil
	}
	uid := pod.UID
	if m.WriteUID != nil {
		if uid = m.WriteUID(pod); uid == "" {
			return false, nil
		}
	}
	patch, err := statusPatch(uid, old, status)
	if err != nil {
		return false, err
	}
	_, err = m.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		klog.V(4).InfoS("Pod gone or replaced before its status was written", "pod", klog.KObj(pod), "err", err)
		m.forget(pod.UID)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("patching status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	klog.V(4).InfoS("Wrote pod status", "pod", klog.KObj(pod), "phase", status.Phase, "patch", string(patch))
	m.mu.Lock()
	m.written[pod.UID] = writtenStatus{status: status, at: m.clock.Now()}
	m.mu.Unlock()
	return true, nil
}

// DeletePod confirms a graceful deletion once the pod's containers
// stopped: a DELETE with grace period 0 and the pod's UID as precondition,
// so a new pod of the same name is not touched.
func (m *Manager) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	m.forget(pod.UID)
	err := m.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: ptr.To(pod.UID)},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// Forget drops what is remembered of a pod that left the node.
func (m *Manager) Forget(uid types.UID) { m.forget(uid) }

func (m *Manager) forget(uid types.UID) {
	m.mu.Lock()
	delete(m.written, uid)
	m.mu.Unlock()
}

// merge keeps what the kubelet does not own: the conditions of others
// (Generate keeps them too, this covers statuses set directly such as a
// rejection), resource claim statuses, resize status, and a terminal
// phase.
func merge(old, status corev1.PodStatus) corev1.PodStatus {
	status.Conditions = mergeConditions(old.Conditions, kubeletConditions(status.Conditions))
	status.ResourceClaimStatuses = old.ResourceClaimStatuses
	status.ExtendedResourceClaimStatus = old.ExtendedResourceClaimStatus
	status.Resize = old.Resize
	if terminal(old.Phase) && status.Phase != old.Phase {
		status.Phase, status.Reason, status.Message = old.Phase, old.Reason, old.Message
	}
	if terminal(status.Phase) {
		// Never terminal and ready at once.
		for i := range status.Conditions {
			c := &status.Conditions[i]
			if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status == corev1.ConditionTrue {
				c.Status, c.Reason, c.Message = corev1.ConditionFalse, ReasonPodCompleted, ""
				if status.Phase == corev1.PodFailed {
					c.Reason = ReasonPodFailed
				}
			}
		}
	}
	return status
}

func kubeletConditions(conditions []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range conditions {
		if ownedByKubelet[c.Type] {
			out = append(out, c)
		}
	}
	return out
}

// statusPatch is the strategic merge patch from old to status, with the
// UID as precondition, as upstream's PatchPodStatus.
func statusPatch(uid types.UID, old, status corev1.PodStatus) ([]byte, error) {
	oldJSON, err := json.Marshal(corev1.Pod{Status: old})
	if err != nil {
		return nil, err
	}
	newJSON, err := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: status})
	if err != nil {
		return nil, err
	}
	return strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, corev1.Pod{})
}

// Equal compares statuses as stored: times to the second, probe times
// ignored.
func Equal(a, b *corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(normalize(a, false), normalize(b, false))
}

// EqualIgnoringTransitions also ignores the conditions' transition times
// and the start time: what a status computed from a stale copy of the pod
// gets wrong.
func EqualIgnoringTransitions(a, b *corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(normalize(a, true), normalize(b, true))
}

func normalize(s *corev1.PodStatus, dropTransitions bool) *corev1.PodStatus {
	s = s.DeepCopy()
	round := func(t *metav1.Time) {
		if t != nil {
			*t = metav1.NewTime(t.Rfc3339Copy().Time)
		}
	}
	round(s.StartTime)
	if dropTransitions {
		s.StartTime = nil
	}
	for i := range s.Conditions {
		s.Conditions[i].LastProbeTime = metav1.Time{}
		if dropTransitions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		round(&s.Conditions[i].LastTransitionTime)
	}
	for _, list := range [][]corev1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses} {
		for i := range list {
			for _, st := range []*corev1.ContainerState{&list[i].State, &list[i].LastTerminationState} {
				if st.Running != nil {
					round(&st.Running.StartedAt)
				}
				if st.Terminated != nil {
					round(&st.Terminated.StartedAt)
					round(&st.Terminated.FinishedAt)
				}
			}
		}
	}
	if len(s.Conditions) == 0 {
		s.Conditions = nil
	}
	return s
}
