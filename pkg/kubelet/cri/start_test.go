package cri

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/test/integration"
)

// TestPostStartHookFails: a failing postStart hook kills the container
// with upstream's event and reason; it restarts as its policy says.
func TestPostStartHookFails(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	pod := busyboxPod("poststart", "trap 'exit 0' TERM; sleep 3600 & wait")
	pod.Spec.TerminationGracePeriodSeconds = new(int64)
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 5"}},
	}}
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		c := s.Containers[0]
		return c.State == container.StateExited && c.WaitingReason != ""
	})
	c := res.Status.Containers[0]
	if c.WaitingReason != ReasonPostStartHookError && c.WaitingReason != container.ReasonCrashLoopBackOff {
		t.Errorf("after a failed postStart: %s", describe(res.Status))
	}
	for _, want := range []string{"Warning FailedPostStartHook PostStartHook failed", "Normal Killing FailedPostStartHook"} {
		if !rec.has(want) {
			t.Errorf("no event %q in %q", want, rec.all())
		}
	}

	ok := busyboxPod("poststart-ok", "sleep 3600")
	ok.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "sleep 1; touch /tmp/hooked"}},
	}}
	removeAfter(t, r, ok.UID)
	sawCreated := false
	res = syncUntil(t, r, ok, 30*time.Second, func(s *container.PodStatus) bool {
		if s.Containers[0].State == container.StateCreated && s.Containers[0].ID != "" {
			sawCreated = true
		}
		return s.Containers[0].State == container.StateRunning
	})
	if !sawCreated {
		t.Errorf("container counted as running before its postStart hook returned")
	}
	if _, _, code, err := r.ExecSync(context.Background(), res.Status.Containers[0].ID, []string{"test", "-e", "/tmp/hooked"}, 5*time.Second); err != nil || code != 0 {
		t.Errorf("postStart hook did not run to its end before the container counted as started: %d %v", code, err)
	}
}

// TestImagePullFailures: Never with a missing image, and a pull that
// fails then backs off, with upstream's reasons.
func TestImagePullFailures(t *testing.T) {
	e := env(t)
	r, rec := newRuntime(t, e, nil)
	never := busyboxPod("neverpull", "true")
	never.Spec.Containers[0].Image = "registry.invalid/missing:1"
	never.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	removeAfter(t, r, never.UID)
	res := syncUntil(t, r, never, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].WaitingReason != ""
	})
	c := res.Status.Containers[0]
	if c.WaitingReason != ReasonErrImageNeverPull || c.WaitingMessage != `Container image "registry.invalid/missing:1" is not present with pull policy of Never` {
		t.Errorf("Never with a missing image: %s", describe(res.Status))
	}

	pull := busyboxPod("pullfails", "true")
	pull.Spec.Containers[0].Image = "registry.invalid/missing:1"
	removeAfter(t, r, pull.UID)
	res = syncUntil(t, r, pull, 60*time.Second, func(s *container.PodStatus) bool {
		// ContainerCreating while the pull runs in the background.
		return s.Containers[0].WaitingReason != "" && s.Containers[0].WaitingReason != container.ReasonContainerCreating
	})
	c = res.Status.Containers[0]
	if c.WaitingReason != ReasonErrImagePull || c.WaitingMessage == "" {
		t.Errorf("failed pull: %s", describe(res.Status))
	}
	if res.Requeue <= 0 || res.Requeue > imagePullBackoffInitial {
		t.Errorf("Requeue %v after a failed pull, want its back-off", res.Requeue)
	}
	res = syncUntil(t, r, pull, time.Second, func(*container.PodStatus) bool { return true })
	c = res.Status.Containers[0]
	if c.WaitingReason != ReasonImagePullBackOff || !strings.HasPrefix(c.WaitingMessage, `Back-off pulling image "registry.invalid/missing:1": ErrImagePull: `) {
		t.Errorf("pull in back-off: %s", describe(res.Status))
	}
	for _, want := range []string{
		`Normal Pulling Pulling image "registry.invalid/missing:1"`,
		`Warning Failed Failed to pull image "registry.invalid/missing:1": `,
		"Warning Failed Error: ErrImagePull",
		`Normal BackOff Back-off pulling image "registry.invalid/missing:1"`,
		"Warning Failed Error: ImagePullBackOff",
	} {
		if !rec.has(want) {
			t.Errorf("no event %q in %q", want, rec.all())
		}
	}
}

// TestCreateContainerConfigError: a container whose environment names a
// missing configMap waits with CreateContainerConfigError and upstream's
// message, and starts once the configMap is there.
func TestCreateContainerConfigError(t *testing.T) {
	e := env(t)
	client := kubernetes.NewForConfigOrDie(integration.StartAPIServer(t, integration.ServerOptions{}))
	r, rec := newRuntime(t, e, func(c *Config) { c.Client = client })
	pod := busyboxPod("configerror", "echo $FROM_CONFIG; sleep 3600")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "FROM_CONFIG", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "k"},
	}}}
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].WaitingReason != ""
	})
	c := res.Status.Containers[0]
	if c.WaitingReason != ReasonCreateContainerConfigError || c.WaitingMessage != `configmap "settings" not found` || c.ID != "" {
		t.Errorf("missing configMap: %s", describe(res.Status))
	}
	if res.Requeue <= 0 || res.Requeue > retryInterval {
		t.Errorf("Requeue %v, want a retry", res.Requeue)
	}
	if !rec.has(`Warning Failed Error: configmap "settings" not found`) {
		t.Errorf("events %q", rec.all())
	}
	_, err := client.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"k": "v1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services("default").Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res = syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	out, _, _, err := r.ExecSync(context.Background(), res.Status.Containers[0].ID, []string{"sh", "-c", "echo $FROM_CONFIG $WEB_SERVICE_HOST:$WEB_SERVICE_PORT"}, 5*time.Second)
	if want := "v1 " + svc.Spec.ClusterIP + ":8080\n"; err != nil || string(out) != want {
		t.Errorf("environment from the configMap and service links: %q %v, want %q", out, err, want)
	}
	if w := res.Status.Containers[0].WaitingReason; w != "" {
		t.Errorf("started container still waiting: %s", w)
	}
}

// TestTerminationMessageFile: the termination-log file's content is the
// termination message.
func TestTerminationMessageFile(t *testing.T) {
	e := env(t)
	r, _ := newRuntime(t, e, nil)
	pod := busyboxPod("termlog", fmt.Sprintf("printf 'all done' > %s; exit 0", corev1.TerminationMessagePathDefault))
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	removeAfter(t, r, pod.UID)
	res := syncUntil(t, r, pod, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateExited
	})
	if c := res.Status.Containers[0]; c.Exited.Message != "all done" || c.Exited.Reason != "Completed" {
		t.Errorf("termination message: %s", describe(res.Status))
	}
}
