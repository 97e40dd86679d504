package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// nextEvent waits for the next event of w.
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed unexpectedly")
		}
		return ev
	case <-time.After(eventTimeout):
		t.Fatalf("no watch event within %s", eventTimeout)
	}
	return watch.Event{}
}

// TestWatchConfigMaps: a watch from a list's resourceVersion sees the later
// ADDED, MODIFIED and DELETED events in order, and nothing from before.
func TestWatchConfigMaps(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)

	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "w"}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["n"] = "1"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "w", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	lastRV := 0
	for _, want := range []struct {
		typ watch.EventType
		n   string
	}{{watch.Added, "0"}, {watch.Modified, "1"}, {watch.Deleted, "1"}} {
		ev := nextEvent(t, w)
		got, ok := ev.Object.(*corev1.ConfigMap)
		if !ok {
			t.Fatalf("event %s carries %T, want *ConfigMap: %+v", ev.Type, ev.Object, ev.Object)
		}
		if ev.Type != want.typ || got.Name != "w" || got.Data["n"] != want.n {
			t.Fatalf("got %s %s data %v, want %s w data n=%s", ev.Type, got.Name, got.Data, want.typ, want.n)
		}
		rv, err := strconv.Atoi(got.ResourceVersion)
		if err != nil || rv <= lastRV {
			t.Errorf("%s event resourceVersion %q not increasing (previous %d)", ev.Type, got.ResourceVersion, lastRV)
		}
		lastRV = rv
	}
	select {
	case ev := <-w.ResultChan():
		t.Errorf("unexpected extra event %s %+v", ev.Type, ev.Object)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestWatchLabelSelector: a watch filtered by label sees only the matching
// objects, and an update that makes an object stop matching arrives as
// DELETED.
func TestWatchLabelSelector(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)
	w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "pick=yes", ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "no", Labels: map[string]string{"pick": "no"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	yes, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "yes", Labels: map[string]string{"pick": "yes"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes.Labels["pick"] = "not-any-more"
	if _, err := cms.Update(ctx, yes, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []watch.EventType{watch.Added, watch.Deleted} {
		ev := nextEvent(t, w)
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if !ok || ev.Type != want || cm.Name != "yes" {
			t.Fatalf("got %s %+v, want %s of yes", ev.Type, ev.Object, want)
		}
	}
}

// TestWatchBookmarks: with allowWatchBookmarks the watch cache sends a
// BOOKMARK before the watch's deadline (2s before timeoutSeconds ends) to a
// watch whose namespace stays quiet, and the bookmark carries only a
// resourceVersion. A bookmark goes out only once the cache has moved past
// the watch's resourceVersion (as upstream's): a ConfigMap written in another
// namespace moves it, which on a busy server other writers do anyway.
func TestWatchBookmarks(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	timeout := int64(5)
	start := time.Now()
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{
		ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true, TimeoutSeconds: &timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	elsewhere := newNamespace(t)
	if _, err := cs.CoreV1().ConfigMaps(elsewhere).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, w)
	if ev.Type != watch.Bookmark {
		t.Fatalf("first event %s %+v, want BOOKMARK", ev.Type, ev.Object)
	}
	cm, ok := ev.Object.(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("bookmark carries %T, want *ConfigMap", ev.Object)
	}
	if cm.ResourceVersion == "" || cm.Name != "" {
		t.Errorf("bookmark object %+v: want only a resourceVersion", cm.ObjectMeta)
	}
	if d := time.Since(start); d > time.Duration(timeout)*time.Second {
		t.Errorf("bookmark after %s, after the watch's %ds timeout", d, timeout)
	}
}

// TestWatchInitialEvents: sendInitialEvents=true replays the current
// objects as ADDED and ends them with a bookmark annotated
// k8s.io/initial-events-end; later changes follow.
func TestWatchInitialEvents(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sendInitial := true
	w, err := cms.Watch(ctx, metav1.ListOptions{
		SendInitialEvents: &sendInitial, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowWatchBookmarks: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seen := map[string]bool{}
	for {
		ev := nextEvent(t, w)
		if ev.Type == watch.Bookmark {
			cm := ev.Object.(*corev1.ConfigMap)
			if cm.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
				t.Fatalf("bookmark without %s=true: %+v", metav1.InitialEventsAnnotationKey, cm.ObjectMeta)
			}
			break
		}
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != watch.Added || !ok {
			t.Fatalf("initial event %s %+v, want ADDED ConfigMap", ev.Type, ev.Object)
		}
		if seen[cm.Name] {
			t.Errorf("%s sent twice", cm.Name)
		}
		seen[cm.Name] = true
	}
	if len(seen) != 3 || !seen["a"] || !seen["b"] || !seen["c"] {
		t.Errorf("initial events named %v, want a, b, c", seen)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "d"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		ev := nextEvent(t, w)
		if ev.Type == watch.Bookmark {
			continue
		}
		if cm, ok := ev.Object.(*corev1.ConfigMap); ev.Type != watch.Added || !ok || cm.Name != "d" {
			t.Fatalf("after the initial events got %s %+v, want ADDED d", ev.Type, ev.Object)
		}
		break
	}
}

// TestWatchCompacted: once etcd is compacted, a watch from a revision older
// than both the compaction and the watch cache's window is refused with 410
// Expired (an ERROR event, as client-go reports it), as is a list at a
// compacted revision; a watch from a revision still in the watch cache's window keeps working (the
// cache, not etcd, serves it, as upstream). It compacts the shared etcd, so
// it does not run in parallel with the other tests.
func TestWatchCompacted(t *testing.T) {
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)
	first, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "old"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("new%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "head"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	head, err := etcdc.Get(ctx, "/registry/configmaps/"+ns+"/head")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcdc.Compact(ctx, head.Header.Revision); err != nil {
		t.Fatalf("compacting etcd at %d: %v", head.Header.Revision, err)
	}
	// etcd itself now refuses the old revision.
	if _, err := etcdc.Get(ctx, "/registry/configmaps/"+ns+"/old", clientv3.WithRev(preStartRev)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("etcd read at compacted revision %d: %v, want a compaction error", preStartRev, err)
	}
	tooOld := strconv.FormatInt(preStartRev, 10)

	t.Run("watch through client-go", func(t *testing.T) {
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: tooOld})
		if err != nil {
			wantStatusErr(t, err, http.StatusGone, metav1.StatusReasonExpired)
			return
		}
		defer w.Stop()
		ev := nextEvent(t, w)
		s, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok {
			t.Fatalf("first event %s %+v, want an ERROR Status", ev.Type, ev.Object)
		}
		if s.Code != http.StatusGone || s.Reason != metav1.StatusReasonExpired {
			t.Errorf("error event %d %s %q, want 410 Expired", s.Code, s.Reason, s.Message)
		}
		if _, ok := <-w.ResultChan(); ok {
			t.Error("the watch stayed open after the 410")
		}
	})

	t.Run("watch over HTTP", func(t *testing.T) {
		r := do(t, nil, http.MethodGet, "/api/v1/namespaces/"+ns+"/configmaps"+query("watch", "1", "resourceVersion", tooOld, "timeoutSeconds", "5"), nil, nil)
		var ev struct {
			Type   string
			Object metav1.Status
		}
		switch r.code {
		case http.StatusGone:
			if s := r.status(t); s.Reason != metav1.StatusReasonExpired {
				t.Errorf("410 with reason %q", s.Reason)
			}
		case http.StatusOK:
			if err := json.Unmarshal(r.body, &ev); err != nil {
				t.Fatalf("watch body %q: %v", r.body, err)
			}
			if ev.Type != "ERROR" || ev.Object.Code != http.StatusGone || ev.Object.Reason != metav1.StatusReasonExpired {
				t.Errorf("watch event %+v, want ERROR 410 Expired", ev)
			}
		default:
			t.Errorf("watch = %d, want 410 or an ERROR event:\n%s", r.code, r.body)
		}
	})

	t.Run("list at a compacted revision", func(t *testing.T) {
		_, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: tooOld, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		wantStatusErr(t, err, http.StatusGone, metav1.StatusReasonExpired)
	})

	t.Run("watch within the cache window", func(t *testing.T) {
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		for _, want := range []string{"new0", "new1", "new2", "new3", "new4", "head"} {
			ev := nextEvent(t, w)
			if cm, ok := ev.Object.(*corev1.ConfigMap); ev.Type != watch.Added || !ok || cm.Name != want {
				t.Fatalf("got %s %+v, want ADDED %s", ev.Type, ev.Object, want)
			}
		}
	})

	t.Run("new watches work", func(t *testing.T) {
		list, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 7 {
			t.Errorf("list after compaction: %d items, want 7", len(list.Items))
		}
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := cms.Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if ev := nextEvent(t, w); ev.Type != watch.Deleted {
			t.Errorf("after compaction got %s %+v, want DELETED", ev.Type, ev.Object)
		}
	})
}

// TestWatchRawStream checks the wire format of a watch: one JSON object per
// event with "type" and "object".
func TestWatchRawStream(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/api/v1/namespaces/"+ns+"/configmaps"+
		query("watch", "true", "resourceVersion", list.ResourceVersion), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("watch Content-Type %q", ct)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "raw"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type   string
		Object struct {
			Kind, APIVersion string
			Metadata         metav1.ObjectMeta
		}
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatalf("watch line %q: %v", line, err)
	}
	if ev.Type != "ADDED" || ev.Object.Kind != "ConfigMap" || ev.Object.APIVersion != "v1" || ev.Object.Metadata.Name != "raw" {
		t.Errorf("watch line %s", line)
	}
}
