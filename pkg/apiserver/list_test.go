package apiserver_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestListPaging: 25 objects listed 10 at a time come back exactly once, in
// name order, with continue tokens and remainingItemCount on every page but
// the last.
func TestListPaging(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)
	var want []string
	for i := 0; i < 25; i++ {
		name := fmt.Sprintf("cm-%02d", i)
		want = append(want, name)
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var got []string
	var pages []int
	var remaining []int64
	cont, firstRV := "", ""
	for page := 0; page < 10; page++ {
		list, err := cms.List(ctx, metav1.ListOptions{Limit: 10, Continue: cont})
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, cm := range list.Items {
			got = append(got, cm.Name)
		}
		pages = append(pages, len(list.Items))
		if list.RemainingItemCount != nil {
			remaining = append(remaining, *list.RemainingItemCount)
		} else {
			remaining = append(remaining, -1)
		}
		if page == 0 {
			firstRV = list.ResourceVersion
		} else if list.ResourceVersion != firstRV {
			// Every page is a snapshot at the first page's revision.
			t.Errorf("page %d resourceVersion %s, want the first page's %s", page, list.ResourceVersion, firstRV)
		}
		cont = list.Continue
		if cont == "" {
			break
		}
		// Objects created after the first page are not in the snapshot.
		if page == 0 {
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-99-late"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged names %v, want %v", got, want)
	}
	if !slices.Equal(pages, []int{10, 10, 5}) {
		t.Errorf("page sizes %v, want [10 10 5]", pages)
	}
	if !slices.Equal(remaining, []int64{15, 5, -1}) {
		t.Errorf("remainingItemCount per page %v, want [15 5 absent]", remaining)
	}

	// A limit larger than the collection returns everything, without a token.
	all, err := cms.List(ctx, metav1.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 26 || all.Continue != "" || all.RemainingItemCount != nil {
		t.Errorf("limit 100: %d items, continue %q, remaining %v", len(all.Items), all.Continue, all.RemainingItemCount)
	}

	// A forged continue token is the client's error.
	_, err = cms.List(ctx, metav1.ListOptions{Limit: 10, Continue: "not-a-token"})
	wantStatusErr(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
}

func podNames(items []corev1.Pod) []string {
	var out []string
	for _, p := range items {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// TestSelectors: label and field selectors filter lists on the server, for
// each selectable field the brief names, and an unknown field label is 400.
func TestSelectors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)

	// Pods: p1 on n1, p2 on n2, p3 unscheduled; p2 Running through /status.
	for _, p := range []struct{ name, node, tier string }{{"p1", "n1", "web"}, {"p2", "n2", "db"}, {"p3", "", "web"}} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{"tier": p.tier}},
			Spec:       corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p2, err := cs.CoreV1().Pods(ns).Get(ctx, "p2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p2.Status.Phase = corev1.PodRunning
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, s := range []struct {
		name string
		typ  corev1.SecretType
	}{{"opaque", corev1.SecretTypeOpaque}, {"tls", corev1.SecretTypeTLS}} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.name}, Type: s.typ}
		if s.typ == corev1.SecretTypeTLS {
			sec.Data = map[string][]byte{corev1.TLSCertKey: []byte("c"), corev1.TLSPrivateKeyKey: []byte("k")}
		}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct{ name, object string }{{"e1", "p1"}, {"e2", "p2"}, {"e3", "p1"}} {
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: e.name},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.object},
			Reason:         "Test", Message: "m", Type: corev1.EventTypeNormal,
		}
		if _, err := cs.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, newDeployment("d1", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, newDeployment("d2", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	list := func(t *testing.T, resource string, opts metav1.ListOptions) []string {
		t.Helper()
		var names []string
		var err error
		switch resource {
		case "pods":
			var l *corev1.PodList
			if l, err = cs.CoreV1().Pods(ns).List(ctx, opts); err == nil {
				names = podNames(l.Items)
			}
		case "secrets":
			var l *corev1.SecretList
			if l, err = cs.CoreV1().Secrets(ns).List(ctx, opts); err == nil {
				for _, i := range l.Items {
					names = append(names, i.Name)
				}
			}
		case "events":
			var l *corev1.EventList
			if l, err = cs.CoreV1().Events(ns).List(ctx, opts); err == nil {
				for _, i := range l.Items {
					names = append(names, i.Name)
				}
			}
		case "events.k8s.io":
			var l *eventsv1.EventList
			if l, err = cs.EventsV1().Events(ns).List(ctx, opts); err == nil {
				for _, i := range l.Items {
					names = append(names, i.Name)
				}
			}
		case "configmaps":
			var l *corev1.ConfigMapList
			if l, err = cs.CoreV1().ConfigMaps(ns).List(ctx, opts); err == nil {
				for _, i := range l.Items {
					names = append(names, i.Name)
				}
			}
		case "deployments":
			var l *appsv1.DeploymentList
			if l, err = cs.AppsV1().Deployments(ns).List(ctx, opts); err == nil {
				for _, i := range l.Items {
					names = append(names, i.Name)
				}
			}
		case "namespaces":
			var l *corev1.NamespaceList
			if l, err = cs.CoreV1().Namespaces().List(ctx, opts); err == nil {
				for _, i := range l.Items {
					names = append(names, i.Name)
				}
			}
		default:
			t.Fatalf("no lister for %s", resource)
		}
		if err != nil {
			t.Fatalf("list %s %+v: %v", resource, opts, err)
		}
		sort.Strings(names)
		return names
	}

	for _, tc := range []struct {
		resource, labels, fields string
		want                     []string
	}{
		{"pods", "tier=web", "", []string{"p1", "p3"}},
		{"pods", "tier in (db)", "", []string{"p2"}},
		{"pods", "tier!=web", "", []string{"p2"}},
		{"pods", "!tier", "", nil},
		{"pods", "", "spec.nodeName=n1", []string{"p1"}},
		{"pods", "", "spec.nodeName=", []string{"p3"}},
		{"pods", "", "spec.nodeName!=", []string{"p1", "p2"}},
		{"pods", "", "status.phase=Running", []string{"p2"}},
		{"pods", "", "status.phase=Pending", []string{"p1", "p3"}},
		{"pods", "", "status.phase!=Pending,spec.nodeName=n2", []string{"p2"}},
		{"pods", "tier=web", "spec.nodeName=n1", []string{"p1"}},
		{"pods", "", "metadata.name=p3", []string{"p3"}},
		{"pods", "", "metadata.namespace=" + ns, []string{"p1", "p2", "p3"}},
		{"secrets", "", "type=kubernetes.io/tls", []string{"tls"}},
		{"secrets", "", "type=Opaque", []string{"opaque"}},
		{"secrets", "", "metadata.name=opaque", []string{"opaque"}},
		{"events", "", "involvedObject.name=p1", []string{"e1", "e3"}},
		{"events", "", "involvedObject.name=p2,involvedObject.kind=Pod", []string{"e2"}},
		{"events", "", "metadata.name=e3", []string{"e3"}},
		{"events.k8s.io", "", "regarding.name=p1", []string{"e1", "e3"}},
		{"events.k8s.io", "", "metadata.name=e2", []string{"e2"}},
		{"configmaps", "", "metadata.name=cm2", []string{"cm2"}},
		{"configmaps", "", "metadata.name!=cm2", []string{"cm1"}},
		{"deployments", "", "metadata.name=d1", []string{"d1"}},
		{"namespaces", "", "metadata.name=" + ns, []string{ns}},
		{"namespaces", "", "metadata.name=kube-system", []string{"kube-system"}},
	} {
		t.Run(tc.resource+" "+tc.labels+" "+tc.fields, func(t *testing.T) {
			got := list(t, tc.resource, metav1.ListOptions{LabelSelector: tc.labels, FieldSelector: tc.fields})
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	// A field selector also filters a watch; the server only accepts fields it
	// knows for the kind.
	for _, tc := range []struct{ path, selector string }{
		{"/api/v1/namespaces/" + ns + "/pods", "spec.bogus=x"},
		{"/api/v1/namespaces/" + ns + "/configmaps", "data.k=v"},
		{"/api/v1/namespaces/" + ns + "/secrets", "spec.nodeName=n1"},
		{"/api/v1/namespaces/" + ns + "/events", "regarding.name=p1"},
		{"/apis/events.k8s.io/v1/namespaces/" + ns + "/events", "involvedObject.name=p1"},
		{"/apis/apps/v1/namespaces/" + ns + "/deployments", "spec.replicas=1"},
		{"/api/v1/namespaces", "spec.finalizers=x"},
	} {
		t.Run("unknown field "+tc.path+" "+tc.selector, func(t *testing.T) {
			for _, watch := range []string{"false", "true"} {
				r := do(t, nil, http.MethodGet, tc.path+query("fieldSelector", tc.selector, "watch", watch, "timeoutSeconds", "1"), nil, nil)
				if r.code != http.StatusBadRequest {
					t.Fatalf("watch=%s: %d, want 400:\n%s", watch, r.code, r.body)
				}
				s := r.status(t)
				field := strings.SplitN(tc.selector, "=", 2)[0]
				if s.Reason != metav1.StatusReasonBadRequest || !strings.Contains(s.Message, field) {
					t.Errorf("watch=%s: %s %q, want BadRequest naming %s", watch, s.Reason, s.Message, field)
				}
			}
		})
	}

	t.Run("malformed label selector", func(t *testing.T) {
		_, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "tier in (web"})
		wantStatusErr(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	})
}
