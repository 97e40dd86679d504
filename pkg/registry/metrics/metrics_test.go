package metrics

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// fakeCore is the core nodes or pods storage: get and list by label (and
// for pods spec.nodeName) selector in the context's namespace.
type fakeCore struct {
	nodes []corev1.Node
	pods  []corev1.Pod
}

func (f *fakeCore) NewList() runtime.Object { return nil }
func (f *fakeCore) ConvertToTable(context.Context, runtime.Object, runtime.Object) (*metav1.Table, error) {
	return nil, nil
}
func (f *fakeCore) New() runtime.Object { return nil }
func (f *fakeCore) Destroy()            {}

func (f *fakeCore) List(ctx context.Context, o *metainternalversion.ListOptions) (runtime.Object, error) {
	sel, fsel := labels.Everything(), fields.Everything()
	if o != nil && o.LabelSelector != nil {
		sel = o.LabelSelector
	}
	if o != nil && o.FieldSelector != nil {
		fsel = o.FieldSelector
	}
	ns := genericapirequest.NamespaceValue(ctx)
	if f.nodes != nil {
		list := &corev1.NodeList{}
		for _, n := range f.nodes {
			if sel.Matches(labels.Set(n.Labels)) {
				list.Items = append(list.Items, n)
			}
		}
		return list, nil
	}
	list := &corev1.PodList{}
	for _, p := range f.pods {
		if (ns == "" || p.Namespace == ns) && sel.Matches(labels.Set(p.Labels)) && fsel.Matches(fields.Set{"spec.nodeName": p.Spec.NodeName}) {
			list.Items = append(list.Items, p)
		}
	}
	return list, nil
}

func (f *fakeCore) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	for i := range f.nodes {
		if f.nodes[i].Name == name && ns == "" {
			return &f.nodes[i], nil
		}
	}
	for i := range f.pods {
		if f.pods[i].Name == name && f.pods[i].Namespace == ns {
			return &f.pods[i], nil
		}
	}
	return nil, errors.NewNotFound(corev1.Resource("things"), name)
}

// fakeSource has usage for the nodes and pods named in it.
type fakeSource struct {
	at    time.Time
	nodes map[string]string
	pods  map[string]string
}

func (f fakeSource) NodeUsage(node *corev1.Node, _ []*corev1.Pod) (corev1.ResourceList, TimeInfo, bool) {
	cpu, ok := f.nodes[node.Name]
	if !ok {
		return nil, TimeInfo{}, false
	}
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}, TimeInfo{Timestamp: f.at, Window: 15 * time.Second}, ok
}

func (f fakeSource) PodUsage(_ *corev1.Node, pod *corev1.Pod) ([]metricsv1beta1.ContainerMetrics, TimeInfo, bool) {
	cpu, ok := f.pods[pod.Namespace+"/"+pod.Name]
	if !ok {
		return nil, TimeInfo{}, false
	}
	return []metricsv1beta1.ContainerMetrics{{Name: "c", Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}, TimeInfo{Timestamp: f.at, Window: 15 * time.Second}, ok
}

func testStorage(t *testing.T) (*NodeMetricsREST, *PodMetricsREST, time.Time) {
	t.Helper()
	meta := func(ns, name string, l map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}
	}
	nodes := &fakeCore{nodes: []corev1.Node{
		{ObjectMeta: meta("", "n1", map[string]string{"zone": "a"})},
		{ObjectMeta: meta("", "n2", map[string]string{"zone": "b"})},
		{ObjectMeta: meta("", "silent", map[string]string{"zone": "a"})},
	}}
	pods := &fakeCore{pods: []corev1.Pod{
		{ObjectMeta: meta("ns", "web", map[string]string{"app": "web"}), Spec: corev1.PodSpec{NodeName: "n1"}},
		{ObjectMeta: meta("ns", "db", map[string]string{"app": "db"}), Spec: corev1.PodSpec{NodeName: "n2"}},
		{ObjectMeta: meta("other", "web", map[string]string{"app": "web"}), Spec: corev1.PodSpec{NodeName: "n2"}},
		{ObjectMeta: meta("ns", "new", map[string]string{"app": "web"}), Spec: corev1.PodSpec{NodeName: "n1"}},
		{ObjectMeta: meta("ns", "pending", map[string]string{"app": "web"})},
	}}
	at := time.Unix(1_700_000_000, 0)
	src := fakeSource{at: at, nodes: map[string]string{"n1": "1", "n2": "2"},
		pods: map[string]string{"ns/web": "100m", "ns/db": "200m", "other/web": "300m", "ns/pending": "1"}}
	m, err := Storage(map[string]rest.Storage{"nodes": nodes, "pods": pods}, src)
	if err != nil {
		t.Fatal(err)
	}
	return m["nodes"].(*NodeMetricsREST), m["pods"].(*PodMetricsREST), at
}

func names(list runtime.Object) []string {
	var out []string
	switch l := list.(type) {
	case *metricsv1beta1.NodeMetricsList:
		for _, i := range l.Items {
			out = append(out, i.Name)
		}
	case *metricsv1beta1.PodMetricsList:
		for _, i := range l.Items {
			out = append(out, i.Namespace+"/"+i.Name)
		}
	}
	return out
}

func eq(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Nodes and pods without usage are left out of lists and not found by
// get; label selectors pick from the nodes and pods, field selectors
// metadata.name/namespace from the metrics; the source's time is the
// object's.
func TestSelectorsAndOmissions(t *testing.T) {
	nodes, pods, at := testStorage(t)
	ctx := context.Background()
	list := func(r rest.Lister, ctx context.Context, label, field string) []string {
		t.Helper()
		o := &metainternalversion.ListOptions{}
		if label != "" {
			var err error
			if o.LabelSelector, err = labels.Parse(label); err != nil {
				t.Fatal(err)
			}
		}
		if field != "" {
			o.FieldSelector = fields.ParseSelectorOrDie(field)
		}
		obj, err := r.List(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return names(obj)
	}
	for _, tc := range []struct {
		name         string
		r            rest.Lister
		ns           string
		label, field string
		want         []string
	}{
		{"all nodes", nodes, "", "", "", []string{"n1", "n2"}},
		{"nodes by label", nodes, "", "zone=a", "", []string{"n1"}},
		{"nodes by name", nodes, "", "", "metadata.name=n2", []string{"n2"}},
		{"all pods", pods, "", "", "", []string{"ns/db", "ns/web", "other/web"}},
		{"pods of a namespace", pods, "ns", "", "", []string{"ns/db", "ns/web"}},
		{"pods by label", pods, "", "app=web", "", []string{"ns/web", "other/web"}},
		{"pods by name", pods, "", "", "metadata.name=web", []string{"ns/web", "other/web"}},
		{"pods by namespace field", pods, "", "", "metadata.namespace=other", []string{"other/web"}},
	} {
		c := genericapirequest.WithNamespace(ctx, tc.ns)
		if got := list(tc.r, c, tc.label, tc.field); !eq(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	obj, err := nodes.Get(ctx, "n1", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := obj.(*metricsv1beta1.NodeMetrics); !n.Timestamp.Time.Equal(at) || n.Window.Duration != 15*time.Second || n.Labels["zone"] != "a" {
		t.Errorf("node metrics %+v", n)
	}
	for _, name := range []string{"silent", "missing"} {
		if _, err := nodes.Get(ctx, name, &metav1.GetOptions{}); !errors.IsNotFound(err) || err.(*errors.StatusError).ErrStatus.Details.Group != Group {
			t.Errorf("node %s: %v", name, err)
		}
	}
	nsCtx := genericapirequest.WithNamespace(ctx, "ns")
	obj, err = pods.Get(nsCtx, "web", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := obj.(*metricsv1beta1.PodMetrics); p.Namespace != "ns" || p.Labels["app"] != "web" || !p.Timestamp.Time.Equal(at) || len(p.Containers) != 1 {
		t.Errorf("pod metrics %+v", p)
	}
	// No usage yet, not on a node, no such pod.
	for _, name := range []string{"new", "pending", "missing"} {
		if _, err := pods.Get(nsCtx, name, &metav1.GetOptions{}); !errors.IsNotFound(err) {
			t.Errorf("pod %s: %v", name, err)
		}
	}
}

// ByRuntime asks Simulated about simulated nodes, Real about the others.
func TestByRuntime(t *testing.T) {
	real := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	src := ByRuntime{Real: fakeSource{nodes: map[string]string{"n1": "1", "sim-0": "1"}}}
	if _, _, ok := src.NodeUsage(real, nil); !ok {
		t.Error("real node not asked to the real source")
	}
	usage, at, ok := src.NodeUsage(simNode(), nil)
	if cpu := usage[corev1.ResourceCPU]; !ok || !cpu.IsZero() || at.Window != Window {
		t.Errorf("simulated node: %v %v %v", usage, at, ok)
	}
}
