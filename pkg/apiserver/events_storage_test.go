package apiserver_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// TestEventsBothAPIs: events.k8s.io/v1 and core/v1 Events are one object
// under two names: note is message, regarding is involvedObject, both ways.
func TestEventsBothAPIs(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	now := metav1.NewMicroTime(time.Now().Truncate(time.Microsecond))

	t.Run("events.k8s.io to core", func(t *testing.T) {
		created, err := cs.EventsV1().Events(ns).Create(ctx, &eventsv1.Event{
			ObjectMeta:          metav1.ObjectMeta{Name: "new-api"},
			EventTime:           now,
			ReportingController: "skiff.dev/test", ReportingInstance: "test-1",
			Action: "Testing", Reason: "Tested", Type: corev1.EventTypeWarning,
			Note:      "written as events.k8s.io",
			Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p", UID: "uid-1"},
			Related:   &corev1.ObjectReference{Kind: "Node", Name: "n1"},
			Series:    &eventsv1.EventSeries{Count: 3, LastObservedTime: now},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		core, err := cs.CoreV1().Events(ns).Get(ctx, "new-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if core.UID != created.UID || core.ResourceVersion != created.ResourceVersion {
			t.Errorf("core view uid/rv %s/%s, events.k8s.io %s/%s", core.UID, core.ResourceVersion, created.UID, created.ResourceVersion)
		}
		if core.Message != "written as events.k8s.io" {
			t.Errorf("message %q, want the note", core.Message)
		}
		if core.InvolvedObject.Name != "p" || core.InvolvedObject.Kind != "Pod" || core.InvolvedObject.UID != "uid-1" {
			t.Errorf("involvedObject %+v, want the regarding Pod p", core.InvolvedObject)
		}
		if core.ReportingController != "skiff.dev/test" || core.ReportingInstance != "test-1" || core.Action != "Testing" ||
			core.Reason != "Tested" || core.Type != corev1.EventTypeWarning {
			t.Errorf("core event fields %+v", core)
		}
		if core.Related == nil || core.Related.Name != "n1" || core.Series == nil || core.Series.Count != 3 || !core.EventTime.Equal(&now) {
			t.Errorf("related %+v series %+v eventTime %v", core.Related, core.Series, core.EventTime)
		}
	})

	t.Run("core to events.k8s.io", func(t *testing.T) {
		first := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
		created, err := cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "old-api"},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "d", APIVersion: "apps/v1"},
			Reason:         "ScalingReplicaSet", Message: "written as core/v1", Type: corev1.EventTypeNormal,
			Source:         corev1.EventSource{Component: "deployment-controller", Host: "h"},
			FirstTimestamp: first, LastTimestamp: first, Count: 2,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := cs.EventsV1().Events(ns).Get(ctx, "old-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ev.UID != created.UID {
			t.Errorf("uid %s, want %s", ev.UID, created.UID)
		}
		if ev.Note != "written as core/v1" {
			t.Errorf("note %q, want the message", ev.Note)
		}
		if ev.Regarding.Name != "d" || ev.Regarding.Kind != "Deployment" || ev.Regarding.APIVersion != "apps/v1" {
			t.Errorf("regarding %+v, want the involved Deployment d", ev.Regarding)
		}
		if ev.DeprecatedSource.Component != "deployment-controller" || ev.DeprecatedCount != 2 || !ev.DeprecatedFirstTimestamp.Equal(&first) {
			t.Errorf("deprecated fields source %+v count %d first %v", ev.DeprecatedSource, ev.DeprecatedCount, ev.DeprecatedFirstTimestamp)
		}
		// On the wire the new API says note/regarding, not message/involvedObject.
		r := do(t, nil, http.MethodGet, "/apis/events.k8s.io/v1/namespaces/"+ns+"/events/old-api", nil, nil)
		for _, want := range []string{`"kind":"Event","apiVersion":"events.k8s.io/v1"`, `"note":"written as core/v1"`, `"regarding":{`} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("events.k8s.io JSON lacks %s:\n%s", want, r.body)
			}
		}
		if bytes.Contains(r.body, []byte(`"message"`)) || bytes.Contains(r.body, []byte(`"involvedObject"`)) {
			t.Errorf("events.k8s.io JSON has core field names:\n%s", r.body)
		}
	})

	t.Run("update through the other API", func(t *testing.T) {
		// core/v1 may change anything; events.k8s.io shows it.
		core, err := cs.CoreV1().Events(ns).Get(ctx, "old-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		core.Message = "changed via core"
		if _, err := cs.CoreV1().Events(ns).Update(ctx, core, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ev, err := cs.EventsV1().Events(ns).Get(ctx, "old-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Note != "changed via core" || ev.DeprecatedSource.Component != "deployment-controller" {
			t.Errorf("events.k8s.io view after a core update: note %q source %+v", ev.Note, ev.DeprecatedSource)
		}

		// events.k8s.io/v1 may only advance the series; core/v1 shows it.
		ev, err = cs.EventsV1().Events(ns).Get(ctx, "new-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		later := metav1.NewMicroTime(now.Add(time.Second))
		ev.Series = &eventsv1.EventSeries{Count: 4, LastObservedTime: later}
		if _, err := cs.EventsV1().Events(ns).Update(ctx, ev, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		core, err = cs.CoreV1().Events(ns).Get(ctx, "new-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if core.Series == nil || core.Series.Count != 4 || !core.Series.LastObservedTime.Equal(&later) {
			t.Errorf("core view of the series %+v, want count 4", core.Series)
		}
		// ... and the note is immutable there, as upstream.
		ev, err = cs.EventsV1().Events(ns).Get(ctx, "new-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ev.Note = "rewritten"
		_, err = cs.EventsV1().Events(ns).Update(ctx, ev, metav1.UpdateOptions{})
		wantStatusErr(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	})

	t.Run("lists agree", func(t *testing.T) {
		coreList, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		newList, err := cs.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(coreList.Items) != 2 || len(newList.Items) != 2 {
			t.Errorf("core lists %d events, events.k8s.io %d; want 2 and 2", len(coreList.Items), len(newList.Items))
		}
		if err := cs.EventsV1().Events(ns).Delete(ctx, "old-api", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = cs.CoreV1().Events(ns).Get(ctx, "old-api", metav1.GetOptions{})
		wantStatusErr(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	})
}

// TestStorageInEtcd: objects are stored as protobuf under upstream's keys,
// so etcdctl and kube-apiserver read them; both event APIs share the key.
func TestStorageInEtcd(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	cm, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "stored"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, newDeployment("stored", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.EventsV1().Events(ns).Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "stored"},
		EventTime: metav1.NowMicro(), ReportingController: "c", ReportingInstance: "i", Action: "a", Reason: "r", Type: "Normal",
		Regarding: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	decoder := protobuf.NewSerializer(apis.Scheme, apis.Scheme)
	for _, tc := range []struct {
		key  string
		kind string // apiVersion/kind of the stored object
	}{
		{"/registry/configmaps/" + ns + "/stored", "v1/ConfigMap"},
		{"/registry/deployments/" + ns + "/stored", "apps/v1/Deployment"},
		{"/registry/events/" + ns + "/stored", "v1/Event"},
		{"/registry/namespaces/" + ns, "v1/Namespace"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			resp, err := etcdc.Get(ctx, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) != 1 {
				t.Fatalf("%d keys at %s", len(resp.Kvs), tc.key)
			}
			value := resp.Kvs[0].Value
			if !bytes.HasPrefix(value, protoMagic) {
				t.Fatalf("value does not start with k8s\\x00: %q", value[:min(16, len(value))])
			}
			var unknown runtime.Unknown
			obj, gvk, err := decoder.Decode(value, nil, &unknown)
			if err != nil {
				t.Fatal(err)
			}
			if got := gvk.GroupVersion().String() + "/" + gvk.Kind; got != tc.kind {
				t.Errorf("stored as %s, want %s (%T)", got, tc.kind, obj)
			}
		})
	}

	// The stored bytes decode to the ConfigMap and its revision is the
	// object's resourceVersion.
	resp, err := etcdc.Get(ctx, "/registry/configmaps/"+ns+"/stored")
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := protobuf.NewSerializer(apis.Scheme, apis.Scheme).Decode(resp.Kvs[0].Value, nil, &corev1.ConfigMap{})
	if err != nil {
		t.Fatal(err)
	}
	stored, ok := obj.(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("decoded %T", obj)
	}
	if stored.UID != cm.UID || stored.Data["k"] != "v" {
		t.Errorf("stored ConfigMap %+v", stored)
	}
	if stored.ResourceVersion != "" {
		t.Errorf("resourceVersion %q stored in the value; it belongs to the etcd revision", stored.ResourceVersion)
	}
	if got := itoa(int(resp.Kvs[0].ModRevision)); got != cm.ResourceVersion {
		t.Errorf("etcd mod revision %s, object resourceVersion %s", got, cm.ResourceVersion)
	}
	// Nothing is stored under the events.k8s.io group's own prefix.
	other, err := etcdc.Get(ctx, "/registry/events.k8s.io/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Kvs) != 0 {
		t.Errorf("%d keys under /registry/events.k8s.io/, e.g. %s", len(other.Kvs), other.Kvs[0].Key)
	}
}
