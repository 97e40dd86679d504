package apiserver_test

// LimitRanger, Priority, DefaultTolerationSeconds and ResourceQuota
// admission against the real server. The ResourceQuota controller (which
// fills in status.hard/used) runs in-process for these tests.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/pkg/controllers/resourcequota"
)

// startQuotaController runs the ResourceQuota controller against the
// shared server until the test ends (a manager left running would keep
// watches open and hold up the server's graceful shutdown).
func startQuotaController(t *testing.T) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 clientgoscheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&resourcequota.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("quota controller: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func simplePod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// createQuota creates a quota and waits for the controller to fill in its
// status.
func createQuota(t *testing.T, ns string, hard corev1.ResourceList) *corev1.ResourceQuota {
	t.Helper()
	startQuotaController(t)
	ctx := testCtx(t)
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return waitQuota(t, ns, func(q *corev1.ResourceQuota) bool {
		return len(q.Status.Hard) == len(hard) && len(q.Status.Used) == len(hard)
	})
}

func waitQuota(t *testing.T, ns string, ok func(*corev1.ResourceQuota) bool) *corev1.ResourceQuota {
	t.Helper()
	var got *corev1.ResourceQuota
	err := wait.PollUntilContextTimeout(testCtx(t), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "q", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = q
		return ok(q), nil
	})
	if err != nil {
		t.Fatalf("quota status: %v; last %+v", err, got.Status)
	}
	return got
}

func TestResourceQuotaPods(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)
	createQuota(t, ns, corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")})
	for _, name := range []string{"p1", "p2"} {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, simplePod(name), metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	_, err := cs.CoreV1().Pods(ns).Create(ctx, simplePod("p3"), metav1.CreateOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods "p3" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`; s.Message != want {
		t.Errorf("message %q\nwant    %q", s.Message, want)
	}
	// A deletion gives the pod back.
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "p1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitQuota(t, ns, func(q *corev1.ResourceQuota) bool { return q.Status.Used.Pods().Value() == 1 })
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, simplePod("p3"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("p3 after a deletion: %v", err)
	}
}

func TestResourceQuotaConcurrent(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)
	createQuota(t, ns, corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5")})
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = cs.CoreV1().Pods(ns).Create(ctx, simplePod("p"+itoa(i)), metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	admitted := 0
	for _, err := range errs {
		switch {
		case err == nil:
			admitted++
		case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota: q"):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if admitted != 5 {
		t.Errorf("%d pods admitted, want 5", admitted)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 5 {
		t.Errorf("%d pods stored, want 5", len(pods.Items))
	}
	q := waitQuota(t, ns, func(q *corev1.ResourceQuota) bool { return q.Status.Used.Pods().Value() == 5 })
	// And it stays so once the controller recomputed.
	time.Sleep(time.Second)
	q = waitQuota(t, ns, func(q *corev1.ResourceQuota) bool { return true })
	if got := q.Status.Used.Pods().Value(); got != 5 {
		t.Errorf("status.used.pods = %d, want 5", got)
	}
}

func TestResourceQuotaComputeAndCounts(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)
	createQuota(t, ns, corev1.ResourceList{
		corev1.ResourceRequestsCPU:       resource.MustParse("1"),
		corev1.ResourceConfigMaps:        resource.MustParse("10"),
		"count/deployments.apps":         resource.MustParse("1"),
		corev1.ResourceServicesNodePorts: resource.MustParse("1"),
	})
	// A cpu quota needs every container to request cpu.
	_, err := cs.CoreV1().Pods(ns).Create(ctx, simplePod("none"), metav1.CreateOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods "none" is forbidden: failed quota: q: must specify requests.cpu for: c`; s.Message != want {
		t.Errorf("message %q\nwant    %q", s.Message, want)
	}
	big := simplePod("big")
	big.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, big, metav1.CreateOptions{})
	s = wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods "big" is forbidden: exceeded quota: q, requested: requests.cpu=2, used: requests.cpu=0, limited: requests.cpu=1`; s.Message != want {
		t.Errorf("message %q\nwant    %q", s.Message, want)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
		Ports: []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 81}}}}
	_, err = cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	s = wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if !strings.Contains(s.Message, "exceeded quota: q, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1") {
		t.Errorf("message %q", s.Message)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitQuota(t, ns, func(q *corev1.ResourceQuota) bool {
		used := q.Status.Used[corev1.ResourceConfigMaps]
		return used.Value() >= 1
	})
}

func TestLimitRanger(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "lr"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Default:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("500Mi")},
		DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("200Mi")},
		Max:            corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
	}}}}
	if _, err := cs.CoreV1().LimitRanges(ns).Create(ctx, lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, simplePod("defaults"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := pod.Spec.Containers[0].Resources
	if r.Requests.Cpu().String() != "100m" || r.Requests.Memory().String() != "200Mi" || r.Limits.Cpu().String() != "500m" || r.Limits.Memory().String() != "500Mi" {
		t.Errorf("resources not defaulted: %+v", r)
	}
	if want := "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"; pod.Annotations["kubernetes.io/limit-ranger"] != want {
		t.Errorf("annotation %q, want %q", pod.Annotations["kubernetes.io/limit-ranger"], want)
	}
	over := simplePod("over")
	over.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, over, metav1.CreateOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods "over" is forbidden: maximum cpu usage per Container is 1, but limit is 2`; s.Message != want {
		t.Errorf("message %q\nwant    %q", s.Message, want)
	}
}

func TestPriorityAndTolerations(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, simplePod("plain"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.Priority == nil || *pod.Spec.Priority != 0 || pod.Spec.PreemptionPolicy == nil || *pod.Spec.PreemptionPolicy != corev1.PreemptLowerPriority {
		t.Errorf("priority %v, preemptionPolicy %v; want 0, PreemptLowerPriority", pod.Spec.Priority, pod.Spec.PreemptionPolicy)
	}
	tolerations := map[string]bool{}
	for _, tol := range pod.Spec.Tolerations {
		if tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoExecute && tol.TolerationSeconds != nil && *tol.TolerationSeconds == 300 {
			tolerations[tol.Key] = true
		}
	}
	if !tolerations[corev1.TaintNodeNotReady] || !tolerations[corev1.TaintNodeUnreachable] {
		t.Errorf("default tolerations missing: %+v", pod.Spec.Tolerations)
	}

	never := corev1.PreemptNever
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: ns + "-high"}, Value: 1000, PreemptionPolicy: &never}
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.SchedulingV1().PriorityClasses().Delete(context.Background(), pc.Name, metav1.DeleteOptions{})
	})
	high := simplePod("high")
	high.Spec.PriorityClassName = pc.Name
	pod, err = cs.CoreV1().Pods(ns).Create(ctx, high, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *pod.Spec.Priority != 1000 || *pod.Spec.PreemptionPolicy != corev1.PreemptNever {
		t.Errorf("priority %d, preemptionPolicy %s; want 1000, Never", *pod.Spec.Priority, *pod.Spec.PreemptionPolicy)
	}
	critical := simplePod("critical")
	critical.Spec.PriorityClassName = "system-node-critical"
	if pod, err = cs.CoreV1().Pods(ns).Create(ctx, critical, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	} else if *pod.Spec.Priority != 2000001000 {
		t.Errorf("system-node-critical priority %d", *pod.Spec.Priority)
	}

	missing := simplePod("missing")
	missing.Spec.PriorityClassName = "no-such-class"
	_, err = cs.CoreV1().Pods(ns).Create(ctx, missing, metav1.CreateOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods "missing" is forbidden: no PriorityClass with name no-such-class was found`; s.Message != want {
		t.Errorf("message %q\nwant    %q", s.Message, want)
	}
	wrong := simplePod("wrong")
	wrong.Spec.Priority = new(int32)
	*wrong.Spec.Priority = 7
	_, err = cs.CoreV1().Pods(ns).Create(ctx, wrong, metav1.CreateOptions{})
	s = wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods "wrong" is forbidden: the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name`; s.Message != want {
		t.Errorf("message %q\nwant    %q", s.Message, want)
	}
}
