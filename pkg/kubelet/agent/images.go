package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/images"
	"github.com/skiff-dev/skiff/pkg/images/builtin"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerd"
)

// ensureImages imports the archives of ImagesDir and, if the runtime
// still lacks the sandbox image, builds it from the pause binary: a node
// with no registry in reach can still run pods.
func ensureImages(ctx context.Context, svc internalapi.ImageManagerService, endpoint string, o Options) error {
	address := strings.TrimPrefix(endpoint, "unix://")
	if o.ImagesDir != "" {
		if err := images.ImportDir(ctx, address, o.ImagesDir); err != nil {
			klog.FromContext(ctx).Error(err, "Importing node images", "dir", o.ImagesDir)
		}
	}
	if s, err := svc.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: containerd.DefaultSandboxImage}, false); err == nil && s.GetImage() != nil {
		return nil
	}
	pause := o.PauseBinary
	if pause == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		pause = filepath.Join(filepath.Dir(exe), "pause")
	}
	if _, err := os.Stat(pause); err != nil {
		return fmt.Errorf("no sandbox image in the runtime and no pause binary at %s to build it from (hack/build.sh builds it; or `skiff images import` an archive of %s): %w",
			pause, containerd.DefaultSandboxImage, err)
	}
	img, err := builtin.Pause(pause)
	if err != nil {
		return err
	}
	dir := filepath.Join(o.RootDir, "images")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	file := filepath.Join(dir, builtin.PauseArchive)
	if _, err := images.WriteFile(file, img); err != nil {
		return err
	}
	if err := images.Import(ctx, address, file); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Built the sandbox image", "image", containerd.DefaultSandboxImage, "from", pause)
	return nil
}
