// Package nodeimages gives tests that run real pods the images a node
// needs, with no registry: pause (the sandbox image) and busybox, built
// once per machine from ./cmd/pause and Debian's busybox-static and
// imported into containerd under their upstream names.
package nodeimages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/pkg/images"
	"github.com/skiff-dev/skiff/pkg/images/builtin"
)

// The images Ensure imports.
const (
	PauseImage   = builtin.PauseImage
	BusyboxImage = builtin.BusyboxImage
)

// Ensure imports PauseImage and BusyboxImage into the k8s.io namespace of
// the containerd at address (a unix socket path), building them first
// unless this machine has built them from the same sources before.
func Ensure(t testing.TB, address string) {
	t.Helper()
	files := Archives(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range files {
		if err := images.Import(ctx, address, f); err != nil {
			t.Fatalf("nodeimages: %v", err)
		}
	}
}

// Archives returns the OCI archives of PauseImage and BusyboxImage (in that
// order), built under $HOME/.cache/skiff/images/<hash of their inputs>/.
func Archives(t testing.TB) []string {
	t.Helper()
	for _, tool := range []string{builtin.DefaultBusyboxBinary} {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("nodeimages: %s is missing (apt-get install busybox-static)", tool)
		}
	}
	files, err := archives()
	if err != nil {
		t.Fatalf("nodeimages: %v", err)
	}
	return files
}

func archives() ([]string, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	key, err := inputsHash(root)
	if err != nil {
		return nil, err
	}
	base, err := cacheBase()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, key)
	files := []string{filepath.Join(dir, builtin.PauseArchive), filepath.Join(dir, builtin.BusyboxArchive)}
	if exist(files) {
		// In use: pruneCache keeps it.
		now := time.Now()
		_ = os.Chtimes(dir, now, now)
		return files, nil
	}

	// Test binaries of several packages may get here at once.
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(base, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if exist(files) {
		return files, nil
	}

	tmp, err := os.MkdirTemp(base, ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	pause := filepath.Join(tmp, "pause")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", pause, "./cmd/pause")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/pause: %w: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(tmp, "images")
	if _, err := builtin.Build(ctx, out, pause, builtin.DefaultBusyboxBinary); err != nil {
		return nil, err
	}
	if err := os.Rename(out, dir); err != nil {
		return nil, fmt.Errorf("caching the image archives: %w", err)
	}
	pruneCache(base, dir)
	return files, nil
}

// pruneCache removes archives of other inputs unused for a week (sources
// changed since), keeping keep.
func pruneCache(base, keep string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(base, e.Name())
		info, err := e.Info()
		if err != nil || !e.IsDir() || p == keep || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if time.Since(info.ModTime()) > 7*24*time.Hour {
			_ = os.RemoveAll(p)
		}
	}
}

func exist(files []string) bool {
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

func cacheBase() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		// No $HOME: still once per boot.
		return filepath.Join(os.TempDir(), "skiff-cache", "images"), nil
	}
	return filepath.Join(home, ".cache", "skiff", "images"), nil
}

// moduleRoot is the skiff checkout the test runs in.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/skiff-dev/skiff\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no skiff go.mod above the test's directory")
		}
		dir = parent
	}
}

// inputsHash hashes what the archives are made of: the Go toolchain, the
// sources of cmd/pause and pkg/images, and the busybox binary.
func inputsHash(root string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var srcs []string
	for _, d := range []string{"cmd/pause", "pkg/images"} {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				srcs = append(srcs, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(srcs)
	for _, f := range append(srcs, builtin.DefaultBusyboxBinary) {
		r, err := os.Open(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s\n", rel)
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
