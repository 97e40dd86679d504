package endpoints_test

// Against a real skiff API server, the endpoints, EndpointSlice and
// mirroring controllers as skiff runs them (each as its ServiceAccount, so
// their RBAC roles are exercised): pods' status is set by the test.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/test/integration"
)

var names = []string{"endpoints-controller", "endpointslice-controller", "endpointslice-mirroring-controller"}

// run runs the three controllers until stop (or the test's end).
func run(t *testing.T, cfg *restclient.Config, intFlags map[string]int) (stop func()) {
	t.Helper()
	return integration.StartControllers(t, cfg, controllers.Options{Controllers: names, UseServiceAccountCredentials: true, IntFlags: intFlags})
}

type podSpec struct {
	name, ip string
	ready    bool
	httpPort int32 // container port named http
	hostname string
}

// createPod creates a pod on node-a labeled app=web and sets its status:
// Running with ip, Ready as said.
func createPod(t *testing.T, cs kubernetes.Interface, ns string, p podSpec, extraLabels map[string]string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	for k, v := range extraLabels {
		labels[k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: "node-a", Hostname: p.hostname, Subdomain: "web",
			Containers: []corev1.Container{{Name: "c", Image: "nginx",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: p.httpPort, Protocol: corev1.ProtocolTCP}}}}},
	}
	if p.hostname == "" {
		pod.Spec.Subdomain = ""
	}
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setStatus(t, cs, created, p.ip, p.ready)
	return created
}

func setStatus(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod, ip string, ready bool) {
	t.Helper()
	for range 10 {
		cur, err := cs.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		cur.Status.Phase = corev1.PodRunning
		cur.Status.PodIP, cur.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		cur.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}
		if _, err = cs.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), cur, metav1.UpdateOptions{}); err == nil {
			return
		} else if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	t.Fatalf("could not set %s's status", pod.Name)
}

// summary is an Endpoints as "ready=[ip...] notReady=[ip...] ports=[name:port...]" per subset, sorted.
func summary(ep *corev1.Endpoints) string {
	var out []string
	for _, s := range ep.Subsets {
		var r, n, p []string
		for _, a := range s.Addresses {
			r = append(r, a.IP)
		}
		for _, a := range s.NotReadyAddresses {
			n = append(n, a.IP)
		}
		for _, x := range s.Ports {
			p = append(p, fmt.Sprintf("%s:%d", x.Name, x.Port))
		}
		sort.Strings(r)
		sort.Strings(n)
		sort.Strings(p)
		out = append(out, fmt.Sprintf("ready=%v notReady=%v ports=%v", r, n, p))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// sliceSummary: per address type and port set of the slices, their
// endpoints "ip(ready,serving,terminating)" sorted, and how many slices
// hold them ("x2").
func sliceSummary(list []discovery.EndpointSlice) string {
	eps := map[string][]string{}
	count := map[string]int{}
	for _, s := range list {
		var p []string
		for _, x := range s.Ports {
			p = append(p, fmt.Sprintf("%s:%d", ptr.Deref(x.Name, ""), ptr.Deref(x.Port, 0)))
		}
		sort.Strings(p)
		key := fmt.Sprintf("%s ports=%v", s.AddressType, p)
		count[key]++
		for _, x := range s.Endpoints {
			c := x.Conditions
			eps[key] = append(eps[key], fmt.Sprintf("%s(%v,%v,%v)", strings.Join(x.Addresses, ","), ptr.Deref(c.Ready, false), ptr.Deref(c.Serving, false), ptr.Deref(c.Terminating, false)))
		}
	}
	var out []string
	for key, n := range count {
		sort.Strings(eps[key])
		out = append(out, fmt.Sprintf("%s %v x%d", key, eps[key], n))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func slicesOf(t *testing.T, cs kubernetes.Interface, ns, svc string) []discovery.EndpointSlice {
	t.Helper()
	list, err := cs.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{LabelSelector: discovery.LabelServiceName + "=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func waitEndpoints(t *testing.T, cs kubernetes.Interface, ns, name, want string) *corev1.Endpoints {
	t.Helper()
	var ep *corev1.Endpoints
	integration.Eventually(t, 20*time.Second, func() string {
		var err error
		ep, err = cs.CoreV1().Endpoints(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got := summary(ep); got != want {
			return fmt.Sprintf("Endpoints %s: %s, want %s", name, got, want)
		}
		return ""
	})
	return ep
}

func waitSlices(t *testing.T, cs kubernetes.Interface, ns, name, want string) []discovery.EndpointSlice {
	t.Helper()
	var list []discovery.EndpointSlice
	integration.Eventually(t, 20*time.Second, func() string {
		list = slicesOf(t, cs, ns, name)
		if got := sliceSummary(list); got != want {
			return fmt.Sprintf("EndpointSlices of %s: %s, want %s", name, got, want)
		}
		return ""
	})
	return list
}

func TestEndpointsAgainstAPIServer(t *testing.T) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Two endpoints a slice, so that four pods of one port set need two.
	stop := run(t, cfg, map[string]int{"max-endpoints-per-slice": 2})
	ns := "default"
	// No serviceaccount controller here: pods need the default one.
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a",
		Labels: map[string]string{corev1.LabelTopologyZone: "zone-1"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A Service over pods whose named target port differs.
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"tier": "front"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090)},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	createPod(t, cs, ns, podSpec{name: "p1", ip: "10.1.0.1", ready: true, httpPort: 8080, hostname: "h1"}, nil)
	createPod(t, cs, ns, podSpec{name: "p2", ip: "10.1.0.2", ready: true, httpPort: 8081}, nil)
	createPod(t, cs, ns, podSpec{name: "p3", ip: "10.1.0.3", ready: false, httpPort: 8080}, nil)
	createPod(t, cs, ns, podSpec{name: "p4", ip: "10.1.0.4", ready: true, httpPort: 8080}, nil)
	createPod(t, cs, ns, podSpec{name: "p5", ip: "10.1.0.5", ready: true, httpPort: 8080}, nil)
	// Not selected.
	other, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "x"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setStatus(t, cs, other, "10.1.0.9", true)

	// Ports with the same addresses share a subset (upstream's repacking).
	ep := waitEndpoints(t, cs, ns, "web", "ready=[10.1.0.1 10.1.0.2 10.1.0.4 10.1.0.5] notReady=[10.1.0.3] ports=[metrics:9090]; "+
		"ready=[10.1.0.1 10.1.0.4 10.1.0.5] notReady=[10.1.0.3] ports=[http:8080]; ready=[10.1.0.2] notReady=[] ports=[http:8081]")
	if ep.Labels["endpoints.kubernetes.io/managed-by"] != "endpoint-controller" || ep.Labels["tier"] != "front" {
		t.Errorf("Endpoints labels %v", ep.Labels)
	}
	if _, ok := ep.Labels[corev1.IsHeadlessService]; ok {
		t.Errorf("Endpoints of a ClusterIP Service labeled headless: %v", ep.Labels)
	}
	if _, err := time.Parse(time.RFC3339Nano, ep.Annotations[corev1.EndpointsLastChangeTriggerTime]); err != nil {
		t.Errorf("last-change-trigger-time annotation %q: %v", ep.Annotations[corev1.EndpointsLastChangeTriggerTime], err)
	}
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			if a.TargetRef == nil || a.TargetRef.Kind != "Pod" || ptr.Deref(a.NodeName, "") != "node-a" {
				t.Errorf("address %+v: want a Pod targetRef and nodeName node-a", a)
			}
			if (a.TargetRef.Name == "p1") != (a.Hostname == "h1") {
				t.Errorf("address %s hostname %q: only p1 (subdomain web) has one", a.TargetRef.Name, a.Hostname)
			}
		}
	}

	list := waitSlices(t, cs, ns, "web",
		"IPv4 ports=[http:8080 metrics:9090] [10.1.0.1(true,true,false) 10.1.0.3(false,false,false) 10.1.0.4(true,true,false) 10.1.0.5(true,true,false)] x2; "+
			"IPv4 ports=[http:8081 metrics:9090] [10.1.0.2(true,true,false)] x1")
	for _, s := range list {
		if s.Labels[discovery.LabelManagedBy] != "endpointslice-controller.k8s.io" || s.Labels["tier"] != "front" {
			t.Errorf("slice %s labels %v", s.Name, s.Labels)
		}
		if !strings.HasPrefix(s.Name, "web-") {
			t.Errorf("slice name %s, want web-<random>", s.Name)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != svc.UID || s.OwnerReferences[0].Kind != "Service" ||
			!ptr.Deref(s.OwnerReferences[0].Controller, false) || !ptr.Deref(s.OwnerReferences[0].BlockOwnerDeletion, false) {
			t.Errorf("slice %s ownerReferences %+v", s.Name, s.OwnerReferences)
		}
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Zone, "") != "zone-1" || ptr.Deref(e.NodeName, "") != "node-a" || e.TargetRef == nil {
				t.Errorf("slice endpoint %+v: want zone-1, node-a and a targetRef", e)
			}
			if (e.TargetRef.Name == "p1") != (ptr.Deref(e.Hostname, "") == "h1") {
				t.Errorf("slice endpoint %s hostname %v", e.TargetRef.Name, e.Hostname)
			}
		}
	}

	// p3 turns ready; p2 goes away; p4 is terminating (held by a finalizer).
	p3, _ := cs.CoreV1().Pods(ns).Get(ctx, "p3", metav1.GetOptions{})
	setStatus(t, cs, p3, "10.1.0.3", true)
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "p2", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	p4, _ := cs.CoreV1().Pods(ns).Get(ctx, "p4", metav1.GetOptions{})
	p4.Finalizers = []string{"example.com/hold"}
	if _, err := cs.CoreV1().Pods(ns).Update(ctx, p4, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "p4", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEndpoints(t, cs, ns, "web", "ready=[10.1.0.1 10.1.0.3 10.1.0.5] notReady=[] ports=[http:8080 metrics:9090]")
	waitSlices(t, cs, ns, "web", "IPv4 ports=[http:8080 metrics:9090] [10.1.0.1(true,true,false) 10.1.0.3(true,true,false) 10.1.0.4(false,true,true) 10.1.0.5(true,true,false)] x2")

	// publishNotReadyAddresses: not ready and terminating pods count as ready.
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "all"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{{Name: "x", Port: 1, TargetPort: intstr.FromInt32(81)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p1, _ := cs.CoreV1().Pods(ns).Get(ctx, "p1", metav1.GetOptions{})
	setStatus(t, cs, p1, "10.1.0.1", false)
	waitEndpoints(t, cs, ns, "all", "ready=[10.1.0.1 10.1.0.3 10.1.0.4 10.1.0.5] notReady=[] ports=[x:81]")
	waitSlices(t, cs, ns, "all", "IPv4 ports=[x:81] [10.1.0.1(true,false,false) 10.1.0.3(true,true,false) 10.1.0.4(true,true,true) 10.1.0.5(true,true,false)] x2")
	waitEndpoints(t, cs, ns, "web", "ready=[10.1.0.3 10.1.0.5] notReady=[10.1.0.1] ports=[http:8080 metrics:9090]")

	// A headless Service without ports.
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "headless"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "db"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hl := waitEndpoints(t, cs, ns, "headless", "ready=[10.1.0.9] notReady=[] ports=[]")
	if _, ok := hl.Labels[corev1.IsHeadlessService]; !ok {
		t.Errorf("headless Service's Endpoints labels %v", hl.Labels)
	}
	waitSlices(t, cs, ns, "headless", "IPv4 ports=[] [10.1.0.9(true,true,false)] x1")

	// A Service without selector: its Endpoints are the user's, mirrored
	// to a slice; one labeled skip-mirror is not.
	ext, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "db", Port: 5432}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = ext
	custom, err := cs.CoreV1().Endpoints(ns).Create(ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "ext", Labels: map[string]string{"own": "label"}, Annotations: map[string]string{"own": "annotation"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "192.168.5.1", Hostname: "db1"}, {IP: "fd00::1"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.168.5.2"}},
			Ports:             []corev1.EndpointPort{{Name: "db", Port: 5432, Protocol: corev1.ProtocolTCP}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mirrored := waitSlices(t, cs, ns, "ext", "IPv4 ports=[db:5432] [192.168.5.1(true,false,false) 192.168.5.2(false,false,false)] x1; IPv6 ports=[db:5432] [fd00::1(true,false,false)] x1")
	for _, s := range mirrored {
		if s.Labels[discovery.LabelManagedBy] != "endpointslicemirroring-controller.k8s.io" || s.Labels["own"] != "label" || s.Annotations["own"] != "annotation" {
			t.Errorf("mirrored slice %s labels %v annotations %v", s.Name, s.Labels, s.Annotations)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Endpoints" || s.OwnerReferences[0].UID != custom.UID {
			t.Errorf("mirrored slice %s ownerReferences %+v", s.Name, s.OwnerReferences)
		}
	}
	got, _ := cs.CoreV1().Endpoints(ns).Get(ctx, "ext", metav1.GetOptions{})
	if _, ok := got.Labels["endpoints.kubernetes.io/managed-by"]; ok || summary(got) != summary(custom) {
		t.Errorf("the user's Endpoints changed: %v %s", got.Labels, summary(got))
	}
	// Marked skip-mirror: its slices go.
	got.Labels[discovery.LabelSkipMirror] = "true"
	if _, err := cs.CoreV1().Endpoints(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSlices(t, cs, ns, "ext", "")

	// The API server's own kubernetes Service: neither its Endpoints nor
	// its slice are taken over.
	kep, err := cs.CoreV1().Endpoints(ns).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kep.Labels["endpoints.kubernetes.io/managed-by"]; ok {
		t.Errorf("kubernetes Endpoints labels %v", kep.Labels)
	}
	for _, s := range slicesOf(t, cs, ns, "kubernetes") {
		if m := s.Labels[discovery.LabelManagedBy]; m == "endpointslicemirroring-controller.k8s.io" || m == "endpointslice-controller.k8s.io" {
			t.Errorf("kubernetes slice %s is managed by %s", s.Name, m)
		}
	}

	// Endpoints of no Service, created while the controller runs, stay
	// (upstream's); left over at a start, they go (a leader-election
	// record stays).
	for _, name := range []string{"orphan", "election"} {
		e := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if name == "election" {
			e.Annotations = map[string]string{"control-plane.alpha.kubernetes.io/leader": "{}"}
		}
		if _, err := cs.CoreV1().Endpoints(ns).Create(ctx, e, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The Service deleted: its Endpoints goes.
	if err := cs.CoreV1().Services(ns).Delete(ctx, "headless", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 20*time.Second, func() string {
		if _, err := cs.CoreV1().Endpoints(ns).Get(ctx, "headless", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("Endpoints headless of a deleted Service: %v", err)
		}
		return ""
	})
	if _, err := cs.CoreV1().Endpoints(ns).Get(ctx, "orphan", metav1.GetOptions{}); err != nil {
		t.Errorf("Endpoints without a Service deleted while running: %v", err)
	}
	stop()
	run(t, cfg, nil)
	integration.Eventually(t, 20*time.Second, func() string {
		if _, err := cs.CoreV1().Endpoints(ns).Get(ctx, "orphan", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("leftover Endpoints orphan after a restart: %v", err)
		}
		return ""
	})
	if _, err := cs.CoreV1().Endpoints(ns).Get(ctx, "election", metav1.GetOptions{}); err != nil {
		t.Errorf("leader-election Endpoints: %v", err)
	}
	// Restarted, the controllers find the same state.
	waitEndpoints(t, cs, ns, "web", "ready=[10.1.0.3 10.1.0.5] notReady=[10.1.0.1] ports=[http:8080 metrics:9090]")
}
