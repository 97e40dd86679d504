package apiserver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

const protobufType = "application/vnd.kubernetes.protobuf"

// protoMagic starts every Kubernetes protobuf envelope.
var protoMagic = []byte("k8s\x00")

func newPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// TestContentTypes: a pod comes back as protobuf, YAML and JSON, each
// decoding to the same object; a protobuf-speaking client-go works end to
// end.
func TestContentTypes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	created, err := cs.CoreV1().Pods(ns).Create(ctx, newPod("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/namespaces/" + ns + "/pods/web"

	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	codecs := serializer.NewCodecFactory(scheme)

	t.Run("protobuf", func(t *testing.T) {
		r := do(t, nil, http.MethodGet, path, map[string]string{"Accept": protobufType}, nil)
		if r.code != http.StatusOK {
			t.Fatalf("GET as protobuf = %d:\n%s", r.code, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != protobufType {
			t.Errorf("Content-Type %q, want %s", ct, protobufType)
		}
		if !bytes.HasPrefix(r.body, protoMagic) {
			t.Fatalf("body does not start with the protobuf magic: %q", r.body[:min(len(r.body), 16)])
		}
		obj, gvk, err := codecs.UniversalDeserializer().Decode(r.body, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok || *gvk != corev1.SchemeGroupVersion.WithKind("Pod") {
			t.Fatalf("decoded %T %v", obj, gvk)
		}
		if pod.UID != created.UID || pod.Spec.Containers[0].Image != "busybox" {
			t.Errorf("protobuf pod %+v differs from the created one", pod)
		}
	})

	t.Run("yaml", func(t *testing.T) {
		r := do(t, nil, http.MethodGet, path, map[string]string{"Accept": "application/yaml"}, nil)
		if r.code != http.StatusOK {
			t.Fatalf("GET as YAML = %d:\n%s", r.code, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
			t.Errorf("Content-Type %q, want application/yaml", ct)
		}
		if !bytes.Contains(r.body, []byte("\nkind: Pod\n")) || !bytes.HasPrefix(r.body, []byte("apiVersion: v1\n")) {
			t.Errorf("not a YAML pod:\n%s", r.body)
		}
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(r.body, &pod); err != nil {
			t.Fatal(err)
		}
		if pod.UID != created.UID || pod.Name != "web" {
			t.Errorf("YAML pod %+v differs from the created one", pod.ObjectMeta)
		}
	})

	t.Run("yaml create", func(t *testing.T) {
		body := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
		r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps", map[string]string{"Content-Type": "application/yaml"}, []byte(body))
		if r.code != http.StatusCreated {
			t.Fatalf("POST YAML = %d:\n%s", r.code, r.body)
		}
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "from-yaml", metav1.GetOptions{})
		if err != nil || cm.Data["k"] != "v" {
			t.Errorf("YAML-created ConfigMap: %v %v", cm, err)
		}
	})

	t.Run("unsupported accept", func(t *testing.T) {
		r := do(t, nil, http.MethodGet, path, map[string]string{"Accept": "text/csv"}, nil)
		if r.code != http.StatusNotAcceptable {
			t.Fatalf("GET as text/csv = %d, want 406:\n%s", r.code, r.body)
		}
	})

	t.Run("unsupported content type", func(t *testing.T) {
		r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps", map[string]string{"Content-Type": "text/csv"}, []byte("a,b"))
		if r.code != http.StatusUnsupportedMediaType {
			t.Fatalf("POST text/csv = %d, want 415:\n%s", r.code, r.body)
		}
	})

	t.Run("protobuf client", func(t *testing.T) {
		pcfg := *cfg
		pcfg.ContentType = protobufType
		pcfg.AcceptContentTypes = protobufType
		pcs := mustClientset(t, &pcfg)
		cm, err := pcs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "proto"}, BinaryData: map[string][]byte{"b": {0, 1, 2, 255}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "proto", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.UID != cm.UID || !bytes.Equal(got.BinaryData["b"], []byte{0, 1, 2, 255}) {
			t.Errorf("protobuf-created ConfigMap read back as JSON: %+v", got)
		}
		pods, err := pcs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 1 || pods.Items[0].Name != "web" {
			t.Errorf("protobuf list: %+v %v", pods, err)
		}
	})
}

// TestTable: pods print with kubectl's columns; includeObject=Metadata
// embeds PartialObjectMetadata in each row.
func TestTable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	pod := newPod("tbl")
	pod.Spec.NodeName = "node-a"
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const asTable = "application/json;as=Table;v=v1;g=meta.k8s.io"
	r := do(t, nil, http.MethodGet, "/api/v1/namespaces/"+ns+"/pods", map[string]string{"Accept": asTable}, nil)
	if r.code != http.StatusOK {
		t.Fatalf("list pods as Table = %d:\n%s", r.code, r.body)
	}
	var table metav1.Table
	if err := json.Unmarshal(r.body, &table); err != nil {
		t.Fatal(err)
	}
	if table.Kind != "Table" || table.APIVersion != "meta.k8s.io/v1" {
		t.Errorf("kind %s apiVersion %s, want meta.k8s.io/v1 Table", table.Kind, table.APIVersion)
	}
	var cols []string
	var priorities []int32
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
		priorities = append(priorities, c.Priority)
	}
	wantCols := []string{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"}
	wantPrio := []int32{0, 0, 0, 0, 0, 1, 1, 1, 1}
	if !slices.Equal(cols, wantCols) || !slices.Equal(priorities, wantPrio) {
		t.Errorf("columns %v priorities %v, want %v %v", cols, priorities, wantCols, wantPrio)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(table.Rows))
	}
	cells := table.Rows[0].Cells
	if len(cells) != len(wantCols) {
		t.Fatalf("row has %d cells, want %d: %v", len(cells), len(wantCols), cells)
	}
	if cells[0] != "tbl" || cells[1] != "0/1" || cells[2] != "Pending" || cells[6] != "node-a" {
		t.Errorf("row cells %v, want tbl 0/1 Pending ... node-a", cells)
	}
	// Rows embed the object as PartialObjectMetadata by default.
	var meta metav1.PartialObjectMetadata
	if err := json.Unmarshal(table.Rows[0].Object.Raw, &meta); err != nil {
		t.Fatalf("row object %s: %v", table.Rows[0].Object.Raw, err)
	}
	if meta.Kind != "PartialObjectMetadata" || meta.Name != "tbl" {
		t.Errorf("row object %s", table.Rows[0].Object.Raw)
	}

	// A single object as Table, and includeObject=None.
	r = do(t, nil, http.MethodGet, "/api/v1/namespaces/"+ns+"/pods/tbl?includeObject=None", map[string]string{"Accept": asTable}, nil)
	if r.code != http.StatusOK {
		t.Fatalf("get pod as Table = %d:\n%s", r.code, r.body)
	}
	table = metav1.Table{}
	if err := json.Unmarshal(r.body, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) != 1 || table.Rows[0].Cells[0] != "tbl" || table.Rows[0].Object.Raw != nil {
		t.Errorf("single-object table %+v", table.Rows)
	}

	// Resources without a printer get the default Name/Created At columns.
	r = do(t, nil, http.MethodGet, "/api/v1/namespaces/"+ns+"/configmaps", map[string]string{"Accept": asTable}, nil)
	if r.code != http.StatusOK {
		t.Fatalf("list configmaps as Table = %d:\n%s", r.code, r.body)
	}
	table = metav1.Table{}
	if err := json.Unmarshal(r.body, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.ColumnDefinitions) < 2 || table.ColumnDefinitions[0].Name != "Name" {
		t.Errorf("configmap columns %+v", table.ColumnDefinitions)
	}
}

// TestPartialObjectMetadata: the metadata client lists and gets objects as
// PartialObjectMetadata(List), without their spec.
func TestPartialObjectMetadata(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	for _, name := range []string{"m1", "m2"} {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, newPod(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pods := md.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace(ns)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=m2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "m2" || list.Items[0].Labels["app"] != "m2" || list.Items[0].UID == "" {
		t.Errorf("metadata list %+v", list.Items)
	}
	one, err := pods.Get(ctx, "m1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if one.Name != "m1" || one.Namespace != ns || one.ResourceVersion == "" {
		t.Errorf("metadata get %+v", one.ObjectMeta)
	}

	// On the wire: kind PartialObjectMetadataList and no spec.
	r := do(t, nil, http.MethodGet, "/api/v1/namespaces/"+ns+"/pods",
		map[string]string{"Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"}, nil)
	if r.code != http.StatusOK {
		t.Fatalf("= %d:\n%s", r.code, r.body)
	}
	var raw struct {
		Kind, APIVersion string
		Items            []map[string]any
	}
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Kind != "PartialObjectMetadataList" || raw.APIVersion != "meta.k8s.io/v1" || len(raw.Items) != 2 {
		t.Errorf("kind %s apiVersion %s items %d", raw.Kind, raw.APIVersion, len(raw.Items))
	}
	for _, item := range raw.Items {
		if _, ok := item["spec"]; ok {
			t.Errorf("item has a spec: %v", item)
		}
	}
	// Watching metadata works too.
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "m1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod's deletion may first show as MODIFIED with a deletionTimestamp.
	for {
		ev := nextEvent(t, w)
		m, ok := ev.Object.(*metav1.PartialObjectMetadata)
		if !ok || m.Name != "m1" {
			t.Fatalf("metadata watch event %s %T %+v", ev.Type, ev.Object, ev.Object)
		}
		if ev.Type == "MODIFIED" && m.DeletionTimestamp != nil {
			continue
		}
		if ev.Type != "DELETED" {
			t.Errorf("metadata watch event %s, want DELETED", ev.Type)
		}
		break
	}
}

// TestDiscovery: the served groups and resources are listed with their
// verbs, short names and subresources.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		gv       schema.GroupVersion
		resource string
		verbs    []string
		short    []string
	}{
		{corev1.SchemeGroupVersion, "pods", []string{"create", "delete", "get", "list", "patch", "update", "watch"}, []string{"po"}},
		{corev1.SchemeGroupVersion, "pods/binding", []string{"create"}, nil},
		{corev1.SchemeGroupVersion, "pods/eviction", []string{"create"}, nil},
		{corev1.SchemeGroupVersion, "pods/status", []string{"get", "patch", "update"}, nil},
		{corev1.SchemeGroupVersion, "configmaps", []string{"create", "delete", "get", "list", "patch", "update", "watch"}, []string{"cm"}},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, "deployments", []string{"create", "delete", "get", "list", "patch", "update", "watch"}, []string{"deploy"}},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, "deployments/scale", []string{"get", "patch", "update"}, nil},
		{schema.GroupVersion{Group: "events.k8s.io", Version: "v1"}, "events", []string{"create", "delete", "get", "list", "patch", "update", "watch"}, []string{"ev"}},
	} {
		t.Run(tc.gv.String()+"/"+tc.resource, func(t *testing.T) {
			list, err := cs.Discovery().ServerResourcesForGroupVersion(tc.gv.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range list.APIResources {
				if r.Name != tc.resource {
					continue
				}
				verbs := append([]string(nil), r.Verbs...)
				slices.Sort(verbs)
				// deletecollection is optional here; compare the rest.
				verbs = slices.DeleteFunc(verbs, func(v string) bool { return v == "deletecollection" })
				if !slices.Equal(verbs, tc.verbs) {
					t.Errorf("verbs %v, want %v", verbs, tc.verbs)
				}
				if tc.short != nil && !slices.Equal(r.ShortNames, tc.short) {
					t.Errorf("short names %v, want %v", r.ShortNames, tc.short)
				}
				return
			}
			var names []string
			for _, r := range list.APIResources {
				names = append(names, r.Name)
			}
			t.Errorf("%s not among %s", tc.resource, strings.Join(names, " "))
		})
	}
}
