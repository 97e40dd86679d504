package builtin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/images/builtin"
	"github.com/skiff-dev/skiff/test/containerdtest"
)

// TestBusyboxShells runs the busybox image's shells in a real containerd
// as two conformance specs do: /bin/sh by path must print busybox ash's
// error text on a read-only rootfs ("Kubelet ... should not write to root
// filesystem"), and `sh` by PATH must pass on variables named like data-1
// (the ConfigMap/Secret env specs), which Debian's busybox 1.35 ash drops.
func TestBusyboxShells(t *testing.T) {
	if _, err := os.Stat(builtin.BashStaticBinary); err != nil {
		t.Skipf("%s is missing (apt-get install bash-static): sh drops variables named like data-1", builtin.BashStaticBinary)
	}
	c := containerdtest.Start(t, containerdtest.Options{Name: "bbsh", Images: true})
	ctx := context.Background()
	rs := c.RuntimeService(t)
	logDir := filepath.Join(c.Dir, "pod-logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sandboxConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "shells", Namespace: "default", Uid: "builtin-shells"},
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
		t.Fatalf("RunPodSandbox: %v", err)
	}
	// run runs a busybox container to its end and returns its output.
	run := func(name string, command []string, envs []*runtimeapi.KeyValue, readOnly bool) string {
		t.Helper()
		id, err := rs.CreateContainer(ctx, sandbox, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: builtin.BusyboxImage},
			Command:  command,
			Envs:     envs,
			LogPath:  name + ".log",
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: readOnly},
			},
		}, sandboxConfig)
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", name, err)
		}
		if err := rs.StartContainer(ctx, id); err != nil {
			t.Fatalf("StartContainer %s: %v", name, err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			resp, err := rs.ContainerStatus(ctx, id, false)
			if err != nil {
				t.Fatalf("ContainerStatus %s: %v", name, err)
			}
			if resp.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not exit within 30s: %v", name, resp.Status.State)
			}
		}
		log, err := os.ReadFile(filepath.Join(logDir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		// CRI log lines: "<time> <stream> F <line>"; keep the lines.
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(log)), "\n") {
			if f := strings.SplitN(l, " ", 4); len(f) == 4 {
				lines = append(lines, f[3])
			}
		}
		return strings.Join(lines, "\n")
	}

	// The spec's command; bash would say "/bin/sh: line 1: /file: ...".
	want := "/bin/sh: can't create /file: Read-only file system"
	if out := run("readonly", []string{"/bin/sh", "-c", "echo test > /file"}, nil, true); out != want {
		t.Errorf("/bin/sh on a read-only rootfs printed %q, want %q", out, want)
	}
	// As the specs' envFrom: the runtime finds sh by PATH. (busybox's
	// env(1) would run its own sh applet, whatever PATH says.)
	out := run("envfrom", []string{"sh", "-c", "env"}, []*runtimeapi.KeyValue{{Key: "data-1", Value: []byte("value-1")}}, false)
	if !strings.Contains("\n"+out+"\n", "\ndata-1=value-1\n") {
		t.Errorf("sh -c env with data-1 in the container's env printed %q, want data-1=value-1 in it", out)
	}
}
