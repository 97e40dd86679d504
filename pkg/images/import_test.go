package images

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.tar")
	if err := os.WriteFile(archive, []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, address, file, want string
	}{
		{"no address", "", archive, "no containerd address"},
		{"missing file", filepath.Join(dir, "c.sock"), filepath.Join(dir, "missing.tar"), "missing.tar: no such file"},
		{"a directory", filepath.Join(dir, "c.sock"), dir, "not a regular file"},
		{"no containerd", "unix://" + filepath.Join(dir, "c.sock"), archive, "c.sock: no such file or directory (is containerd running?)"},
	} {
		err := Import(ctx, tc.address, tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Import = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}

	// A socket nothing listens on: ctr's own words come back.
	if _, err := exec.LookPath(CtrBinary); err != nil {
		t.Skipf("%s is not installed (apt-get install containerd)", CtrBinary)
	}
	sock := filepath.Join(dir, "dead.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := Import(ctx, sock, archive)
	if err == nil || !strings.Contains(err.Error(), "ctr images import "+archive) || !strings.Contains(err.Error(), "exit status") {
		t.Errorf("Import to a dead socket = %v", err)
	}
}

func TestImportDirWithoutArchives(t *testing.T) {
	ctx := context.Background()
	if err := ImportDir(ctx, "/nonexistent.sock", filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("ImportDir of a missing dir = %v, want nil", err)
	}
	if err := ImportDir(ctx, "/nonexistent.sock", t.TempDir()); err != nil {
		t.Errorf("ImportDir of an empty dir = %v, want nil", err)
	}
}
