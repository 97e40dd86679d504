package containerd

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// TestPullThroughRegistryMirror serves busybox from Debian's
// docker-registry on loopback and pulls it by its registry.k8s.io name
// through the CRI of a containerd whose RegistryMirrors point there.
func TestPullThroughRegistryMirror(t *testing.T) {
	requireContainerd(t)
	for _, tool := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install docker-registry skopeo, or hack/node-deps.sh)", tool)
		}
	}
	busybox := nodeimages.Archives(t)[1]
	registry := startRegistry(t)
	dest := "docker://" + registry + "/" + strings.TrimPrefix(nodeimages.BusyboxImage, "registry.k8s.io/")
	if out, err := exec.Command("skopeo", "copy", "--dest-tls-verify=false", "oci-archive:"+busybox, dest).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}

	p := startForTest(t, Options{DataDir: t.TempDir(), RegistryMirrors: map[string][]string{"registry.k8s.io": {"http://" + registry}}})
	ctx := context.Background()
	is, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(p.Endpoint()).
		WithConnectionTimeout(30 * time.Second).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := &runtimeapi.ImageSpec{Image: nodeimages.BusyboxImage}
	if _, err := is.PullImage(ctx, spec, nil, nil); err != nil {
		t.Fatalf("PullImage(%s) through the mirror: %v", nodeimages.BusyboxImage, err)
	}
	st, err := is.ImageStatus(ctx, spec, false)
	if err != nil || st.Image == nil {
		t.Fatalf("after the pull: ImageStatus = %v, %v", st, err)
	}
}

// startRegistry runs docker-registry on a free loopback port, storing in a
// temp dir; it returns host:port.
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
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-done:
			data, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry exited: %s", data)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s within 15s", addr)
		}
	}
}
