package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/klog/v2"
)

// Namespace is containerd's namespace of the CRI plugin.
const Namespace = "k8s.io"

// CtrBinary is the ctr command Import runs.
var CtrBinary = "ctr"

// socketPath returns address without a unix:// scheme.
func socketPath(address string) string {
	return strings.TrimPrefix(address, "unix://")
}

// Import imports the OCI (or docker) image archive file into the k8s.io
// namespace of the containerd at address (a unix socket path), unpacked
// for its default snapshotter, so that the CRI sees the images it names.
func Import(ctx context.Context, address, file string) error {
	sock := socketPath(address)
	if sock == "" {
		return fmt.Errorf("importing %s: no containerd address", file)
	}
	if st, err := os.Stat(file); err != nil {
		return fmt.Errorf("importing image archive: %w", err)
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("importing image archive %s: not a regular file", file)
	}
	if _, err := os.Stat(sock); err != nil {
		return fmt.Errorf("importing %s: containerd socket %s: %w (is containerd running?)", file, sock, err)
	}
	ctr, err := exec.LookPath(CtrBinary)
	if err != nil {
		return fmt.Errorf("importing %s: %w (ctr comes with containerd)", file, err)
	}
	// Without --all-platforms ctr imports and unpacks the platform it runs
	// on; --all-platforms would also demand content for other platforms
	// that an archive of one platform's image lacks.
	cmd := exec.CommandContext(ctx, ctr, "--address", sock, "--namespace", Namespace, "images", "import", file)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ctr images import %s into %s: %w: %s", file, sock, err, strings.TrimSpace(out.String()))
	}
	klog.V(2).InfoS("Imported image archive", "file", file, "address", sock, "output", strings.TrimSpace(out.String()))
	return nil
}

// ImportDir imports every *.tar in dir, in name order, as k3s imports its
// agent/images: a dir that does not exist holds nothing to import; an
// archive that fails is logged and reported after the others were tried.
func ImportDir(ctx context.Context, address, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		if _, err := os.Stat(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("image archives dir: %w", err)
		}
		return nil
	}
	sort.Strings(files)
	var errs []error
	for _, f := range files {
		if err := Import(ctx, address, f); err != nil {
			klog.ErrorS(err, "Importing image archive failed", "file", f)
			errs = append(errs, err)
			continue
		}
		klog.InfoS("Imported image archive", "file", f)
	}
	return errors.Join(errs...)
}
