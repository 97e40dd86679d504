package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/utils/ptr"
)

func TestObjectOfCoversEveryKindEqually(t *testing.T) {
	const total = 50
	seen := map[[2]int]bool{}
	perKind := map[int]int{}
	for n := range total {
		kind, i := objectOf(n)
		if seen[[2]int{kind, i}] {
			t.Fatalf("object %d: kind %d index %d twice", n, kind, i)
		}
		seen[[2]int{kind, i}] = true
		perKind[kind]++
	}
	for kind := range objectKinds {
		if perKind[kind] != total/objectKinds {
			t.Errorf("kind %d (%s): %d objects, want %d", kind, namespaceKinds[kind].name, perKind[kind], total/objectKinds)
		}
	}
}

func TestImagePatchSetsTheContainerImage(t *testing.T) {
	d := benchDeployment("web", 3)
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, d.Spec.Template.Spec.Containers[0])
	d.Spec.Template.Spec.Containers[1].Name = "sidecar"
	orig, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := strategicpatch.StrategicMergePatch(orig, imagePatch("app", updatedImage), appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	var got appsv1.Deployment
	if err := json.Unmarshal(patched, &got); err != nil {
		t.Fatal(err)
	}
	c := got.Spec.Template.Spec.Containers
	if len(c) != 2 || c[0].Image != updatedImage || c[1].Image != benchImage {
		t.Fatalf("containers after the patch: %+v", c)
	}
}

func TestRolledOut(t *testing.T) {
	done := appsv1.DeploymentStatus{Replicas: 10, UpdatedReplicas: 10, ReadyReplicas: 10, AvailableReplicas: 10}
	if !rolledOut(&appsv1.Deployment{Status: done}, 10) {
		t.Error("complete rollout not seen")
	}
	for name, change := range map[string]func(*appsv1.DeploymentStatus){
		"old pods left":     func(s *appsv1.DeploymentStatus) { s.Replicas = 12 },
		"not all updated":   func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 9 },
		"not all ready":     func(s *appsv1.DeploymentStatus) { s.ReadyReplicas = 9 },
		"not all available": func(s *appsv1.DeploymentStatus) { s.AvailableReplicas = 9 },
	} {
		s := done
		change(&s)
		if rolledOut(&appsv1.Deployment{Status: s}, 10) {
			t.Errorf("%s: seen as rolled out", name)
		}
	}
}

func TestOldReplicaSetsLeft(t *testing.T) {
	rs := func(name, image string, desired, current int32) appsv1.ReplicaSet {
		r := appsv1.ReplicaSet{}
		r.Name = name
		r.Spec.Replicas = ptr.To(desired)
		r.Spec.Template.Spec = benchPodSpec()
		r.Spec.Template.Spec.Containers[0].Image = image
		r.Status.Replicas = current
		return r
	}
	if left := oldReplicaSetsLeft([]appsv1.ReplicaSet{rs("new", updatedImage, 10, 10), rs("old", benchImage, 0, 0)}, updatedImage); left != "" {
		t.Errorf("scaled-down old ReplicaSet reported: %s", left)
	}
	for _, old := range []appsv1.ReplicaSet{rs("old", benchImage, 1, 1), rs("old", benchImage, 0, 2)} {
		left := oldReplicaSetsLeft([]appsv1.ReplicaSet{rs("new", updatedImage, 10, 10), old}, updatedImage)
		if !strings.Contains(left, "old (") {
			t.Errorf("old ReplicaSet with %d desired, %d current not reported: %q", *old.Spec.Replicas, old.Status.Replicas, left)
		}
	}
}

func TestCtrlCPUUntilLeavesTheSchedulerOutOfOthers(t *testing.T) {
	at := time.Now()
	a := ctrlCPU{base: schedCPU{at: at}}
	// 10 s on all CPUs: busy 4 s of which the controller manager 1 s, the
	// scheduler 2 s: others 1 s.
	b := ctrlCPU{base: schedCPU{at: at.Add(10 * time.Second), busy: 4 * time.Second, sch: time.Second}, sched: 2 * time.Second}
	u := a.until(b)
	if u.ControllerManager != 1 || u.Scheduler != 2 {
		t.Fatalf("got %+v", u)
	}
	capacity := 10 * float64(runtime.NumCPU())
	if want := 1 / capacity; u.OtherShare < want-1e-9 || u.OtherShare > want+1e-9 {
		t.Errorf("other share %v, want %v", u.OtherShare, want)
	}
}
