package nodeimages_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/images"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// TestEnsure imports both images into a real containerd, checks that its
// CRI sees them under their names with the images' users, and runs a
// busybox container in a pause sandbox, reading what it printed.
func TestEnsure(t *testing.T) {
	c := containerdtest.Start(t, containerdtest.Options{Name: "nodeimages"})
	nodeimages.Ensure(t, c.Address())
	// Again: already imported, cached archives.
	start := time.Now()
	nodeimages.Ensure(t, c.Address())
	t.Logf("second nodeimages.Ensure took %v", time.Since(start))

	ctx := context.Background()
	is := c.ImageService(t)
	for _, want := range []struct {
		name string
		uid  int64 // -1: none set
	}{{nodeimages.PauseImage, 65535}, {nodeimages.BusyboxImage, -1}} {
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: want.name}, false)
		if err != nil {
			t.Fatalf("ImageStatus(%s): %v", want.name, err)
		}
		if st.Image == nil {
			t.Fatalf("ImageStatus(%s): the CRI does not know the image", want.name)
		}
		if !slices.Contains(st.Image.RepoTags, want.name) {
			t.Errorf("%s: repo tags %v", want.name, st.Image.RepoTags)
		}
		var uid int64 = -1
		if st.Image.Uid != nil {
			uid = st.Image.Uid.Value
		}
		if uid != want.uid {
			t.Errorf("%s: image user uid %d, want %d", want.name, uid, want.uid)
		}
	}

	rs := c.RuntimeService(t)
	logDir := filepath.Join(c.Dir, "pod-logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sandboxConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "busybox", Namespace: "default", Uid: "nodeimages-test"},
		LogDirectory: logDir,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			// No CNI: the host's network.
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			},
		},
	}
	sandbox, err := rs.RunPodSandbox(ctx, sandboxConfig, "")
	if err != nil {
		t.Fatalf("RunPodSandbox with %s: %v", nodeimages.PauseImage, err)
	}
	containerID, err := rs.CreateContainer(ctx, sandbox, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sh"},
		Image:    &runtimeapi.ImageSpec{Image: nodeimages.BusyboxImage},
		// By path, as specs do; as nobody to see /etc/passwd at work.
		Command: []string{"/bin/sh", "-c", `/bin/true && ! /bin/false && echo "user=$(whoami) tmp=$(stat -c %a /tmp) sleep=$(readlink /bin/sleep)"`},
		LogPath: "sh.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: 65534}},
		},
	}, sandboxConfig)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := rs.StartContainer(ctx, containerID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	var status *runtimeapi.ContainerStatus
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := rs.ContainerStatus(ctx, containerID, false)
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		status = resp.Status
		if status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not exit within 30s: %v", status.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, err := os.ReadFile(filepath.Join(logDir, "sh.log"))
	if err != nil {
		t.Fatal(err)
	}
	if status.ExitCode != 0 {
		t.Fatalf("exit code %d, log:\n%s", status.ExitCode, log)
	}
	// CRI log lines: "<time> stdout F <line>".
	want := "stdout F user=nobody tmp=1777 sleep=busybox"
	if !strings.Contains(string(log), want) {
		t.Errorf("container log %q does not contain %q", log, want)
	}
}

// TestImportDir imports a dir of archives as a node's images dir: a broken
// archive is reported by name while the others are imported.
func TestImportDir(t *testing.T) {
	c := containerdtest.Start(t, containerdtest.Options{Name: "nodeimages"})
	files := nodeimages.Archives(t)
	dir := t.TempDir()
	if err := os.Symlink(files[1], filepath.Join(dir, "b-busybox.tar")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a-broken.tar"), []byte("not an archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not imported"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := images.ImportDir(context.Background(), c.Address(), dir)
	if err == nil || !strings.Contains(err.Error(), "a-broken.tar") || strings.Contains(err.Error(), "busybox") || strings.Contains(err.Error(), "README") {
		t.Fatalf("ImportDir = %v, want an error about a-broken.tar only", err)
	}
	st, err := c.ImageService(t).ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: nodeimages.BusyboxImage}, false)
	if err != nil || st.Image == nil {
		t.Fatalf("after ImportDir: ImageStatus(%s) = %v, %v", nodeimages.BusyboxImage, st, err)
	}
}
