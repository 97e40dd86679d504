package builtin

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/pkg/images"
)

// layerOf writes img and returns its (only) layer's headers and contents,
// and its config.
func layerOf(t *testing.T, img *images.Image) (map[string]*tar.Header, map[string]string, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	written, err := images.WriteArchive(&buf, img, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		blobs[strings.TrimPrefix(hdr.Name, "blobs/sha256/")] = b
	}
	var cfg map[string]any
	if err := json.Unmarshal(blobs[strings.TrimPrefix(written.ConfigDigest, "sha256:")], &cfg); err != nil {
		t.Fatal(err)
	}
	hdrs := map[string]*tar.Header{}
	content := map[string]string{}
	lr := tar.NewReader(bytes.NewReader(blobs[strings.TrimPrefix(written.DiffIDs[0], "sha256:")]))
	for {
		hdr, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(lr)
		hdrs[hdr.Name] = hdr
		content[hdr.Name] = string(b)
	}
	return hdrs, content, cfg["config"].(map[string]any)
}

func TestBusybox(t *testing.T) {
	if _, err := os.Stat(DefaultBusyboxBinary); err != nil {
		t.Skipf("%s is missing (apt-get install busybox-static)", DefaultBusyboxBinary)
	}
	img, err := Busybox(context.Background(), DefaultBusyboxBinary)
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != BusyboxImage {
		t.Errorf("name %s", img.Name)
	}
	hdrs, content, cfg := layerOf(t, img)
	for _, applet := range []string{"true", "false", "sleep", "cat", "nslookup", "nc"} {
		h := hdrs["bin/"+applet]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v, want a symlink to busybox", applet, h)
		}
	}
	// /bin/sh is busybox's ash (by path, as a spec wants its error text);
	// `sh` by PATH is bash-static where the host has it (it passes
	// environment variables with names that are not identifiers on).
	for _, applet := range []string{"sh", "ash"} {
		if h := hdrs["bin/"+applet]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v, want a symlink to busybox", applet, h)
		}
	}
	if _, err := os.Stat(BashStaticBinary); err == nil {
		if h := hdrs["usr/bin/bash"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o755 || h.Size == 0 {
			t.Errorf("usr/bin/bash: %+v, want bash-static", h)
		}
		if h := hdrs["usr/bin/sh"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "bash" {
			t.Errorf("usr/bin/sh: %+v, want a symlink to bash", h)
		}
	} else {
		t.Logf("%s is missing: no bash in the image", BashStaticBinary)
		for _, p := range []string{"usr/bin/bash", "usr/bin/sh"} {
			if h := hdrs[p]; h != nil {
				t.Errorf("%s: %+v without %s", p, h, BashStaticBinary)
			}
		}
	}
	// Upstream busybox image's PATH; /usr/bin before /bin makes `sh` bash.
	env, _ := json.Marshal(cfg["Env"])
	if string(env) != `["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]` {
		t.Errorf("Env %s, want upstream busybox's PATH only", env)
	}
	if h := hdrs["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o755 {
		t.Errorf("bin/busybox: %+v", h)
	}
	if h := hdrs["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/: %+v, want mode 1777", h)
	}
	if !strings.Contains(content["etc/passwd"], "nobody:x:65534:65534:") || !strings.HasPrefix(content["etc/passwd"], "root:x:0:0:") {
		t.Errorf("etc/passwd = %q", content["etc/passwd"])
	}
	if !strings.Contains(content["etc/group"], "nobody:x:65534:") {
		t.Errorf("etc/group = %q", content["etc/group"])
	}
	if cmd, _ := json.Marshal(cfg["Cmd"]); string(cmd) != `["sh"]` || cfg["Entrypoint"] != nil {
		t.Errorf("Cmd %s Entrypoint %v, want [\"sh\"] and none", cmd, cfg["Entrypoint"])
	}
}

func TestPause(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(bin, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := Pause(bin)
	if err != nil {
		t.Fatal(err)
	}
	hdrs, _, cfg := layerOf(t, img)
	if len(hdrs) != 1 || hdrs["pause"] == nil || hdrs["pause"].Mode != 0o755 {
		t.Errorf("layer %v, want only /pause 0755", hdrs)
	}
	if ep, _ := json.Marshal(cfg["Entrypoint"]); string(ep) != `["/pause"]` || cfg["User"] != "65535:65535" {
		t.Errorf("Entrypoint %s User %v", ep, cfg["User"])
	}
	if _, err := Pause(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing pause binary: no error")
	}
	if err := os.Chmod(bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Pause(bin); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("a non-executable pause binary: %v", err)
	}
}
