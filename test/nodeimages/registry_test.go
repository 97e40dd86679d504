package nodeimages_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/images"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// TestPullThroughMirror pushes the archives to Debian's docker-registry
// with skopeo (as hack/images.sh --registry does) under their upstream
// repository paths, and pulls busybox through the CRI of a containerd whose
// mirror of registry.k8s.io is that registry.
func TestPullThroughMirror(t *testing.T) {
	for _, tool := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install docker-registry skopeo)", tool)
		}
	}
	files := nodeimages.Archives(t)
	registry := startRegistry(t)
	for i, name := range []string{nodeimages.PauseImage, nodeimages.BusyboxImage} {
		dest := "docker://" + registry + "/" + strings.TrimPrefix(name, "registry.k8s.io/")
		// --preserve-digests: uncompressed layers, the archive's manifest,
		// so that a pulled image is the imported one, digest for digest.
		out, err := exec.Command("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", "oci-archive:"+files[i], dest).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo copy to %s: %v: %s", dest, err, out)
		}
	}

	c := containerdtest.Start(t, containerdtest.Options{Name: "nodeimages", RegistryMirrors: map[string]string{"registry.k8s.io": "http://" + registry}})
	ctx := context.Background()
	is := c.ImageService(t)
	spec := &runtimeapi.ImageSpec{Image: nodeimages.BusyboxImage}
	if st, err := is.ImageStatus(ctx, spec, false); err != nil || st.Image != nil {
		t.Fatalf("before the pull: ImageStatus = %v, %v; want no image", st, err)
	}
	ref, err := is.PullImage(ctx, spec, nil, nil)
	if err != nil {
		t.Fatalf("PullImage(%s) through the mirror: %v", nodeimages.BusyboxImage, err)
	}
	st, err := is.ImageStatus(ctx, spec, false)
	if err != nil || st.Image == nil {
		t.Fatalf("after the pull: ImageStatus = %v, %v", st, err)
	}
	if st.Image.Id != ref {
		t.Errorf("pulled %s, status says %s", ref, st.Image.Id)
	}
	manifests, err := images.ArchiveManifests(files[1])
	if err != nil {
		t.Fatal(err)
	}
	wantDigest := "registry.k8s.io/e2e-test-images/busybox@" + manifests[0].Digest
	if !slices.Contains(st.Image.RepoDigests, wantDigest) {
		t.Errorf("repo digests %v, want %s (the archive's manifest)", st.Image.RepoDigests, wantDigest)
	}
}

// startRegistry runs docker-registry on a free loopback port with its
// storage in a temp dir and returns host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-done:
			data, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry exited: %s", data)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s within 15s", addr)
		}
	}
}
