package eviction

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/server/stats"
	"github.com/skiff-dev/skiff/pkg/kubelet/volume"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/integration"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// TestLocalStorageEvictionOnContainerd: real busybox pods on a real
// containerd, their status in a real API server. A pod writing 2 MiB into
// an emptyDir of sizeLimit 1Mi, and one writing 2 MiB into its writable
// layer over its container's ephemeral-storage limit of 1Mi, are evicted with
// upstream's messages and stopped; a pod within its limits keeps running.
func TestLocalStorageEvictionOnContainerd(t *testing.T) {
	p := containerdtest.Start(t, containerdtest.Options{Name: "evi", PodCIDR: netip.MustParsePrefix("10.216.11.0/24"), Images: true})
	containerdDir := p.Dir
	client := kubernetes.NewForConfigOrDie(integration.StartAPIServer(t, integration.ServerOptions{}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dir := t.TempDir()
	root, logs := filepath.Join(dir, "kubelet"), filepath.Join(dir, "logs")
	volumes := &volume.Manager{Client: client, RootDir: root, NodeName: "node-1"}
	rec := &events{}
	rt, err := cri.New(cri.Config{Endpoint: p.Endpoint(), Client: client, Recorder: rec, NodeName: "node-1",
		RootDir: root, PodLogsDir: logs, Volumes: volumes, PollInterval: 200 * time.Millisecond,
		HostIPs: func() []string { return []string{"127.0.0.1"} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	provider, err := stats.New(stats.Config{NodeName: "node-1", Runtime: rt, RootDir: root, ImageFsDir: containerdDir, PodLogsDir: logs})
	if err != nil {
		t.Fatal(err)
	}

	limit := resource.MustParse("1Mi")
	busybox := func(script string) corev1.Container {
		return corev1.Container{Name: "c", Image: nodeimages.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"sh", "-c", script}, TerminationMessagePath: corev1.TerminationMessagePathDefault,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile}
	}
	withDir := func(name string, size resource.Quantity, script string) *corev1.Pod {
		c := busybox(script)
		c.VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/x"}}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{
			NodeName: "node-1", RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: ptr.To[int64](30),
			Containers: []corev1.Container{c},
			Volumes:    []corev1.Volume{{Name: "x", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &size}}}},
		}}
	}
	layer := busybox("dd if=/dev/zero of=/big bs=1024 count=2048 && sleep 3600")
	layer.Resources.Limits = corev1.ResourceList{corev1.ResourceEphemeralStorage: limit}
	// A second container with room: else the pod's total limit (checked
	// first, as upstream) is the one exceeded.
	idle := busybox("sleep 3600")
	idle.Name = "idle"
	idle.Resources.Limits = corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("100Mi")}
	specs := []*corev1.Pod{
		withDir("emptydir", limit, "dd if=/dev/zero of=/x/big bs=1024 count=2048 && sleep 3600"),
		{ObjectMeta: metav1.ObjectMeta{Name: "layer", Namespace: "default"}, Spec: corev1.PodSpec{
			NodeName: "node-1", RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: ptr.To[int64](30),
			Containers: []corev1.Container{layer, idle}}},
		withDir("within", resource.MustParse("10Mi"), "dd if=/dev/zero of=/x/small bs=1024 count=1024 && sleep 3600"),
	}
	// No controller manager here: the service account admission needs one.
	if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	for _, spec := range specs {
		spec.Spec.AutomountServiceAccountToken = ptr.To(false)
		pod, err := client.CoreV1().Pods("default").Create(ctx, spec, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, pod)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := rt.RemovePod(ctx, pod.UID); err != nil {
				t.Errorf("RemovePod %s: %v", pod.Name, err)
			}
			if err := volumes.TearDown(ctx, pod.UID); err != nil {
				t.Errorf("TearDown %s: %v", pod.Name, err)
			}
		})
	}
	// Start them as the pod workers would.
	for _, pod := range pods {
		deadline := time.Now().Add(time.Minute)
		for {
			res, err := rt.SyncPod(ctx, pod)
			if err != nil {
				t.Fatalf("SyncPod %s: %v", pod.Name, err)
			}
			if res.Status != nil && res.Status.Running() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pod %s not running after a minute", pod.Name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	m, err := New(Config{
		NodeName: "node-1",
		// The node's own pressure is not this test's.
		Thresholds: []Threshold{},
		RootDir:    root, ImageFsDir: containerdDir,
		Summary:     func(ctx context.Context) (*statsapi.Summary, error) { return provider.Summary(ctx, false) },
		VolumeUsage: volumes.Usage,
		Pods: func() []*corev1.Pod {
			var out []*corev1.Pod
			for _, p := range pods {
				if cur, err := client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
					out = append(out, cur)
				}
			}
			return out
		},
		Kill:   KillWith(rt),
		Client: client, Recorder: rec, Clock: clock.RealClock{},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The writable layer's usage comes from containerd's snapshot stats,
	// refreshed every 10 s: poll as the manager's loop would.
	evicted := map[string]bool{}
	deadline := time.Now().Add(45 * time.Second)
	for len(evicted) < 2 && time.Now().Before(deadline) {
		for _, pod := range m.synchronize(ctx) {
			evicted[pod.Name] = true
		}
		time.Sleep(time.Second)
	}
	want := map[string]string{
		"emptydir": `Usage of EmptyDir volume "x" exceeds the limit "1Mi". `,
		"layer":    `Container c exceeded its local ephemeral storage limit "1Mi". `,
	}
	for name, message := range want {
		if !evicted[name] {
			s, _ := provider.Summary(ctx, false)
			t.Fatalf("%s not evicted in 45 s (evicted %v); volumes %v, summary pods %s", name, evicted, volumes.Usage(podNamed(pods, name).UID), describePods(s))
		}
		pod, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pod.Status.Phase != corev1.PodFailed || pod.Status.Reason != Reason || pod.Status.Message != message {
			t.Errorf("%s: status %s %s %q, want Failed Evicted %q", name, pod.Status.Phase, pod.Status.Reason, pod.Status.Message, message)
		}
		if !hasEvent(rec, "Pod/"+name+" Warning Evicted "+message) {
			t.Errorf("%s: no Evicted event; events %v", name, rec.all())
		}
		// Killed: nothing of it runs.
		stopDeadline := time.Now().Add(30 * time.Second)
		for {
			res, err := rt.KillPod(ctx, pod, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Status.Running() {
				break
			}
			if time.Now().After(stopDeadline) {
				t.Fatalf("%s still running 30 s after its eviction", name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if evicted["within"] {
		t.Error("the pod within its limits was evicted")
	}
	within, err := client.CoreV1().Pods("default").Get(ctx, "within", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if within.Status.Phase == corev1.PodFailed {
		t.Errorf("pod within its limits: %s %q", within.Status.Phase, within.Status.Message)
	}
	if res, err := rt.SyncPod(ctx, within); err != nil || !res.Status.Running() {
		t.Errorf("pod within its limits not running: %v", err)
	}
}

func podNamed(pods []*corev1.Pod, name string) *corev1.Pod {
	for _, p := range pods {
		if p.Name == name {
			return p
		}
	}
	return &corev1.Pod{}
}

func hasEvent(e *events, s string) bool {
	for _, ev := range e.all() {
		if strings.HasPrefix(ev, s) {
			return true
		}
	}
	return false
}

func describePods(s *statsapi.Summary) string {
	if s == nil {
		return "<none>"
	}
	var b strings.Builder
	for _, p := range s.Pods {
		fmt.Fprintf(&b, "%s:", p.PodRef.Name)
		for _, c := range p.Containers {
			fmt.Fprintf(&b, " %s rootfs=%d logs=%d", c.Name, usedBytes(c.Rootfs), usedBytes(c.Logs))
		}
		b.WriteString("; ")
	}
	return b.String()
}
