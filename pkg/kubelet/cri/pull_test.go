package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/images"
	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// TestImagePullsInBackground: a pull does not hold the sync (it returns
// ContainerCreating with a Requeue), pulls run one at a time, and pods
// asking for an image being pulled share its pull.
func TestImagePullsInBackground(t *testing.T) {
	e := env(t)
	reg := startGatedRegistry(t, "skiff-test/a", "skiff-test/b")
	r, rec := newRuntime(t, e, nil)
	imageA, imageB := reg.image("skiff-test/a"), reg.image("skiff-test/b")
	t.Cleanup(func() {
		for _, img := range []string{imageA, imageB} {
			_ = r.ImageService().RemoveImage(context.Background(), &runtimeapi.ImageSpec{Image: img})
		}
	})
	podA := busyboxPod("pull-a", "sleep 3600")
	podA.Spec.Containers[0].Image = imageA
	podA2 := busyboxPod("pull-a2", "sleep 3600")
	podA2.Spec.Containers[0].Image = imageA
	podB := busyboxPod("pull-b", "sleep 3600")
	podB.Spec.Containers[0].Image = imageB
	for _, p := range []*corev1.Pod{podA, podA2, podB} {
		removeAfter(t, r, p.UID)
		res := syncReturns(t, r, p, 5*time.Second)
		c := res.Status.Containers[0]
		if c.WaitingReason != container.ReasonContainerCreating || c.ID != "" || res.Requeue <= 0 {
			t.Errorf("pod %s while its image is pulled: %s, requeue %v; want ContainerCreating and a requeue", p.Name, describe(res.Status), res.Requeue)
		}
		if want := fmt.Sprintf("Normal Pulling Pulling image %q", p.Spec.Containers[0].Image); !rec.hasFor(want, p.Name) {
			t.Errorf("no event %q for %s", want, p.Name)
		}
	}
	reg.waitLayerRequested(t, "skiff-test/a")
	// Serialized: b is not asked for while a is pulled.
	time.Sleep(time.Second)
	if n := reg.requests("skiff-test/b"); n != 0 {
		t.Errorf("%d requests for b while a was pulled, want none (one pull at a time)", n)
	}
	reg.release("skiff-test/a")
	for _, p := range []*corev1.Pod{podA, podA2} {
		syncUntil(t, r, p, 30*time.Second, func(s *container.PodStatus) bool {
			return s.Containers[0].State == container.StateRunning
		})
	}
	if n := reg.layerRequests("skiff-test/a"); n != 1 {
		t.Errorf("a's layer was fetched %d times, want once for two pods", n)
	}
	reg.waitLayerRequested(t, "skiff-test/b")
	reg.release("skiff-test/b")
	syncUntil(t, r, podB, 30*time.Second, func(s *container.PodStatus) bool {
		return s.Containers[0].State == container.StateRunning
	})
	for _, p := range []*corev1.Pod{podA, podA2, podB} {
		want := fmt.Sprintf("Normal Pulled Successfully pulled image %q in ", p.Spec.Containers[0].Image)
		if !rec.hasFor(want, p.Name) {
			t.Errorf("no event %q... for %s in %q", want, p.Name, rec.all())
		}
	}
}

// syncReturns is one SyncPod that must return within timeout.
func syncReturns(t *testing.T, r *Runtime, pod *corev1.Pod, timeout time.Duration) container.SyncResult {
	t.Helper()
	type result struct {
		res container.SyncResult
		err error
	}
	ch := make(chan result, 1)
	go func() {
		res, err := r.SyncPod(context.Background(), pod)
		ch <- result{res, err}
	}()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("SyncPod %s: %v", pod.Name, got.err)
		}
		return got.res
	case <-time.After(timeout):
		t.Fatalf("SyncPod %s did not return within %v: it waits for the image pull", pod.Name, timeout)
		return container.SyncResult{}
	}
}

// gatedRegistry serves images over the registry API on loopback; each
// repository's layer is held back until released.
type gatedRegistry struct {
	srv       *httptest.Server
	blobs     map[string][]byte
	manifests map[string][]byte // by repository
	layers    map[string]string // layer digest → repository

	mu     sync.Mutex
	gates  map[string]chan struct{}
	seen   map[string]int // requests by repository
	layerN map[string]int
	once   map[string]*sync.Once
}

func startGatedRegistry(t *testing.T, repos ...string) *gatedRegistry {
	t.Helper()
	g := &gatedRegistry{blobs: map[string][]byte{}, manifests: map[string][]byte{}, layers: map[string]string{},
		gates: map[string]chan struct{}{}, seen: map[string]int{}, layerN: map[string]int{}, once: map[string]*sync.Once{}}
	for _, repo := range repos {
		g.add(t, repo)
	}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(func() {
		for _, repo := range repos {
			g.release(repo)
		}
		g.srv.Close()
	})
	return g
}

func (g *gatedRegistry) image(repo string) string {
	return strings.TrimPrefix(g.srv.URL, "http://") + "/" + repo + ":1"
}

// add builds a busybox image whose layer names repo (so each has its
// own layer) and keeps its blobs.
func (g *gatedRegistry) add(t *testing.T, repo string) {
	l := images.NewLayer()
	for _, err := range []error{
		l.AddFile("bin/busybox", "/bin/busybox", 0o755),
		l.AddSymlink("bin/sh", "busybox"), l.AddSymlink("bin/sleep", "busybox"),
		l.AddData("name", []byte(repo), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var archive bytes.Buffer
	w, err := images.WriteArchive(&archive, &images.Image{Name: "example.invalid/" + repo + ":1", Layers: []*images.Layer{l}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&archive)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hex, ok := strings.CutPrefix(h.Name, "blobs/sha256/"); ok {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			g.blobs["sha256:"+hex] = data
		}
	}
	manifest := g.blobs[w.Manifest.Digest]
	var m struct {
		Layers []images.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest of %s: %v %s", repo, err, manifest)
	}
	g.manifests[repo] = manifest
	g.layers[m.Layers[0].Digest] = repo
	g.gates[repo] = make(chan struct{})
	g.once[repo] = &sync.Once{}
}

func (g *gatedRegistry) serve(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	if path == "" || path == req.URL.Path {
		return
	}
	if repo, _, ok := strings.Cut(path, "/manifests/"); ok {
		g.count(repo, false)
		data, found := g.manifests[repo]
		if !found {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", images.MediaTypeManifest)
		w.Header().Set("Docker-Content-Digest", digestOf(g.blobs, data))
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if req.Method != http.MethodHead {
			_, _ = w.Write(data)
		}
		return
	}
	if repo, digest, ok := strings.Cut(path, "/blobs/"); ok {
		layer := g.layers[digest] == repo
		g.count(repo, layer && req.Method != http.MethodHead)
		if layer && req.Method != http.MethodHead {
			g.mu.Lock()
			gate := g.gates[repo]
			g.mu.Unlock()
			select {
			case <-gate:
			case <-req.Context().Done():
				return
			}
		}
		data, found := g.blobs[digest]
		if !found {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Header().Set("Docker-Content-Digest", digest)
		if req.Method != http.MethodHead {
			_, _ = w.Write(data)
		}
		return
	}
	http.NotFound(w, req)
}

func digestOf(blobs map[string][]byte, data []byte) string {
	for d, b := range blobs {
		if bytes.Equal(b, data) {
			return d
		}
	}
	return ""
}

func (g *gatedRegistry) count(repo string, layer bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen[repo]++
	if layer {
		g.layerN[repo]++
	}
}

func (g *gatedRegistry) requests(repo string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[repo]
}

func (g *gatedRegistry) layerRequests(repo string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.layerN[repo]
}

func (g *gatedRegistry) release(repo string) {
	g.once[repo].Do(func() { close(g.gates[repo]) })
}

func (g *gatedRegistry) waitLayerRequested(t *testing.T, repo string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for g.layerRequests(repo) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the runtime never asked for %s's layer (%d requests)", repo, g.requests(repo))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
