package staticpod

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const podYAML = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newSource(t *testing.T, path, node string) *Source {
	t.Helper()
	s, err := NewSource(Options{Path: path, NodeName: node})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

// TestReadManifests: upstream's names, namespace, node, UID hash,
// annotations, toleration and phase; pod lists and YAML documents; hidden
// files, directories and invalid pods left out.
func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.yaml", podYAML)
	write(t, dir, "list.json", `{"apiVersion":"v1","kind":"PodList","items":[
		{"metadata":{"name":"one","namespace":"kube-system"},"spec":{"containers":[{"name":"c","image":"busybox"}]}},
		{"metadata":{"name":"two","namespace":"kube-system"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}]}`)
	write(t, dir, "docs.yaml", "# two pods\n"+strings.Replace(podYAML, "name: web", "name: doc-a", 1)+"---\n"+strings.Replace(podYAML, "name: web", "name: doc-b", 1))
	write(t, dir, ".hidden.yaml", strings.Replace(podYAML, "name: web", "name: hidden", 1))
	write(t, dir, "noname.yaml", strings.Replace(podYAML, "name: web", "name: ''", 1))
	write(t, dir, "invalid.yaml", strings.Replace(podYAML, "image: busybox", "image: ''", 1))
	write(t, dir, "secret.yaml", podYAML+"    envFrom: [{secretRef: {name: s}}]\n")
	write(t, dir, "notapod.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sub"), "deep.yaml", strings.Replace(podYAML, "name: web", "name: deep", 1))

	s := newSource(t, dir, "node-1")
	if !s.Refresh(context.Background()) {
		t.Fatal("first Refresh: no change")
	}
	pods := s.Pods()
	want := []string{"default/doc-a-node-1", "default/doc-b-node-1", "kube-system/one-node-1", "kube-system/two-node-1", "default/web-node-1"}
	if got := names(pods); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pods %v, want %v", got, want)
	}
	web := pods[4]
	if web.Spec.NodeName != "node-1" || web.Status.Phase != corev1.PodPending {
		t.Errorf("nodeName %q phase %q", web.Spec.NodeName, web.Status.Phase)
	}
	if len(web.UID) != 32 || web.Annotations[ConfigHashAnnotation] != string(web.UID) {
		t.Errorf("UID %q, hash annotation %q: want the 128-bit hash in both", web.UID, web.Annotations[ConfigHashAnnotation])
	}
	if web.Annotations[ConfigSourceAnnotation] != "file" {
		t.Errorf("source annotation %q", web.Annotations[ConfigSourceAnnotation])
	}
	if _, err := time.Parse(time.RFC3339Nano, web.Annotations[ConfigSeenAnnotation]); err != nil {
		t.Errorf("seen annotation %q: %v", web.Annotations[ConfigSeenAnnotation], err)
	}
	if len(web.Spec.Tolerations) != 1 || web.Spec.Tolerations[0].Operator != corev1.TolerationOpExists || web.Spec.Tolerations[0].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("tolerations %+v, want Exists NoExecute", web.Spec.Tolerations)
	}
	c := web.Spec.Containers[0]
	if web.Spec.RestartPolicy != corev1.RestartPolicyAlways || c.TerminationMessagePath != corev1.TerminationMessagePathDefault || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("not defaulted as the API would: restartPolicy %q, terminationMessagePath %q, pullPolicy %q", web.Spec.RestartPolicy, c.TerminationMessagePath, c.ImagePullPolicy)
	}
	if !IsStaticPod(web) || IsMirrorPod(web) {
		t.Errorf("IsStaticPod %t IsMirrorPod %t", IsStaticPod(web), IsMirrorPod(web))
	}
	for _, bad := range []string{"noname.yaml", "invalid.yaml", "secret.yaml", "notapod.yaml"} {
		if _, err := ReadManifest(filepath.Join(dir, bad), "node-1"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, err := ReadManifest(filepath.Join(dir, "secret.yaml"), "node-1"); err == nil || err.Error() != "static pods may not reference secrets" {
		t.Errorf("secret.yaml: %v, want upstream's", err)
	}
}

// TestUIDs: the same manifest gives the same UID; another content, node
// or file another.
func TestUIDs(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", podYAML)
	b := write(t, dir, "b.yaml", podYAML)
	uid := func(file, node string) string {
		t.Helper()
		pods, err := ReadManifest(file, node)
		if err != nil || len(pods) != 1 {
			t.Fatalf("ReadManifest(%s): %v %v", file, pods, err)
		}
		return string(pods[0].UID)
	}
	first := uid(a, "n1")
	if again := uid(a, "n1"); again != first {
		t.Errorf("same manifest read twice: %s, %s", first, again)
	}
	if other := uid(b, "n1"); other == first {
		t.Errorf("another file, same UID %s", first)
	}
	if other := uid(a, "n2"); other == first {
		t.Errorf("another node, same UID %s", first)
	}
	write(t, dir, "a.yaml", strings.Replace(podYAML, "3600", "60", 1))
	if changed := uid(a, "n1"); changed == first {
		t.Errorf("changed manifest, same UID %s", first)
	}
}

// TestRefreshChanges: Changes fires on a change only; the seen time of a
// pod that did not change stays; a removed file's pod goes; a single file
// works as the path.
func TestRefreshChanges(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.yaml", podYAML)
	s := newSource(t, dir, "n1")
	changes, other := s.Changes(), s.Changes()
	ctx := context.Background()
	s.Refresh(ctx)
	for _, ch := range []<-chan struct{}{changes, other} {
		select {
		case <-ch:
		default:
			t.Fatal("no change after the first read")
		}
	}
	seen := s.Pods()[0].Annotations[ConfigSeenAnnotation]
	time.Sleep(10 * time.Millisecond)
	if s.Refresh(ctx) {
		t.Error("unchanged manifests: a change")
	}
	select {
	case <-changes:
		t.Error("Changes fired without a change")
	default:
	}
	if got := s.Pods()[0].Annotations[ConfigSeenAnnotation]; got != seen {
		t.Errorf("seen %q, then %q for the same pod", seen, got)
	}
	write(t, dir, "db.yaml", strings.Replace(podYAML, "name: web", "name: db", 1))
	if !s.Refresh(ctx) || len(s.Pods()) != 2 {
		t.Errorf("a new manifest: %v", names(s.Pods()))
	}
	if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	if !s.Refresh(ctx) || strings.Join(names(s.Pods()), " ") != "default/db-n1" {
		t.Errorf("a removed manifest: %v", names(s.Pods()))
	}

	single := newSource(t, filepath.Join(dir, "db.yaml"), "n1")
	single.Refresh(ctx)
	if got := names(single.Pods()); len(got) != 1 || got[0] != "default/db-n1" {
		t.Errorf("single file: %v", got)
	}
	missing := newSource(t, filepath.Join(dir, "nothing"), "n1")
	if missing.Refresh(ctx); len(missing.Pods()) != 0 {
		t.Errorf("missing path: %v", names(missing.Pods()))
	}
}
