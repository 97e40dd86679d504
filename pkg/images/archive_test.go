package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// readTar returns the headers and contents of a tar, in order.
func readTar(t *testing.T, data []byte) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	var hdrs []*tar.Header
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, files
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, hdr)
		files[hdr.Name] = b
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func blobName(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

func testImage(t *testing.T) *Image {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "tool")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho tool\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := NewLayer()
	for _, err := range []error{
		l.AddFile("/usr/local/bin/nnp", src, 0o755|fs.ModeSetuid),
		l.AddData("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644),
		l.AddDir("/tmp", 0o777|fs.ModeSticky),
		l.AddSymlink("/bin/sh", "busybox"),
		l.Add(Entry{Path: "/home/user/.profile", Data: []byte("x"), Mode: 0o600, UID: 1000, GID: 1000}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return &Image{
		Name:   "registry.k8s.io/e2e-test-images/test:1.0",
		Layers: []*Layer{l},
		Config: Config{Entrypoint: []string{"/usr/local/bin/nnp"}, Cmd: []string{"-v"}, User: "65534", Env: []string{"A=b"}, WorkingDir: "/tmp", ExposedPorts: []string{"80/tcp"}},
	}
}

func TestWriteArchive(t *testing.T) {
	img := testImage(t)
	var buf bytes.Buffer
	written, err := WriteArchive(&buf, img, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hdrs, files := readTar(t, buf.Bytes())
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}

	// index.json → manifest → config and layer, each under its digest.
	var idx indexFile
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != MediaTypeIndex || len(idx.Manifests) != 1 {
		t.Fatalf("index.json = %s", files["index.json"])
	}
	md := idx.Manifests[0]
	wantAnn := map[string]string{AnnotationImageName: img.Name, AnnotationRefName: "1.0"}
	if !reflect.DeepEqual(md.Annotations, wantAnn) {
		t.Errorf("annotations = %v, want %v", md.Annotations, wantAnn)
	}
	if md.Platform == nil || md.Platform.Architecture != runtime.GOARCH || md.Platform.OS != runtime.GOOS {
		t.Errorf("platform = %+v", md.Platform)
	}
	mfJSON := files[blobName(md.Digest)]
	if sha(mfJSON) != md.Digest || int64(len(mfJSON)) != md.Size || md.Digest != written.Manifest.Digest {
		t.Fatalf("manifest blob %s: digest or size mismatch (%d bytes)", md.Digest, len(mfJSON))
	}
	var mf manifestFile
	if err := json.Unmarshal(mfJSON, &mf); err != nil {
		t.Fatal(err)
	}
	if mf.MediaType != MediaTypeManifest || mf.Config.MediaType != MediaTypeConfig || len(mf.Layers) != 1 || mf.Layers[0].MediaType != MediaTypeLayer {
		t.Fatalf("manifest = %s", mfJSON)
	}
	cfgJSON := files[blobName(mf.Config.Digest)]
	if sha(cfgJSON) != mf.Config.Digest || mf.Config.Digest != written.ConfigDigest {
		t.Fatalf("config blob digest mismatch")
	}
	layer := files[blobName(mf.Layers[0].Digest)]
	if sha(layer) != mf.Layers[0].Digest || int64(len(layer)) != mf.Layers[0].Size {
		t.Fatalf("layer blob digest or size mismatch")
	}

	var cfg configFile
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != runtime.GOARCH || cfg.OS != runtime.GOOS || cfg.Created != "1970-01-01T00:00:00Z" {
		t.Errorf("config platform/created = %s %s %s", cfg.Architecture, cfg.OS, cfg.Created)
	}
	// Uncompressed: diff_id is the layer digest.
	if !reflect.DeepEqual(cfg.RootFS, rootFS{Type: "layers", DiffIDs: []string{mf.Layers[0].Digest}}) {
		t.Errorf("rootfs = %+v", cfg.RootFS)
	}
	if len(cfg.History) != 1 {
		t.Errorf("history = %+v", cfg.History)
	}
	wantCfg := runtimeConfig{
		User: "65534", Env: []string{"PATH=" + DefaultPath, "A=b"}, Entrypoint: []string{"/usr/local/bin/nnp"}, Cmd: []string{"-v"},
		WorkingDir: "/tmp", ExposedPorts: map[string]struct{}{"80/tcp": {}},
	}
	if !reflect.DeepEqual(cfg.Config, wantCfg) {
		t.Errorf("config = %+v, want %+v", cfg.Config, wantCfg)
	}
	for _, h := range hdrs {
		if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("archive entry %s: owner %d:%d mtime %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
	}

	// The layer's entries: parents made, in order, modes and owners kept.
	lh, lf := readTar(t, layer)
	type ent struct {
		name     string
		typ      byte
		mode     int64
		uid, gid int
		link     string
	}
	var got []ent
	for _, h := range lh {
		got = append(got, ent{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname})
		if h.ModTime.Unix() != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("layer entry %s: mtime %v, names %q:%q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
	}
	want := []ent{
		{"bin/", tar.TypeDir, 0o755, 0, 0, ""},
		{"bin/sh", tar.TypeSymlink, 0o777, 0, 0, "busybox"},
		{"etc/", tar.TypeDir, 0o755, 0, 0, ""},
		{"etc/passwd", tar.TypeReg, 0o644, 0, 0, ""},
		{"home/", tar.TypeDir, 0o755, 0, 0, ""},
		{"home/user/", tar.TypeDir, 0o755, 0, 0, ""},
		{"home/user/.profile", tar.TypeReg, 0o600, 1000, 1000, ""},
		{"tmp/", tar.TypeDir, 0o1777, 0, 0, ""},
		{"usr/", tar.TypeDir, 0o755, 0, 0, ""},
		{"usr/local/", tar.TypeDir, 0o755, 0, 0, ""},
		{"usr/local/bin/", tar.TypeDir, 0o755, 0, 0, ""},
		{"usr/local/bin/nnp", tar.TypeReg, 0o4755, 0, 0, ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer entries:\n got %v\nwant %v", got, want)
	}
	if string(lf["usr/local/bin/nnp"]) != "#!/bin/sh\necho tool\n" {
		t.Errorf("file content = %q", lf["usr/local/bin/nnp"])
	}
}

func TestWriteArchiveIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	img := testImage(t)
	wa, err := WriteArchive(&a, img, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Another instance of the same inputs, entries added in another order.
	img2 := testImage(t)
	l := NewLayer()
	paths := img2.Layers[0].Paths()
	for i := len(paths) - 1; i >= 0; i-- {
		if err := l.Add(img2.Layers[0].entries[paths[i]]); err != nil {
			t.Fatal(err)
		}
	}
	img2.Layers[0] = l
	wb, err := WriteArchive(&b, img2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || wa.Manifest.Digest != wb.Manifest.Digest {
		t.Fatalf("two writes of the same image differ: %s vs %s", wa.Manifest.Digest, wb.Manifest.Digest)
	}
	// And a change shows in the digest.
	img2.Config.Cmd = []string{"-h"}
	var c bytes.Buffer
	wc, err := WriteArchive(&c, img2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if wc.Manifest.Digest == wa.Manifest.Digest || wc.ConfigDigest == wa.ConfigDigest {
		t.Errorf("a changed Cmd kept the digests")
	}
	if !reflect.DeepEqual(wc.DiffIDs, wa.DiffIDs) {
		t.Errorf("a changed Cmd changed the layer")
	}
}

func TestWriteFileAndArchiveManifests(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "out", "test.tar")
	written, err := WriteFile(file, testImage(t))
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("WriteFile left %d files beside the archive (staged layers?)", len(entries))
	}
	ms, err := ArchiveManifests(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Digest != written.Manifest.Digest || ms[0].Annotations[AnnotationImageName] != "registry.k8s.io/e2e-test-images/test:1.0" {
		t.Errorf("ArchiveManifests = %+v", ms)
	}
	if _, err := ArchiveManifests(filepath.Join(dir, "missing.tar")); err == nil {
		t.Error("ArchiveManifests of a missing file: no error")
	}
}

func TestAddTree(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr", "bin", "su"), []byte("su"), 0o755))
	must(os.Chmod(filepath.Join(dir, "usr", "bin", "su"), 0o755|fs.ModeSetuid))
	must(os.Symlink("usr/bin", filepath.Join(dir, "bin")))
	l := NewLayer()
	must(l.AddTree(dir, "/"))
	var buf bytes.Buffer
	must(l.write(&buf, time.Unix(0, 0)))
	hdrs, files := readTar(t, buf.Bytes())
	modes := map[string]int64{}
	for _, h := range hdrs {
		modes[h.Name] = h.Mode
		if h.Name == "bin" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin") {
			t.Errorf("bin: type %c link %q", h.Typeflag, h.Linkname)
		}
	}
	if modes["usr/bin/su"] != 0o4755 || string(files["usr/bin/su"]) != "su" {
		t.Errorf("usr/bin/su: mode %o content %q; want setuid 4755", modes["usr/bin/su"], files["usr/bin/su"])
	}
	if _, ok := modes["usr/"]; !ok {
		t.Errorf("no usr/ entry: %v", modes)
	}
}

func TestBadInput(t *testing.T) {
	l := NewLayer()
	for _, e := range []Entry{
		{Path: ""},
		{Path: "/"},
		{Path: "../etc/passwd"},
		{Path: "a/../../b"},
		{Path: "/dev/null", Mode: fs.ModeDevice},
		{Path: "/bin/sh", Mode: fs.ModeSymlink},
		{Path: "/f", Source: "/x", Data: []byte("y")},
		{Path: "/f", UID: -1},
	} {
		if err := l.Add(e); err == nil {
			t.Errorf("Add(%+v): no error", e)
		}
	}
	// A file under a file cannot be extracted.
	if err := l.AddData("/a", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.AddData("/a/b", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteArchive(io.Discard, &Image{Name: "x:1", Layers: []*Layer{l}}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file under a file: %v", err)
	}
	// A source that is gone by the time the layer is written.
	l = NewLayer()
	if err := l.AddFile("/x", filepath.Join(t.TempDir(), "gone"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteArchive(io.Discard, &Image{Name: "x:1", Layers: []*Layer{l}}, t.TempDir()); err == nil {
		t.Error("missing source: no error")
	}
	for _, name := range []string{"", "Registry.k8s.io/Pause:3", "a b:1"} {
		if _, err := WriteArchive(io.Discard, &Image{Name: name}, t.TempDir()); err == nil {
			t.Errorf("image name %q: no error", name)
		}
	}
}

func TestTagOf(t *testing.T) {
	for name, want := range map[string]string{
		"registry.k8s.io/pause:3.10.2":        "3.10.2",
		"127.0.0.1:5000/busybox":              "latest",
		"busybox@sha256:abc":                  "latest",
		"localhost:5000/a/b:v1@sha256:abcd":   "v1",
		"registry.k8s.io/e2e-test-images/x":   "latest",
		"registry.k8s.io/e2e-test-images/x:2": "2",
	} {
		if got := tagOf(name); got != want {
			t.Errorf("tagOf(%q) = %q, want %q", name, got, want)
		}
	}
}
