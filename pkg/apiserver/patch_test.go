package apiserver_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// newDeployment is a valid Deployment of replicas pods labelled app=name.
func newDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "c", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent,
					TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				}}},
			},
		},
	}
}

// TestDeploymentPatches: JSON, merge and strategic merge patches change what
// they name and nothing else; a strategic patch merges containers by name
// where a merge patch replaces the list.
func TestDeploymentPatches(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	deps := cs.AppsV1().Deployments(ns)
	if _, err := deps.Create(ctx, newDeployment("p", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	d, err := deps.Patch(ctx, "p", types.JSONPatchType, []byte(`[
		{"op":"test","path":"/spec/replicas","value":1},
		{"op":"replace","path":"/spec/replicas","value":3},
		{"op":"add","path":"/metadata/annotations","value":{"via":"json"}}]`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("JSON patch: %v", err)
	}
	if *d.Spec.Replicas != 3 || d.Annotations["via"] != "json" || d.Labels["app"] != "p" {
		t.Errorf("after JSON patch: replicas %d annotations %v labels %v", *d.Spec.Replicas, d.Annotations, d.Labels)
	}

	// A failing JSON patch test op is a 422, and changes nothing.
	_, err = deps.Patch(ctx, "p", types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/replicas","value":7},{"op":"replace","path":"/spec/replicas","value":9}]`), metav1.PatchOptions{})
	if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) && !apierrors.IsConflict(err) {
		t.Errorf("failing test op: %v, want 422/400/409", err)
	}

	d, err = deps.Patch(ctx, "p", types.MergePatchType, []byte(`{"metadata":{"annotations":{"via":"merge","gone":null}},"spec":{"replicas":4}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("merge patch: %v", err)
	}
	if *d.Spec.Replicas != 4 || d.Annotations["via"] != "merge" {
		t.Errorf("after merge patch: replicas %d annotations %v", *d.Spec.Replicas, d.Annotations)
	}

	// Strategic merge: containers merge by name, so adding a sidecar keeps c.
	d, err = deps.Patch(ctx, "p", types.StrategicMergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[
		{"name":"sidecar","image":"busybox:2"}]}}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("strategic merge patch: %v", err)
	}
	if names := containerNames(d); !slices.Equal(names, []string{"sidecar", "c"}) && !slices.Equal(names, []string{"c", "sidecar"}) {
		t.Errorf("after strategic merge patch containers %v, want c and sidecar", names)
	}
	// ... and $patch: delete removes one by name.
	d, err = deps.Patch(ctx, "p", types.StrategicMergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[
		{"name":"sidecar","$patch":"delete"}]}}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("strategic delete patch: %v", err)
	}
	if names := containerNames(d); !slices.Equal(names, []string{"c"}) {
		t.Errorf("after $patch delete containers %v, want [c]", names)
	}
	// A merge patch replaces the whole list.
	d, err = deps.Patch(ctx, "p", types.MergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[
		{"name":"only","image":"busybox:3"}]}}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("merge patch of containers: %v", err)
	}
	if names := containerNames(d); !slices.Equal(names, []string{"only"}) {
		t.Errorf("after merge patch containers %v, want [only]", names)
	}

	// Malformed patches are 400s, and a patch of a missing object is 404.
	_, err = deps.Patch(ctx, "p", types.JSONPatchType, []byte(`{"not":"a list"}`), metav1.PatchOptions{})
	wantStatusErr(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	_, err = deps.Patch(ctx, "p", types.MergePatchType, []byte(`{"spec":`), metav1.PatchOptions{})
	wantStatusErr(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	_, err = deps.Patch(ctx, "missing", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	// An unsupported patch content type is 415.
	r := do(t, nil, http.MethodPatch, "/apis/apps/v1/namespaces/"+ns+"/deployments/p", map[string]string{"Content-Type": "application/xml"}, []byte(`<x/>`))
	if r.code != http.StatusUnsupportedMediaType {
		t.Errorf("PATCH application/xml = %d, want 415:\n%s", r.code, r.body)
	}
}

func containerNames(d *appsv1.Deployment) []string {
	var out []string
	for _, c := range d.Spec.Template.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}

const applyManifest = `{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "ssa", "labels": {"app": "ssa", "owner": "first"}},
  "spec": {
    "replicas": 2,
    "selector": {"matchLabels": {"app": "ssa"}},
    "template": {
      "metadata": {"labels": {"app": "ssa"}},
      "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
    }
  }
}`

func managers(d *appsv1.Deployment) []string {
	var out []string
	for _, m := range d.ManagedFields {
		out = append(out, m.Manager+"/"+string(m.Operation))
	}
	slices.Sort(out)
	return out
}

// TestServerSideApply: applying the same manifest twice writes nothing; a
// second manager changing a field the first owns gets 409 Conflict naming
// the field; with force it takes the field over and managedFields lists both
// managers.
func TestServerSideApply(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	deps := cs.AppsV1().Deployments(ns)
	apply := func(manager, body string, force bool) (*appsv1.Deployment, error) {
		return deps.Patch(ctx, "ssa", types.ApplyPatchType, []byte(body), metav1.PatchOptions{FieldManager: manager, Force: ptr.To(force)})
	}

	first, err := apply("first", applyManifest, false)
	if err != nil {
		t.Fatalf("first apply (create): %v", err)
	}
	if *first.Spec.Replicas != 2 || first.Generation != 1 {
		t.Errorf("created replicas %d generation %d", *first.Spec.Replicas, first.Generation)
	}
	if got := managers(first); !slices.Equal(got, []string{"first/Apply"}) {
		t.Errorf("managers after create %v, want [first/Apply]", got)
	}

	again, err := apply("first", applyManifest, false)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if again.ResourceVersion != first.ResourceVersion || again.Generation != first.Generation {
		t.Errorf("re-apply was not a no-op: resourceVersion %s -> %s, generation %d -> %d",
			first.ResourceVersion, again.ResourceVersion, first.Generation, again.Generation)
	}

	other := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"ssa"},"spec":{"replicas":5}}`
	_, err = apply("second", other, false)
	s := wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	if !strings.Contains(s.Message, ".spec.replicas") || !strings.Contains(s.Message, `"first"`) {
		t.Errorf("conflict message %q does not name .spec.replicas and manager first", s.Message)
	}
	if s.Details == nil || len(s.Details.Causes) == 0 || s.Details.Causes[0].Type != metav1.CauseTypeFieldManagerConflict {
		t.Errorf("conflict details %+v, want a FieldManagerConflict cause", s.Details)
	}
	cur, err := deps.Get(ctx, "ssa", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *cur.Spec.Replicas != 2 {
		t.Errorf("the conflicting apply changed replicas to %d", *cur.Spec.Replicas)
	}

	// The forced apply goes through the dynamic client, as kubectl's does.
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON([]byte(other)); err != nil {
		t.Fatal(err)
	}
	applied, err := dyn.Resource(appsv1.SchemeGroupVersion.WithResource("deployments")).Namespace(ns).
		Apply(ctx, "ssa", &u, metav1.ApplyOptions{FieldManager: "second", Force: true})
	if err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	forced := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, forced); err != nil {
		t.Fatal(err)
	}
	if *forced.Spec.Replicas != 5 || forced.Generation != 2 {
		t.Errorf("after forced apply replicas %d generation %d, want 5 and 2", *forced.Spec.Replicas, forced.Generation)
	}
	if got := managers(forced); !slices.Equal(got, []string{"first/Apply", "second/Apply"}) {
		t.Errorf("managers after forced apply %v, want first and second", got)
	}
	for _, m := range forced.ManagedFields {
		owns := strings.Contains(string(m.FieldsV1.Raw), `"f:replicas"`)
		if (m.Manager == "second") != owns {
			t.Errorf("manager %s owns f:replicas = %v: %s", m.Manager, owns, m.FieldsV1.Raw)
		}
	}

	// A non-apply update records an Update manager.
	upd, err := deps.Patch(ctx, "ssa", types.MergePatchType, []byte(`{"metadata":{"labels":{"extra":"x"}}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatal(err)
	}
	if got := managers(upd); !slices.Contains(got, "kubectl-edit/Update") {
		t.Errorf("managers after a merge patch %v, want kubectl-edit/Update", got)
	}

	// Apply without a field manager is refused (422 on PatchOptions, as upstream).
	_, err = deps.Patch(ctx, "ssa", types.ApplyPatchType, []byte(applyManifest), metav1.PatchOptions{})
	s = wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !hasCause(s, "fieldManager", metav1.CauseTypeFieldValueRequired) {
		t.Errorf("no Required cause on fieldManager: %+v", s.Details)
	}
}

// TestDryRun: dryRun=All runs create, update and delete fully but persists
// nothing.
func TestDryRun(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	deps := cs.AppsV1().Deployments(ns)
	all := []string{metav1.DryRunAll}

	d, err := deps.Create(ctx, newDeployment("dry", 1), metav1.CreateOptions{DryRun: all})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "dry" || d.UID == "" || d.Generation != 1 {
		t.Errorf("dry-run create returned %+v", d.ObjectMeta)
	}
	_, err = deps.Get(ctx, "dry", metav1.GetOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)

	// Validation still runs.
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "BAD"}}, metav1.CreateOptions{DryRun: all})
	wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)

	real, err := deps.Create(ctx, newDeployment("real", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = deps.Patch(ctx, "real", types.MergePatchType, []byte(`{"spec":{"replicas":9}}`), metav1.PatchOptions{DryRun: all})
	if err != nil {
		t.Fatal(err)
	}
	if err := deps.Delete(ctx, "real", metav1.DeleteOptions{DryRun: all}); err != nil {
		t.Fatal(err)
	}
	got, err := deps.Get(ctx, "real", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("after dry-run delete: %v", err)
	}
	if *got.Spec.Replicas != 1 || got.ResourceVersion != real.ResourceVersion {
		t.Errorf("dry-run patch persisted: replicas %d resourceVersion %s -> %s", *got.Spec.Replicas, real.ResourceVersion, got.ResourceVersion)
	}

	// An unknown dryRun value is refused.
	r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps?dryRun=Some", nil, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`))
	if r.code != http.StatusBadRequest && r.code != http.StatusUnprocessableEntity {
		t.Errorf("dryRun=Some = %d, want 400 or 422:\n%s", r.code, r.body)
	}
}

// TestFieldValidation: unknown and duplicate fields are rejected under
// Strict (400 on create, 422 on patch, as upstream), reported as warnings
// under Warn and dropped under Ignore.
func TestFieldValidation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	const body = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s"},
	  "spec":{"bogusField":1,"replicas":1,"selector":{"matchLabels":{"app":"fv"}},
	    "template":{"metadata":{"labels":{"app":"fv"}},"spec":{"containers":[{"name":"c","image":"busybox:1"}]}}}}`
	path := "/apis/apps/v1/namespaces/" + ns + "/deployments"

	for _, tc := range []struct {
		mode      string
		wantCode  int
		wantWarn  bool
		persisted bool
	}{
		{"Strict", http.StatusBadRequest, false, false},
		{"Warn", http.StatusCreated, true, true},
		{"Ignore", http.StatusCreated, false, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			name := "fv-" + strings.ToLower(tc.mode)
			r := do(t, nil, http.MethodPost, path+"?fieldValidation="+tc.mode, nil, []byte(strings.Replace(body, "%s", name, 1)))
			if r.code != tc.wantCode {
				t.Fatalf("POST = %d, want %d:\n%s", r.code, tc.wantCode, r.body)
			}
			if tc.wantCode == http.StatusBadRequest {
				s := r.status(t)
				if s.Reason != metav1.StatusReasonBadRequest || !strings.Contains(s.Message, `unknown field "spec.bogusField"`) {
					t.Errorf("status %s %q, want BadRequest naming spec.bogusField", s.Reason, s.Message)
				}
			}
			warn := strings.Join(r.header.Values("Warning"), "\n")
			if got := strings.Contains(warn, `unknown field \"spec.bogusField\"`) || strings.Contains(warn, `unknown field "spec.bogusField"`); got != tc.wantWarn {
				t.Errorf("Warning header %q, want a spec.bogusField warning: %v", warn, tc.wantWarn)
			}
			_, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if (err == nil) != tc.persisted {
				t.Errorf("persisted = %v (get: %v), want %v", err == nil, err, tc.persisted)
			}
		})
	}

	t.Run("Strict duplicate field", func(t *testing.T) {
		dup := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"b":"2"}}`
		r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps?fieldValidation=Strict", nil, []byte(dup))
		if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), `duplicate field \"data\"`) {
			t.Errorf("duplicate field = %d, want 400 naming data:\n%s", r.code, r.body)
		}
	})

	t.Run("Strict patch", func(t *testing.T) {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, newDeployment("fvp", 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := cs.AppsV1().Deployments(ns).Patch(ctx, "fvp", types.StrategicMergePatchType, []byte(`{"spec":{"replicaz":3}}`),
			metav1.PatchOptions{FieldValidation: "Strict"})
		// Patches report strict decoding errors as 422 on the field "patch"
		// (k8s.io/apiserver's patch handler, as upstream).
		s := wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
		if !strings.Contains(s.Message, `unknown field "spec.replicaz"`) {
			t.Errorf("message %q does not name spec.replicaz", s.Message)
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "fvp", metav1.GetOptions{})
		if err != nil || d.Generation != 1 {
			t.Errorf("the refused patch changed the deployment: %v %v", d, err)
		}
	})

	t.Run("invalid mode", func(t *testing.T) {
		r := do(t, nil, http.MethodPost, path+"?fieldValidation=Bogus", nil, []byte(strings.Replace(body, "%s", "fv-bogus", 1)))
		if r.code != http.StatusUnprocessableEntity {
			t.Fatalf("fieldValidation=Bogus = %d, want 422:\n%s", r.code, r.body)
		}
		if s := r.status(t); !hasCause(&s, "fieldValidation", metav1.CauseTypeFieldValueNotSupported) {
			t.Errorf("no NotSupported cause on fieldValidation: %s", r.body)
		}
	})
}
