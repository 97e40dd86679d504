package runtime

import (
	"fmt"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// WaitingPod is a pod held by Permit plugins until each allows it, one
// rejects it, or a plugin's timeout passes.
type WaitingPod struct {
	pod  *v1.Pod
	mu   sync.Mutex
	wait map[string]*time.Timer
	done chan *framework.Status
}

func newWaitingPod(pod *v1.Pod, waitFor map[string]time.Duration) *WaitingPod {
	wp := &WaitingPod{pod: pod, wait: map[string]*time.Timer{}, done: make(chan *framework.Status, 1)}
	wp.mu.Lock()
	defer wp.mu.Unlock()
	for name, d := range waitFor {
		wp.wait[name] = time.AfterFunc(d, func() {
			wp.Reject(name, fmt.Sprintf("rejected due to timeout after waiting %v at plugin %v", d, name))
		})
	}
	return wp
}

// Pod is the waiting pod.
func (wp *WaitingPod) Pod() *v1.Pod { return wp.pod }

// Pending are the plugins it still waits for.
func (wp *WaitingPod) Pending() []string {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	var out []string
	for n := range wp.wait {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Allow: plugin lets the pod go; the last one releases it.
func (wp *WaitingPod) Allow(plugin string) {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	if t, ok := wp.wait[plugin]; ok {
		t.Stop()
		delete(wp.wait, plugin)
	}
	if len(wp.wait) == 0 {
		select {
		case wp.done <- nil:
		default:
		}
	}
}

// Reject: the pod may not be bound.
func (wp *WaitingPod) Reject(plugin, msg string) {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	for _, t := range wp.wait {
		t.Stop()
	}
	select {
	case wp.done <- framework.NewStatus(framework.Unschedulable, msg).WithPlugin(plugin):
	default:
	}
}

type waitingPods struct {
	mu   sync.RWMutex
	pods map[types.UID]*WaitingPod
}

func newWaitingPods() *waitingPods { return &waitingPods{pods: map[types.UID]*WaitingPod{}} }

func (w *waitingPods) add(wp *WaitingPod) {
	w.mu.Lock()
	w.pods[wp.pod.UID] = wp
	w.mu.Unlock()
}

func (w *waitingPods) get(uid types.UID) *WaitingPod {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.pods[uid]
}

func (w *waitingPods) remove(uid types.UID) {
	w.mu.Lock()
	delete(w.pods, uid)
	w.mu.Unlock()
}
