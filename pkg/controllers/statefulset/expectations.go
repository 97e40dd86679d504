package statefulset

import (
	"context"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeTimeout is how long a sync waits for the cache to show its own
// writes before acting anyway.
const writeTimeout = 30 * time.Second

// writes are, per set, what its syncs wrote that the cache may not show
// yet (upstream's consistency store, StaleControllerConsistencyStatefulSet):
// pods and claims created, pods deleted, and the resourceVersion of the
// last status write. A sync waits until the cache shows them, so that it
// never creates a pod twice or acts on an old status.
type writes struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[string]*setWrites
}

type setWrites struct {
	uid types.UID
	// created: "pod/<name>" or "pvc/<name>"; deleted: pod name → UID.
	created  map[string]time.Time
	deleted  map[string]deletion
	statusRV uint64
	statusAt time.Time
}

type deletion struct {
	uid types.UID
	at  time.Time
}

func newWrites(c clock.PassiveClock) *writes {
	return &writes{clock: c, m: map[string]*setWrites{}}
}

func setKey(set *appsv1.StatefulSet) string { return set.Namespace + "/" + set.Name }

func (w *writes) get(key string, uid types.UID) *setWrites {
	s := w.m[key]
	if s == nil || s.uid != uid {
		s = &setWrites{uid: uid, created: map[string]time.Time{}, deleted: map[string]deletion{}}
		w.m[key] = s
	}
	return s
}

func (w *writes) created(key string, uid types.UID, kind, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.get(key, uid).created[kind+"/"+name] = w.clock.Now()
}

func (w *writes) deleted(key string, uid types.UID, name string, podUID types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.get(key, uid).deleted[name] = deletion{uid: podUID, at: w.clock.Now()}
}

func (w *writes) wroteStatus(set *appsv1.StatefulSet) {
	rv, err := strconv.ParseUint(set.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.get(setKey(set), set.UID)
	s.statusRV, s.statusAt = rv, w.clock.Now()
}

func (w *writes) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

// observed says whether the cache (c) shows every write to the set (the
// writes it shows, or that timed out, are forgotten).
func (w *writes) observed(ctx context.Context, c client.Reader, set *appsv1.StatefulSet) bool {
	w.mu.Lock()
	s := w.m[setKey(set)]
	if s == nil {
		w.mu.Unlock()
		return true
	}
	if s.uid != set.UID {
		delete(w.m, setKey(set))
		w.mu.Unlock()
		return true
	}
	created := make(map[string]time.Time, len(s.created))
	for k, v := range s.created {
		created[k] = v
	}
	deleted := make(map[string]deletion, len(s.deleted))
	for k, v := range s.deleted {
		deleted[k] = v
	}
	statusRV, statusAt := s.statusRV, s.statusAt
	w.mu.Unlock()

	now := w.clock.Now()
	done := map[string]bool{}
	ok := true
	for k, at := range created {
		if now.Sub(at) > writeTimeout || w.inCache(ctx, c, set.Namespace, k) {
			done["c"+k] = true
			continue
		}
		ok = false
	}
	for name, d := range deleted {
		var pod corev1.Pod
		err := c.Get(ctx, client.ObjectKey{Namespace: set.Namespace, Name: name}, &pod)
		if now.Sub(d.at) > writeTimeout || apierrors.IsNotFound(err) || (err == nil && (pod.UID != d.uid || pod.DeletionTimestamp != nil)) {
			done["d"+name] = true
			continue
		}
		ok = false
	}
	statusSeen := true
	if statusRV != 0 {
		rv, err := strconv.ParseUint(set.ResourceVersion, 10, 64)
		statusSeen = err != nil || rv >= statusRV || now.Sub(statusAt) > writeTimeout
		ok = ok && statusSeen
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if s = w.m[setKey(set)]; s != nil && s.uid == set.UID {
		for k := range done {
			if k[0] == 'c' {
				if s.created[k[1:]] == created[k[1:]] {
					delete(s.created, k[1:])
				}
			} else if s.deleted[k[1:]] == deleted[k[1:]] {
				delete(s.deleted, k[1:])
			}
		}
		if statusSeen && s.statusRV == statusRV {
			s.statusRV = 0
		}
	}
	return ok
}

func (w *writes) inCache(ctx context.Context, c client.Reader, namespace, key string) bool {
	var obj client.Object
	var name string
	switch {
	case len(key) > 4 && key[:4] == "pod/":
		obj, name = &corev1.Pod{}, key[4:]
	case len(key) > 4 && key[:4] == "pvc/":
		obj, name = &corev1.PersistentVolumeClaim{}, key[4:]
	default:
		return true
	}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj)
	return err == nil
}
