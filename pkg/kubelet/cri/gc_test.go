package cri

import (
	"context"
	"os"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// TestGarbageCollect: of a container that crashed in two sandboxes, the
// collector keeps the running instance and the newest dead one (the
// status' lastState, its log for --previous), removes the other dead
// ones with their logs, and the old sandbox once it has none left.
func TestGarbageCollect(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, func(c *Config) { c.BackoffInitial, c.BackoffMax = 100*time.Millisecond, 200*time.Millisecond })
	// Exits twice in each sandbox (its /dev/shm is the sandbox's), then runs.
	pod := busyboxPod("gc", `if [ -e /dev/shm/twice ]; then exec sleep 3600; fi
if [ -e /dev/shm/once ]; then touch /dev/shm/twice; else touch /dev/shm/once; fi; exit 1`)
	removeAfter(t, r, pod.UID)
	running := func(restarts int32) func(*container.PodStatus) bool {
		return func(s *container.PodStatus) bool {
			c := s.Containers[0]
			return c.State == container.StateRunning && c.RestartCount == restarts
		}
	}
	syncUntil(t, r, pod, 30*time.Second, running(2))
	ctx := context.Background()
	v, err := r.view(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RuntimeService().StopPodSandbox(ctx, v.sandbox().Id); err != nil {
		t.Fatal(err)
	}
	// Stopped (3 dead), then 2 more dead and one running in the new one.
	before := syncUntil(t, r, pod, 30*time.Second, running(5)).Status.Containers[0]
	if v, err = r.view(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(v.containers) != 6 || len(v.sandboxes) != 2 {
		t.Fatalf("before the collection: %d containers in %d sandboxes, want 6 in 2", len(v.containers), len(v.sandboxes))
	}
	newestDead, newSandbox := v.containers[1], v.sandboxes[0].Id
	var removedLogs []string
	for _, c := range v.containers[2:] {
		removedLogs = append(removedLogs, c.LogPath)
	}

	if err := r.GarbageCollect(ctx); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	if v, err = r.view(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(v.containers) != 2 || v.containers[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING || v.containers[1].Id != newestDead.Id {
		t.Errorf("after the collection: %d containers, want the running one and the newest dead %s", len(v.containers), newestDead.Id)
	}
	if len(v.sandboxes) != 1 || v.sandboxes[0].Id != newSandbox {
		t.Errorf("after the collection: %d sandboxes, want only the ready one", len(v.sandboxes))
	}
	if _, err := os.Stat(newestDead.LogPath); err != nil {
		t.Errorf("the kept dead container's log: %v", err)
	}
	for _, f := range removedLogs {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("log %s of a removed container still there (%v)", f, err)
		}
	}
	after := syncUntil(t, r, pod, time.Second, func(*container.PodStatus) bool { return true }).Status.Containers[0]
	if after.ID != before.ID || after.RestartCount != 5 || after.Last == nil || after.Last.ID != before.Last.ID || after.Last.ExitCode != 1 {
		t.Errorf("status after the collection %+v, want %+v", after, before)
	}
}
