package apiserver_test

// CustomResourceDefinitions, served by the apiextensions-apiserver chained
// behind skiff's server (apiextensions.go). Each test defines its own group
// so that the tests run in parallel on the shared server.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
)

// crdFixture is one CRD of the tests: kind Widget, resource widgets, in its
// own group, version v1.
type crdFixture struct {
	group string
	gvr   schema.GroupVersionResource
	gvk   schema.GroupVersionKind
	crd   *apiextensionsv1.CustomResourceDefinition
}

func (f *crdFixture) name() string { return "widgets." + f.group }

// widgetSchema has a required field, an enum, bounds, defaults, an object
// that keeps unknown fields, and the status the scale subresource reads.
func widgetSchema() *apiextensionsv1.JSONSchemaProps {
	return &apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "A Widget is a test resource of skiff.",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"spec": {
				Type:        "object",
				Description: "WidgetSpec describes the widget wanted.",
				Required:    []string{"size"},
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"size": {Type: "string", Description: "Size of the widget.",
						Enum: []apiextensionsv1.JSON{{Raw: []byte(`"small"`)}, {Raw: []byte(`"medium"`)}, {Raw: []byte(`"large"`)}}},
					"replicas": {Type: "integer", Minimum: ptr.To(0.0), Maximum: ptr.To(10.0),
						Default: &apiextensionsv1.JSON{Raw: []byte(`1`)}},
					"color": {Type: "string", Default: &apiextensionsv1.JSON{Raw: []byte(`"blue"`)}},
					"extra": {Type: "object", XPreserveUnknownFields: ptr.To(true)},
				},
			},
			"status": {
				Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"replicas":      {Type: "integer"},
					"readyReplicas": {Type: "integer"},
					"selector":      {Type: "string"},
				},
			},
		},
	}
}

// newCRD creates the Widget CRD in group <short>.crd.skiff.test, waits until
// it is established and served, and deletes it when t ends.
func newCRD(t testing.TB, short string) *crdFixture {
	t.Helper()
	ctx := testCtx(t)
	group := short + ".crd.skiff.test"
	f := &crdFixture{
		group: group,
		gvr:   schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"},
		gvk:   schema.GroupVersionKind{Group: group, Version: "v1", Kind: "Widget"},
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: f.name()},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList", ShortNames: []string{"wdg"},
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: widgetSchema()},
				Subresources: &apiextensionsv1.CustomResourceSubresources{
					Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
					Scale: &apiextensionsv1.CustomResourceSubresourceScale{
						SpecReplicasPath:   ".spec.replicas",
						StatusReplicasPath: ".status.replicas",
						LabelSelectorPath:  ptr.To(".status.selector"),
					},
				},
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "Size", Type: "string", JSONPath: ".spec.size"},
					{Name: "Replicas", Type: "integer", JSONPath: ".spec.replicas"},
					{Name: "Ready", Type: "integer", JSONPath: ".status.readyReplicas"},
					{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
				},
			}},
		},
	}
	client := crdClient(t)
	created, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating CRD %s: %v", f.name(), err)
	}
	f.crd = created
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := client.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, f.name(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CRD %s: %v", f.name(), err)
		}
	})
	// Established, then served: a list answers (the handler and discovery
	// follow the CRD informer).
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, f.name(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				_, err := dyn.Resource(f.gvr).Namespace(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
				return err == nil, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established and served: %v", f.name(), err)
	}
	return f
}

var (
	crdClientOnce sync.Once
	crdClientSet  *apiextensionsclient.Clientset
	crdClientErr  error
)

func crdClient(t testing.TB) *apiextensionsclient.Clientset {
	t.Helper()
	crdClientOnce.Do(func() { crdClientSet, crdClientErr = apiextensionsclient.NewForConfig(cfg) })
	if crdClientErr != nil {
		t.Fatal(crdClientErr)
	}
	return crdClientSet
}

// widget is a Widget object; spec is its JSON spec.
func (f *crdFixture) widget(t testing.TB, ns, name, spec string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	doc := fmt.Sprintf(`{"apiVersion":%q,"kind":"Widget","metadata":{"name":%q,"namespace":%q},"spec":%s}`, f.gvk.GroupVersion().String(), name, ns, spec)
	if err := u.UnmarshalJSON([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *crdFixture) client(ns string) dynamic.ResourceInterface {
	return dyn.Resource(f.gvr).Namespace(ns)
}

// TestCRDStorage: the CRD is stored where and as upstream stores it
// (apiextensions.k8s.io/v1beta1 JSON), its custom resources under
// /registry/<group>/<plural>/<namespace>/<name> as JSON.
func TestCRDStorage(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "storage")
	ns := newNamespace(t)
	ctx := testCtx(t)
	if _, err := f.client(ns).Create(ctx, f.widget(t, ns, "w", `{"size":"small"}`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	key := "/registry/apiextensions.k8s.io/customresourcedefinitions/" + f.name()
	stored := etcdJSON(t, key)
	if stored["apiVersion"] != "apiextensions.k8s.io/v1beta1" || stored["kind"] != "CustomResourceDefinition" {
		t.Errorf("%s holds apiVersion %v kind %v, want apiextensions.k8s.io/v1beta1 CustomResourceDefinition", key, stored["apiVersion"], stored["kind"])
	}

	key = fmt.Sprintf("/registry/%s/widgets/%s/w", f.group, ns)
	stored = etcdJSON(t, key)
	if stored["apiVersion"] != f.gvk.GroupVersion().String() || stored["kind"] != "Widget" {
		t.Errorf("%s holds apiVersion %v kind %v", key, stored["apiVersion"], stored["kind"])
	}
}

// etcdJSON reads key from etcd and decodes it as a JSON object.
func etcdJSON(t *testing.T, key string) map[string]any {
	t.Helper()
	resp, err := etcdc.Get(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("etcd has %d values under %s, want 1", len(resp.Kvs), key)
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		t.Fatalf("%s is not JSON: %v\n%.200q", key, err, resp.Kvs[0].Value)
	}
	return m
}

// TestCRDSchema: validation (422 naming the field paths), defaulting,
// pruning of unknown fields outside x-kubernetes-preserve-unknown-fields,
// and strict field validation naming the unknown field.
func TestCRDSchema(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "schema")
	ns := newNamespace(t)
	ctx := testCtx(t)
	widgets := f.client(ns)

	_, err := widgets.Create(ctx, f.widget(t, ns, "bad", `{"size":"huge","replicas":20}`), metav1.CreateOptions{})
	s := wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	for _, want := range []string{`spec.replicas: Invalid value: 20`, `spec.size: Unsupported value: "huge"`} {
		if !strings.Contains(s.Message, want) {
			t.Errorf("message %q lacks %q", s.Message, want)
		}
	}
	var fields []string
	if s.Details != nil {
		for _, c := range s.Details.Causes {
			fields = append(fields, c.Field)
		}
	}
	if !slices.Contains(fields, "spec.replicas") || !slices.Contains(fields, "spec.size") {
		t.Errorf("causes name fields %q, want spec.replicas and spec.size", fields)
	}

	_, err = widgets.Create(ctx, f.widget(t, ns, "bad", `{"replicas":2}`), metav1.CreateOptions{})
	s = wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(s.Message, "spec.size: Required value") {
		t.Errorf("message %q lacks spec.size: Required value", s.Message)
	}

	// Defaults, pruning, and unknown fields kept under extra.
	w, err := widgets.Create(ctx, f.widget(t, ns, "ok", `{"size":"large","bogus":1,"extra":{"free":{"form":[1,"x"]}}}`), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []struct {
		path []string
		want any
	}{
		{[]string{"spec", "replicas"}, int64(1)},
		{[]string{"spec", "color"}, "blue"},
		{[]string{"spec", "size"}, "large"},
	} {
		got, found, err := unstructured.NestedFieldNoCopy(w.Object, check.path...)
		if err != nil || !found || got != check.want {
			t.Errorf("%s = %v (found %v, err %v), want %v", strings.Join(check.path, "."), got, found, err, check.want)
		}
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(w.Object, "spec", "bogus"); found {
		t.Errorf("spec.bogus was not pruned: %v", w.Object["spec"])
	}
	if got, _, _ := unstructured.NestedSlice(w.Object, "spec", "extra", "free", "form"); len(got) != 2 {
		t.Errorf("spec.extra.free.form = %v, want it kept (x-kubernetes-preserve-unknown-fields)", got)
	}
	// What is stored is what was returned.
	got, err := widgets.Get(ctx, "ok", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "bogus"); found {
		t.Errorf("spec.bogus stored: %v", got.Object["spec"])
	}
	if c, _, _ := unstructured.NestedString(got.Object, "spec", "color"); c != "blue" {
		t.Errorf("stored spec.color = %q, want the default blue", c)
	}

	// Strict field validation refuses the unknown field, naming it.
	_, err = widgets.Create(ctx, f.widget(t, ns, "strict", `{"size":"small","bogus":1}`), metav1.CreateOptions{FieldValidation: "Strict"})
	s = wantStatusErr(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	if !strings.Contains(s.Message, `unknown field "spec.bogus"`) {
		t.Errorf("strict create: message %q does not name spec.bogus", s.Message)
	}
	if _, err := widgets.Create(ctx, f.widget(t, ns, "strict", `{"size":"small"}`), metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
		t.Errorf("strict create of a valid widget: %v", err)
	}
}

// TestCRDStatusAndScale: /status changes only the status, the main resource
// only the rest; /scale reads and writes spec.replicas.
func TestCRDStatusAndScale(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "subresources")
	ns := newNamespace(t)
	ctx := testCtx(t)
	widgets := f.client(ns)
	w, err := widgets.Create(ctx, f.widget(t, ns, "w", `{"size":"small","replicas":2}`), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A status in the main resource's create is dropped.
	if _, found, _ := unstructured.NestedMap(w.Object, "status"); found {
		t.Errorf("status kept on create: %v", w.Object["status"])
	}
	w.Object["status"] = map[string]any{"replicas": int64(2), "readyReplicas": int64(1), "selector": "app=w"}
	_ = unstructured.SetNestedField(w.Object, "large", "spec", "size") // ignored by /status
	updated, err := widgets.UpdateStatus(ctx, w, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(updated.Object, "status", "readyReplicas"); r != 1 {
		t.Errorf("status.readyReplicas = %d after /status, want 1", r)
	}
	if size, _, _ := unstructured.NestedString(updated.Object, "spec", "size"); size != "small" {
		t.Errorf("/status changed spec.size to %q", size)
	}
	if updated.GetGeneration() != 1 {
		t.Errorf("generation %d after a status update, want 1", updated.GetGeneration())
	}

	// The main resource ignores status.
	updated.Object["status"] = map[string]any{"readyReplicas": int64(7)}
	_ = unstructured.SetNestedField(updated.Object, "medium", "spec", "size")
	updated, err = widgets.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(updated.Object, "status", "readyReplicas"); r != 1 {
		t.Errorf("status.readyReplicas = %d after a main update, want 1", r)
	}
	if updated.GetGeneration() != 2 {
		t.Errorf("generation %d after a spec update, want 2", updated.GetGeneration())
	}

	// Scale.
	scalePath := fmt.Sprintf("/apis/%s/v1/namespaces/%s/widgets/w/scale", f.group, ns)
	r := do(t, nil, http.MethodGet, scalePath, nil, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET scale = %d:\n%s", r.code, r.body)
	}
	var scale struct {
		APIVersion, Kind string
		Spec             struct{ Replicas int32 }
		Status           struct {
			Replicas int32
			Selector string
		}
	}
	if err := json.Unmarshal(r.body, &scale); err != nil {
		t.Fatal(err)
	}
	if scale.APIVersion != "autoscaling/v1" || scale.Kind != "Scale" || scale.Spec.Replicas != 2 || scale.Status.Replicas != 2 || scale.Status.Selector != "app=w" {
		t.Errorf("scale = %+v", scale)
	}
	r = do(t, nil, http.MethodPatch, scalePath, map[string]string{"Content-Type": "application/merge-patch+json"}, []byte(`{"spec":{"replicas":5}}`))
	if r.code != http.StatusOK {
		t.Fatalf("PATCH scale = %d:\n%s", r.code, r.body)
	}
	got, err := widgets.Get(ctx, "w", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); n != 5 {
		t.Errorf("spec.replicas = %d after scaling to 5", n)
	}
	// The schema applies to the scale too.
	r = do(t, nil, http.MethodPatch, scalePath, map[string]string{"Content-Type": "application/merge-patch+json"}, []byte(`{"spec":{"replicas":50}}`))
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "spec.replicas") {
		t.Errorf("scaling beyond the schema's maximum = %d, want 422 naming spec.replicas:\n%s", r.code, r.body)
	}
}

// TestCRDServerSideApply: applying the same configuration twice changes
// nothing; the field manager owns what it applied.
func TestCRDServerSideApply(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "apply")
	ns := newNamespace(t)
	ctx := testCtx(t)
	widgets := f.client(ns)
	cfgObj := f.widget(t, ns, "w", `{"size":"medium","extra":{"k":"v"}}`)

	first, err := widgets.Apply(ctx, "w", cfgObj, metav1.ApplyOptions{FieldManager: "skiff-test", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	second, err := widgets.Apply(ctx, "w", cfgObj, metav1.ApplyOptions{FieldManager: "skiff-test", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetResourceVersion() != second.GetResourceVersion() || second.GetGeneration() != 1 {
		t.Errorf("the second identical apply wrote: resourceVersion %s -> %s, generation %d",
			first.GetResourceVersion(), second.GetResourceVersion(), second.GetGeneration())
	}
	var owned string
	for _, m := range second.GetManagedFields() {
		if m.Manager == "skiff-test" && m.Operation == metav1.ManagedFieldsOperationApply && m.FieldsV1 != nil {
			owned = string(m.FieldsV1.Raw)
		}
	}
	if !strings.Contains(owned, `"f:size"`) || !strings.Contains(owned, `"f:extra"`) {
		t.Errorf("managed fields of skiff-test: %s", owned)
	}
	if c, _, _ := unstructured.NestedString(second.Object, "spec", "color"); c != "blue" {
		t.Errorf("apply: spec.color = %q, want the default", c)
	}

	// Another manager changing an owned field conflicts.
	other := f.widget(t, ns, "w", `{"size":"large"}`)
	_, err = widgets.Apply(ctx, "w", other, metav1.ApplyOptions{FieldManager: "someone-else"})
	wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonConflict)
}

// TestCRDTable: kubectl's table request shows the additionalPrinterColumns.
func TestCRDTable(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "table")
	ns := newNamespace(t)
	ctx := testCtx(t)
	w := f.widget(t, ns, "w", `{"size":"large","replicas":3}`)
	if _, err := f.client(ns).Create(ctx, w, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := do(t, nil, http.MethodGet, fmt.Sprintf("/apis/%s/v1/namespaces/%s/widgets", f.group, ns),
		map[string]string{"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}, nil)
	if r.code != http.StatusOK {
		t.Fatalf("table list = %d:\n%s", r.code, r.body)
	}
	var table metav1.Table
	if err := json.Unmarshal(r.body, &table); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "Name,Size,Replicas,Ready,Age" {
		t.Errorf("columns %q, want Name,Size,Replicas,Ready,Age", names)
	}
	if len(table.Rows) != 1 || len(table.Rows[0].Cells) != 5 || table.Rows[0].Cells[0] != "w" || table.Rows[0].Cells[1] != "large" || table.Rows[0].Cells[2] != float64(3) {
		t.Errorf("rows %+v", table.Rows)
	}
}

// TestCRDDiscovery: the CRD group appears in the unaggregated and the
// aggregated /apis, /apis/<group> and /apis/<group>/v1, and leaves them when
// the CRD is deleted.
func TestCRDDiscovery(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "discovery")

	for _, want := range []string{f.group, "apiextensions.k8s.io"} {
		waitFor(t, "group "+want+" in the unaggregated /apis", func() bool { return slices.Contains(legacyGroups(t), want) })
		waitFor(t, "group "+want+" in the aggregated /apis", func() bool { return aggregatedGroup(t, want) != nil })
	}
	g := aggregatedGroup(t, f.group)
	if len(g.Versions) != 1 || len(g.Versions[0].Resources) != 1 {
		t.Fatalf("aggregated discovery of %s: %+v", f.group, g)
	}
	res := g.Versions[0].Resources[0]
	var subs []string
	for _, s := range res.Subresources {
		subs = append(subs, s.Subresource)
	}
	if res.Resource != "widgets" || res.Scope != apidiscoveryv2.ScopeNamespace || res.ResponseKind.Kind != "Widget" ||
		!slices.Equal(res.ShortNames, []string{"wdg"}) || !slices.Equal(subs, []string{"status", "scale"}) {
		t.Errorf("aggregated discovery of widgets: %+v", res)
	}

	r := do(t, nil, http.MethodGet, "/apis/"+f.group, nil, nil)
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"preferredVersion":{"groupVersion":"`+f.group+`/v1"`) {
		t.Errorf("GET /apis/%s = %d:\n%s", f.group, r.code, r.body)
	}
	resources, err := cs.Discovery().ServerResourcesForGroupVersion(f.group + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range resources.APIResources {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"widgets", "widgets/status", "widgets/scale"}) {
		t.Errorf("resources of %s/v1: %q", f.group, names)
	}

	if err := crdClient(t).ApiextensionsV1().CustomResourceDefinitions().Delete(testCtx(t), f.name(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "group "+f.group+" gone from the unaggregated /apis", func() bool { return !slices.Contains(legacyGroups(t), f.group) })
	waitFor(t, "group "+f.group+" gone from the aggregated /apis", func() bool { return aggregatedGroup(t, f.group) == nil })
}

func legacyGroups(t *testing.T) []string {
	t.Helper()
	r := do(t, nil, http.MethodGet, "/apis", map[string]string{"Accept": "application/json"}, nil)
	var list metav1.APIGroupList
	if err := json.Unmarshal(r.body, &list); err != nil || list.Kind != "APIGroupList" {
		t.Fatalf("GET /apis = %d (%v):\n%.500s", r.code, err, r.body)
	}
	var names []string
	for _, g := range list.Groups {
		names = append(names, g.Name)
	}
	return names
}

func aggregatedGroup(t *testing.T, name string) *apidiscoveryv2.APIGroupDiscovery {
	t.Helper()
	r := do(t, nil, http.MethodGet, "/apis", map[string]string{"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}, nil)
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(r.body, &list); err != nil || list.Kind != "APIGroupDiscoveryList" {
		t.Fatalf("aggregated GET /apis = %d (%v):\n%.500s", r.code, err, r.body)
	}
	for i := range list.Items {
		if list.Items[i].Name == name {
			return &list.Items[i]
		}
	}
	return nil
}

// waitFor polls cond for up to 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCRDOpenAPI: the CRD's schema is published in /openapi/v3 (per group
// version) and /openapi/v2, next to the built-in types and
// apiextensions.k8s.io itself.
func TestCRDOpenAPI(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "openapi")
	gvPath := "apis/" + f.group + "/v1"

	waitFor(t, gvPath+" in /openapi/v3", func() bool {
		paths := openAPIV3Paths(t)
		return slices.Contains(paths, gvPath)
	})
	for _, want := range []string{"api/v1", "apis/apps/v1", "apis/apiextensions.k8s.io/v1"} {
		if !slices.Contains(openAPIV3Paths(t), want) {
			t.Errorf("/openapi/v3 lacks %s", want)
		}
	}
	r := do(t, nil, http.MethodGet, "/openapi/v3/"+gvPath, nil, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET /openapi/v3/%s = %d:\n%.500s", gvPath, r.code, r.body)
	}
	var v3 struct {
		Components struct {
			Schemas map[string]struct {
				Description string
				Properties  map[string]struct{ Description string }
				GVK         []map[string]string `json:"x-kubernetes-group-version-kind"`
			}
		}
	}
	if err := json.Unmarshal(r.body, &v3); err != nil {
		t.Fatal(err)
	}
	def := reverseDomain(f.group) + ".v1.Widget"
	widget, ok := v3.Components.Schemas[def]
	if !ok {
		t.Fatalf("/openapi/v3/%s has no schema %s", gvPath, def)
	}
	if widget.Description != "A Widget is a test resource of skiff." || widget.Properties["spec"].Description != "WidgetSpec describes the widget wanted." {
		t.Errorf("schema %s: %+v", def, widget)
	}
	if len(widget.GVK) != 1 || widget.GVK[0]["group"] != f.group || widget.GVK[0]["kind"] != "Widget" {
		t.Errorf("schema %s GVKs %v", def, widget.GVK)
	}

	r = do(t, nil, http.MethodGet, "/openapi/v3/apis/apiextensions.k8s.io/v1", nil, nil)
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"`) {
		t.Errorf("GET /openapi/v3/apis/apiextensions.k8s.io/v1 = %d:\n%.500s", r.code, r.body)
	}

	var v2 struct {
		Paths       map[string]any
		Definitions map[string]struct {
			GVK []map[string]string `json:"x-kubernetes-group-version-kind"`
		}
	}
	waitFor(t, def+" in /openapi/v2", func() bool {
		r := do(t, nil, http.MethodGet, "/openapi/v2", nil, nil)
		if err := json.Unmarshal(r.body, &v2); err != nil {
			t.Fatalf("/openapi/v2: %v", err)
		}
		_, ok := v2.Definitions[def]
		return ok
	})
	for _, p := range []string{"/api/v1/namespaces", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
		fmt.Sprintf("/apis/%s/v1/namespaces/{namespace}/widgets", f.group)} {
		if _, ok := v2.Paths[p]; !ok {
			t.Errorf("/openapi/v2 lacks path %s", p)
		}
	}
	crdDef := v2.Definitions["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"]
	if len(crdDef.GVK) != 1 || crdDef.GVK[0]["group"] != "apiextensions.k8s.io" {
		t.Errorf("/openapi/v2 CustomResourceDefinition GVKs %v", crdDef.GVK)
	}
}

func openAPIV3Paths(t *testing.T) []string {
	t.Helper()
	r := do(t, nil, http.MethodGet, "/openapi/v3", nil, nil)
	var index struct{ Paths map[string]any }
	if err := json.Unmarshal(r.body, &index); err != nil {
		t.Fatalf("GET /openapi/v3 = %d (%v)", r.code, err)
	}
	var paths []string
	for p := range index.Paths {
		paths = append(paths, p)
	}
	return paths
}

// reverseDomain turns a.b.c into c.b.a, as OpenAPI names CRD kinds.
func reverseDomain(group string) string {
	parts := strings.Split(group, ".")
	slices.Reverse(parts)
	return strings.Join(parts, ".")
}

// TestCRDWatchControllerRuntime: a controller-runtime client watches custom
// resources (unstructured) and sees ADDED, MODIFIED, DELETED; a
// controller-runtime cache (shared informer) sees them too.
func TestCRDWatchControllerRuntime(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "watch")
	ns := newNamespace(t)
	ctx := testCtx(t)

	c, err := crclient.NewWithWatch(cfg, crclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(f.gvk.GroupVersion().WithKind("WidgetList"))
	w, err := c.Watch(ctx, list, crclient.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// The informer of a controller-runtime cache, recording what it sees.
	informerCache, err := crcache.New(cfg, crcache.Options{DefaultNamespaces: map[string]crcache.Config{ns: {}}})
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(f.gvk)
	informer, err := informerCache.GetInformer(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	record := func(what string, o any) {
		if u, ok := o.(*unstructured.Unstructured); ok {
			mu.Lock()
			seen = append(seen, what+" "+u.GetName())
			mu.Unlock()
		}
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { record("add", o) },
		UpdateFunc: func(_, o any) { record("update", o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			record("delete", o)
		},
	}); err != nil {
		t.Fatal(err)
	}
	cacheCtx, stopCache := context.WithCancel(ctx)
	defer stopCache()
	go func() { _ = informerCache.Start(cacheCtx) }()
	if !informerCache.WaitForCacheSync(ctx) {
		t.Fatal("the controller-runtime cache did not sync")
	}

	u := f.widget(t, ns, "w", `{"size":"small"}`)
	if err := c.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	patch := crclient.RawPatch(types.MergePatchType, []byte(`{"spec":{"size":"large"}}`))
	if err := c.Patch(ctx, u, patch); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}

	for _, want := range []struct {
		typ  watch.EventType
		size string
	}{{watch.Added, "small"}, {watch.Modified, "large"}, {watch.Deleted, "large"}} {
		ev := nextEvent(t, w)
		got, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			t.Fatalf("%s event carries %T", ev.Type, ev.Object)
		}
		size, _, _ := unstructured.NestedString(got.Object, "spec", "size")
		if ev.Type != want.typ || got.GetName() != "w" || size != want.size || got.GroupVersionKind() != f.gvk {
			t.Errorf("event %s %s %s size=%s, want %s w size=%s", ev.Type, got.GroupVersionKind(), got.GetName(), size, want.typ, want.size)
		}
	}

	waitFor(t, "the cache to see add, update, delete", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(seen, []string{"add w", "update w", "delete w"})
	})
}

// TestCRDDeletionRemovesResources: deleting a CRD deletes its custom
// resources (the customresourcecleanup finalizer), then the CRD.
func TestCRDDeletionRemovesResources(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "deletion")
	ns := newNamespace(t)
	ctx := testCtx(t)
	for _, name := range []string{"a", "b"} {
		if _, err := f.client(ns).Create(ctx, f.widget(t, ns, name, `{"size":"small"}`), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	prefix := "/registry/" + f.group + "/widgets/"
	if n := etcdCount(t, prefix); n != 2 {
		t.Fatalf("%d keys under %s, want 2", n, prefix)
	}

	crds := crdClient(t).ApiextensionsV1().CustomResourceDefinitions()
	if err := crds.Delete(ctx, f.name(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the CRD to be gone", func() bool {
		_, err := crds.Get(ctx, f.name(), metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if n := etcdCount(t, prefix); n != 0 {
		t.Errorf("%d keys left under %s after the CRD's deletion", n, prefix)
	}
	if n := etcdCount(t, "/registry/apiextensions.k8s.io/customresourcedefinitions/"+f.name()); n != 0 {
		t.Errorf("the CRD is still in etcd")
	}
	_, err := f.client(ns).List(ctx, metav1.ListOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}

func etcdCount(t *testing.T, prefix string) int64 {
	t.Helper()
	resp, err := etcdc.Get(testCtx(t), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// TestCRDAdmissionAndAuthorization: custom resources go through skiff's
// admission (NamespaceLifecycle: no objects in missing or terminating
// namespaces) and authorization (anonymous requests are refused).
func TestCRDAdmissionAndAuthorization(t *testing.T) {
	t.Parallel()
	f := newCRD(t, "admission")
	ctx := testCtx(t)

	_, err := f.client("no-such-namespace").Create(ctx, f.widget(t, "no-such-namespace", "w", `{"size":"small"}`), metav1.CreateOptions{})
	s := wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	if !strings.Contains(s.Message, `namespaces "no-such-namespace" not found`) {
		t.Errorf("message %q", s.Message)
	}

	// No namespace controller runs here: a deleted namespace stays
	// Terminating (its kubernetes finalizer).
	ns := newNamespace(t)
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace %s after delete: %v %v", ns, got.Status.Phase, err)
	}
	waitFor(t, "NamespaceLifecycle to refuse creates in the terminating namespace", func() bool {
		_, err := f.client(ns).Create(ctx, f.widget(t, ns, "w", `{"size":"small"}`), metav1.CreateOptions{})
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "because it is being terminated")
	})

	anon := crdAnonymousClient(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var body []byte
		if method == http.MethodPost {
			body = []byte(fmt.Sprintf(`{"apiVersion":"%s/v1","kind":"Widget","metadata":{"name":"anon"},"spec":{"size":"small"}}`, f.group))
		}
		r := do(t, anon, method, fmt.Sprintf("/apis/%s/v1/namespaces/default/widgets", f.group), nil, body)
		if r.code != http.StatusForbidden {
			t.Errorf("anonymous %s widgets = %d, want 403:\n%s", method, r.code, r.body)
		}
	}
	r := do(t, anon, http.MethodGet, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", nil, nil)
	if r.code != http.StatusForbidden {
		t.Errorf("anonymous list CRDs = %d, want 403:\n%s", r.code, r.body)
	}
}

func crdAnonymousClient(t *testing.T) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(srvOpts.PKIDir(), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in ca.crt")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
