package status

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

func exited(name string, code int32) container.ContainerStatus {
	return container.ContainerStatus{Name: name, ID: "sim://" + name, State: container.StateExited,
		Exited: &container.Termination{ExitCode: code, Reason: "Error"}}
}

func running(name string) container.ContainerStatus {
	return container.ContainerStatus{Name: name, ID: "sim://" + name, State: container.StateRunning, StartedAt: time.Unix(1, 0)}
}

func TestPhaseAndConditions(t *testing.T) {
	base := func(policy corev1.RestartPolicy) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"},
			Spec: corev1.PodSpec{RestartPolicy: policy,
				InitContainers: []corev1.Container{{Name: "init"}},
				Containers:     []corev1.Container{{Name: "a"}, {Name: "b"}}},
		}
	}
	for _, c := range []struct {
		name        string
		policy      corev1.RestartPolicy
		init, main  []container.ContainerStatus
		terminal    bool
		phase       corev1.PodPhase
		initialized string
		ready       string
	}{
		{"nothing yet", corev1.RestartPolicyAlways, nil, nil, false, corev1.PodPending,
			"False ContainersNotInitialized containers with incomplete status: [init]", "False ContainersNotReady containers with unready status: [a b]"},
		{"init container failed, Never", corev1.RestartPolicyNever, []container.ContainerStatus{exited("init", 1)}, nil, false, corev1.PodFailed,
			"False ContainersNotInitialized containers with incomplete status: [init]", "False PodFailed"},
		{"init container failed, Always: retried", corev1.RestartPolicyAlways, []container.ContainerStatus{exited("init", 1)}, nil, false, corev1.PodPending,
			"False ContainersNotInitialized containers with incomplete status: [init]", "False ContainersNotReady containers with unready status: [a b]"},
		{"one running one exited, OnFailure", corev1.RestartPolicyOnFailure, []container.ContainerStatus{exited("init", 0)},
			[]container.ContainerStatus{running("a"), exited("b", 0)}, false, corev1.PodRunning, "True", "False ContainersNotReady containers with unready status: [b]"},
		{"all exited 0, Always: restarting", corev1.RestartPolicyAlways, []container.ContainerStatus{exited("init", 0)},
			[]container.ContainerStatus{exited("a", 0), exited("b", 0)}, false, corev1.PodRunning, "True", "False ContainersNotReady containers with unready status: [a b]"},
		{"all exited, one failed, killed", corev1.RestartPolicyAlways, []container.ContainerStatus{exited("init", 0)},
			[]container.ContainerStatus{exited("a", 0), exited("b", 2)}, true, corev1.PodFailed, "True", "False PodFailed"},
		{"all exited 0, Never", corev1.RestartPolicyNever, []container.ContainerStatus{exited("init", 0)},
			[]container.ContainerStatus{exited("a", 0), exited("b", 0)}, false, corev1.PodSucceeded, "True PodCompleted", "False PodCompleted"},
	} {
		pod := base(c.policy)
		rs := &container.PodStatus{UID: "u", SandboxReady: true, InitContainers: c.init, Containers: c.main}
		s := Generate(pod, rs, Options{Now: time.Unix(100, 0), Terminal: c.terminal})
		got := map[corev1.PodConditionType]string{}
		for _, cond := range s.Conditions {
			got[cond.Type] = string(cond.Status)
			if cond.Reason != "" {
				got[cond.Type] += " " + cond.Reason
			}
			if cond.Message != "" {
				got[cond.Type] += " " + cond.Message
			}
		}
		if s.Phase != c.phase || got[corev1.PodInitialized] != c.initialized || got[corev1.PodReady] != c.ready || got[corev1.PodScheduled] != "True" {
			t.Errorf("%s: phase %s, Initialized %q, Ready %q; want %s, %q, %q", c.name, s.Phase, got[corev1.PodInitialized], got[corev1.PodReady], c.phase, c.initialized, c.ready)
		}
	}
}

func TestReadinessGatesAndTransitionTimes(t *testing.T) {
	then := metav1.NewTime(time.Unix(50, 0))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: then}}},
	}
	rs := &container.PodStatus{UID: "u", SandboxReady: true, Containers: []container.ContainerStatus{running("a")}}
	s := Generate(pod, rs, Options{Now: time.Unix(100, 0)})
	for _, c := range s.Conditions {
		switch c.Type {
		case corev1.PodReady:
			if c.Status != corev1.ConditionFalse || c.Reason != ReasonReadinessGatesNotReady ||
				c.Message != `corresponding condition of pod readiness gate "example.com/lb" does not exist.` {
				t.Errorf("Ready %+v", c)
			}
		case corev1.PodScheduled:
			if !c.LastTransitionTime.Equal(&then) {
				t.Errorf("PodScheduled moved to %v though unchanged", c.LastTransitionTime)
			}
		case corev1.ContainersReady:
			if c.Status != corev1.ConditionTrue || c.LastTransitionTime.Unix() != 100 {
				t.Errorf("ContainersReady %+v", c)
			}
		}
	}
}
