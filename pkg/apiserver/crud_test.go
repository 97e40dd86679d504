package apiserver_test

import (
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestConfigMapCRUD: create, get, list, update, patch and delete go through
// to etcd and back with the fields the client sent.
func TestConfigMapCRUD(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)

	created, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cm", Labels: map[string]string{"app": "x"}},
		Data:       map[string]string{"k": "v1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
		t.Errorf("create did not set uid/resourceVersion/creationTimestamp: %+v", created.ObjectMeta)
	}
	if created.Namespace != ns {
		t.Errorf("namespace %q, want %q", created.Namespace, ns)
	}

	got, err := cms.Get(ctx, "cm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != created.UID || got.Data["k"] != "v1" || got.Labels["app"] != "x" {
		t.Errorf("get returned %+v, want the created object", got)
	}

	got.Data["k"] = "v2"
	updated, err := cms.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Data["k"] != "v2" || updated.ResourceVersion == created.ResourceVersion {
		t.Errorf("update: data %v, resourceVersion %s (was %s)", updated.Data, updated.ResourceVersion, created.ResourceVersion)
	}

	patched, err := cms.Patch(ctx, "cm", types.MergePatchType, []byte(`{"data":{"other":"o"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patched.Data["k"] != "v2" || patched.Data["other"] != "o" {
		t.Errorf("merge patch: data %v", patched.Data)
	}

	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "cm" || list.ResourceVersion == "" {
		t.Errorf("list: %d items, rv %q: %+v", len(list.Items), list.ResourceVersion, list.Items)
	}

	if err := cms.Delete(ctx, "cm", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cms.Get(ctx, "cm", metav1.GetOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	err = cms.Delete(ctx, "cm", metav1.DeleteOptions{})
	wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}

// TestConfigMapErrors: the API errors of the generic registry reach the
// client with upstream's codes, reasons and causes.
func TestConfigMapErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)

	t.Run("invalid name", func(t *testing.T) {
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Not_A_Valid.Name"}}, metav1.CreateOptions{})
		s := wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
		if s.Details == nil || s.Details.Kind != "ConfigMap" || s.Details.Name != "Not_A_Valid.Name" {
			t.Errorf("details %+v, want kind ConfigMap and the name", s.Details)
		}
		if !hasCause(s, "metadata.name", metav1.CauseTypeFieldValueInvalid) {
			t.Errorf("no FieldValueInvalid cause on metadata.name: %+v", s.Details)
		}
	})

	t.Run("missing name", func(t *testing.T) {
		_, err := cms.Create(ctx, &corev1.ConfigMap{}, metav1.CreateOptions{})
		s := wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
		if !hasCause(s, "metadata.name", metav1.CauseTypeFieldValueRequired) {
			t.Errorf("no FieldValueRequired cause on metadata.name: %+v", s.Details)
		}
	})

	t.Run("invalid label", func(t *testing.T) {
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "badlabel", Labels: map[string]string{"a": "not valid!"}}}, metav1.CreateOptions{})
		s := wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
		if !hasCause(s, "metadata.labels", metav1.CauseTypeFieldValueInvalid) {
			t.Errorf("no FieldValueInvalid cause on metadata.labels: %+v", s.Details)
		}
	})

	t.Run("already exists", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dup"}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
		s := wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonAlreadyExists)
		if s.Details == nil || s.Details.Name != "dup" || s.Details.Kind != "configmaps" {
			t.Errorf("details %+v, want name dup kind configmaps", s.Details)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := cms.Get(ctx, "missing", metav1.GetOptions{})
		s := wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
		if s.Details == nil || s.Details.Name != "missing" || s.Details.Kind != "configmaps" {
			t.Errorf("details %+v, want name missing kind configmaps", s.Details)
		}
	})

	t.Run("stale resourceVersion", func(t *testing.T) {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "stale"}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stale := cm.DeepCopy()
		cm.Data["n"] = "1"
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		stale.Data["n"] = "2"
		_, err = cms.Update(ctx, stale, metav1.UpdateOptions{})
		wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonConflict)
		got, err := cms.Get(ctx, "stale", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Data["n"] != "1" {
			t.Errorf("the stale update was written: data %v", got.Data)
		}
	})

	t.Run("uid precondition", func(t *testing.T) {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "precond"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wrong := types.UID("00000000-0000-0000-0000-000000000000")
		err = cms.Delete(ctx, "precond", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrong}})
		wantStatusErr(t, err, http.StatusConflict, metav1.StatusReasonConflict)
		if err := cms.Delete(ctx, "precond", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}}); err != nil {
			t.Errorf("delete with the right uid: %v", err)
		}
	})

	// Malformed bodies are the client's fault: 400, never 500.
	for _, tc := range []struct {
		name, contentType, body string
	}{
		{"truncated JSON", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"`},
		{"not JSON", "application/json", `this is not json`},
		{"wrong field type", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":5}`},
		{"metadata not an object", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":"x"}`},
		{"truncated YAML", "application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n"},
		{"garbage protobuf", "application/vnd.kubernetes.protobuf", "k8s\x00\x0a\x0f garbage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps", map[string]string{"Content-Type": tc.contentType}, []byte(tc.body))
			if r.code != http.StatusBadRequest {
				t.Fatalf("POST %s = %d, want 400:\n%s", tc.name, r.code, r.body)
			}
			if s := r.status(t); s.Reason != metav1.StatusReasonBadRequest || s.Code != http.StatusBadRequest {
				t.Errorf("status %d %q (%s), want 400 BadRequest", s.Code, s.Reason, s.Message)
			}
		})
	}

	t.Run("kind mismatch", func(t *testing.T) {
		r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps", nil,
			[]byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrongkind"}}`))
		if r.code != http.StatusBadRequest {
			t.Fatalf("POST a Secret to configmaps = %d, want 400:\n%s", r.code, r.body)
		}
		if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "wrongkind", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a Secret was created: %v", err)
		}
	})

	t.Run("namespace mismatch", func(t *testing.T) {
		r := do(t, nil, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps", nil,
			[]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"nsmismatch","namespace":"default"}}`))
		if r.code != http.StatusBadRequest {
			t.Fatalf("POST with another namespace in the body = %d, want 400:\n%s", r.code, r.body)
		}
		if !strings.Contains(r.status(t).Message, "does not match the namespace") {
			t.Errorf("message %q", r.status(t).Message)
		}
	})
}

func hasCause(s *metav1.Status, field string, typ metav1.CauseType) bool {
	if s.Details == nil {
		return false
	}
	for _, c := range s.Details.Causes {
		if c.Field == field && c.Type == typ {
			return true
		}
	}
	return false
}

// TestUpdateOfMissingObject: PUT creates a missing object only for the kinds
// upstream allows it for (events, services, endpoints, ...); for the others
// (upstream's strategies return AllowCreateOnUpdate false for configmaps,
// pods and every workload) and for every /status it is 404 NotFound and
// nothing is created.
func TestUpdateOfMissingObject(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	deployment := func(name string) string {
		return `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"` + name + `"},"spec":{"replicas":1,
		  "selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	}
	workload := func(kind, name string) string {
		return `{"apiVersion":"apps/v1","kind":"` + kind + `","metadata":{"name":"` + name + `"},"spec":{"replicas":1,"serviceName":"s",
		  "selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	}
	for _, tc := range []struct {
		name, path, body string
		wantCreate       bool
	}{
		{"configmap", "/api/v1/namespaces/" + ns + "/configmaps/m1", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m1"}}`, false},
		{"event", "/api/v1/namespaces/" + ns + "/events/m2", `{"apiVersion":"v1","kind":"Event","metadata":{"name":"m2"},"involvedObject":{"kind":"Pod","name":"p","namespace":"` + ns + `"},"reason":"R","message":"m","type":"Normal"}`, true},
		{"deployment", "/apis/apps/v1/namespaces/" + ns + "/deployments/m3", deployment("m3"), false},
		{"deployment status", "/apis/apps/v1/namespaces/" + ns + "/deployments/m4/status", deployment("m4"), false},
		{"replicaset", "/apis/apps/v1/namespaces/" + ns + "/replicasets/m5", workload("ReplicaSet", "m5"), false},
		{"statefulset", "/apis/apps/v1/namespaces/" + ns + "/statefulsets/m6", workload("StatefulSet", "m6"), false},
		{"daemonset", "/apis/apps/v1/namespaces/" + ns + "/daemonsets/m8", strings.Replace(strings.Replace(workload("DaemonSet", "m8"), `"replicas":1,`, "", 1), `"serviceName":"s",`, "", 1), false},
		{"replicationcontroller", "/api/v1/namespaces/" + ns + "/replicationcontrollers/m9", `{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"m9"},"spec":{"replicas":1,
		  "selector":{"a":"b"},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`, false},
		{"pod status", "/api/v1/namespaces/" + ns + "/pods/m7/status", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"m7"},"spec":{"containers":[{"name":"c","image":"i"}]}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, nil, http.MethodPut, tc.path, nil, []byte(tc.body))
			if tc.wantCreate {
				if r.code != http.StatusCreated {
					t.Errorf("PUT %s = %d, want 201:\n%s", tc.path, r.code, r.body)
				}
				return
			}
			if r.code != http.StatusNotFound {
				t.Errorf("PUT %s = %d, want 404 NotFound:\n%.300s", tc.path, r.code, r.body)
			}
			get := do(t, nil, http.MethodGet, strings.TrimSuffix(tc.path, "/status"), nil, nil)
			if get.code != http.StatusNotFound {
				t.Errorf("after the PUT, GET = %d: the object was created", get.code)
			}
		})
	}
}
