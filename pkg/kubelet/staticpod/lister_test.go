package staticpod

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// TestLister: static pods stand in for their mirror pods; an orphaned
// mirror pod is not found; the API's other pods are there.
func TestLister(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.yaml", podYAML)
	src := newSource(t, dir, "n1")
	src.Refresh(context.Background())
	static := src.Pods()[0]

	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	mirror := Mirror(static, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-uid"}})
	mirror.UID = "api-uid"
	orphan := mirror.DeepCopy()
	orphan.Name, orphan.UID = "gone-n1", "orphan-uid"
	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plain", UID: "plain-uid", Labels: map[string]string{"app": "web"}}}
	for _, p := range []*corev1.Pod{mirror, orphan, plain} {
		if err := indexer.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	l := Lister(corelisters.NewPodLister(indexer), src)
	got, err := l.Pods("default").Get(static.Name)
	if err != nil || got.UID != static.UID {
		t.Errorf("Get(%s) = %v, %v; want the static pod %s", static.Name, got, err, static.UID)
	}
	if _, err := l.Pods("default").Get("gone-n1"); !apierrors.IsNotFound(err) {
		t.Errorf("Get of an orphaned mirror pod: %v, want NotFound", err)
	}
	if got, err := l.Pods("default").Get("plain"); err != nil || got.UID != "plain-uid" {
		t.Errorf("Get(plain) = %v, %v", got, err)
	}
	all, err := l.List(labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, p := range all {
		uids = append(uids, string(p.UID))
	}
	if want := string(static.UID) + " plain-uid"; strings.Join(uids, " ") != want {
		t.Errorf("List = %v, want %s", uids, want)
	}
	if other, _ := l.Pods("kube-system").List(labels.Everything()); len(other) != 0 {
		t.Errorf("kube-system: %v", other)
	}
}
