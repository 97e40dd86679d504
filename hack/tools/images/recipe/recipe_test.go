package recipe

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeInputs makes a tiny rootfs, binaries and module dir.
func fakeInputs(t *testing.T) Inputs {
	t.Helper()
	d := t.TempDir()
	write := func(p, content string, mode os.FileMode) string {
		t.Helper()
		p = filepath.Join(d, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("rootfs/usr/bin/sh", "#!sh", 0o755)
	write("rootfs/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644)
	write("rootfs/etc/group", "root:x:0:\n", 0o644)
	write("rootfs/etc/resolv.conf", "nameserver 10.0.0.1\n", 0o644)
	write("rootfs/dev/null-ish", "x", 0o644)
	write("rootfs/var/log/dpkg.log", "log", 0o644)
	if err := os.Symlink("usr/bin", filepath.Join(d, "rootfs/bin")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"agnhost/porter/localhost.crt", "agnhost/porter/localhost.key",
		"nautilus/html/nautilus.jpg", "nautilus/html/data.json", "kitten/html/kitten.jpg", "kitten/html/data.json"} {
		write("k8s/test/images/"+f, f, 0o444)
	}
	return Inputs{
		Rootfs:          filepath.Join(d, "rootfs"),
		KubernetesDir:   filepath.Join(d, "k8s"),
		Agnhost:         write("bin/agnhost", "agnhost", 0o755),
		Nnp:             write("bin/nnp", "nnp", 0o755),
		SampleAPIServer: write("bin/sample-apiserver", "sample", 0o755),
		Etcd:            write("bin/etcd", "etcd", 0o755),
	}
}

type readImage struct {
	name   string
	config struct {
		Config struct {
			Entrypoint, Cmd []string
			Labels          map[string]string
		} `json:"config"`
	}
	configDigest string
	files        map[string]*tar.Header // merged over the layers
	contents     map[string]string
}

// readArchive reads an OCI archive back: the name, config and the files of
// all its layers.
func readArchive(t *testing.T, file string) readImage {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blobs := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		blobs[h.Name] = b
	}
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	mustJSON(t, blobs["index.json"], &idx)
	blob := func(d string) []byte { return blobs["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] }
	var mf struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	mustJSON(t, blob(idx.Manifests[0].Digest), &mf)
	img := readImage{name: idx.Manifests[0].Annotations["io.containerd.image.name"], configDigest: mf.Config.Digest,
		files: map[string]*tar.Header{}, contents: map[string]string{}}
	mustJSON(t, blob(mf.Config.Digest), &img.config)
	for _, l := range mf.Layers {
		lr := tar.NewReader(bytes.NewReader(blob(l.Digest)))
		for {
			h, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(lr)
			p := "/" + strings.TrimSuffix(h.Name, "/")
			img.files[p] = h
			img.contents[p] = string(b)
		}
	}
	return img
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

func writeAll(t *testing.T, in Inputs, dir string) map[string]readImage {
	t.Helper()
	rs, err := All(in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]readImage{}
	for _, r := range rs {
		if _, err := Write(dir, r); err != nil {
			t.Fatal(err)
		}
		out[r.Image.Name] = readArchive(t, filepath.Join(dir, r.File))
	}
	return out
}

func TestImages(t *testing.T) {
	in := fakeInputs(t)
	rs, err := All(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := Names(rs); !reflect.DeepEqual(got, Images) {
		t.Fatalf("All makes %v, Images says %v", got, Images)
	}
	imgs := writeAll(t, in, t.TempDir())

	for _, name := range []string{Agnhost, AgnhostPrev, Nginx, Nautilus, Kitten} {
		img := imgs[name]
		if img.name != name {
			t.Errorf("archive of %s names %q", name, img.name)
		}
		if ep := img.config.Config.Entrypoint; !reflect.DeepEqual(ep, []string{"/agnhost"}) {
			t.Errorf("%s: entrypoint %v", name, ep)
		}
		for _, p := range []string{"/agnhost", "/agnhost-2", "/localhost.crt", "/localhost.key", "/uploads", "/usr/bin/sh", "/bin"} {
			if img.files[p] == nil {
				t.Errorf("%s has no %s", name, p)
			}
		}
		if h := img.files["/agnhost-2"]; h != nil && h.Linkname != "agnhost" {
			t.Errorf("%s: /agnhost-2 → %q", name, h.Linkname)
		}
		if !strings.Contains(img.contents["/etc/passwd"], "root:x:0:0") ||
			!strings.Contains(img.contents["/etc/passwd"], "user-defined-in-image:x:1000:1000") ||
			!strings.Contains(img.contents["/etc/group"], "group-defined-in-image:x:50000:user-defined-in-image") {
			t.Errorf("%s: passwd %q group %q", name, img.contents["/etc/passwd"], img.contents["/etc/group"])
		}
		// What the runtime provides or mounts is left out, the dirs kept.
		for _, p := range []string{"/etc/resolv.conf", "/dev/null-ish", "/var/log/dpkg.log"} {
			if img.files[p] != nil {
				t.Errorf("%s holds %s", name, p)
			}
		}
		if img.files["/dev"] == nil || img.files["/var/log"] == nil {
			t.Errorf("%s lacks /dev or /var/log", name)
		}
	}
	cmd := func(name string) []string { return imgs[name].config.Config.Cmd }
	for name, want := range map[string][]string{
		Agnhost:         {"pause"},
		AgnhostPrev:     {"pause"},
		Nautilus:        {"test-webserver"},
		Kitten:          {"test-webserver"},
		Nonewprivs:      {"nnp"},
		GlibcDNSTesting: {"bash"},
		Etcd:            {"/usr/local/bin/etcd"},
	} {
		if !reflect.DeepEqual(cmd(name), want) {
			t.Errorf("%s: cmd %v, want %v", name, cmd(name), want)
		}
	}
	if !strings.Contains(strings.Join(cmd(Nginx), " "), "--http-port=80") {
		t.Errorf("nginx cmd %v does not serve port 80", cmd(Nginx))
	}
	if imgs[Agnhost].configDigest == imgs[AgnhostPrev].configDigest {
		t.Errorf("agnhost 2.66.1 and 2.55 have the same image ID")
	}
	if imgs[Nautilus].files["/nautilus.jpg"] == nil || imgs[Kitten].files["/kitten.jpg"] == nil || imgs[Kitten].files["/data.json"] == nil {
		t.Errorf("nautilus/kitten pages missing")
	}
	if !strings.Contains(imgs[Kitten].contents["/etc/os-release"], "Alpine Linux") {
		t.Errorf("kitten os-release: %q", imgs[Kitten].contents["/etc/os-release"])
	}
	if h := imgs[Nonewprivs].files["/usr/local/bin/nnp"]; h == nil || h.Mode&0o4000 == 0 || h.Uid != 0 {
		t.Errorf("nnp is not setuid root: %+v", h)
	}
	if ep := imgs[SampleAPIServer].config.Config.Entrypoint; !reflect.DeepEqual(ep, []string{"/sample-apiserver"}) {
		t.Errorf("sample-apiserver entrypoint %v", ep)
	}
	if imgs[Etcd].contents["/usr/local/bin/etcd"] != "etcd" || imgs[Etcd].files["/tmp"] == nil {
		t.Errorf("etcd image lacks /usr/local/bin/etcd or /tmp")
	}
	if imgs[Etcd].files["/usr/bin/sh"] != nil {
		t.Errorf("etcd image holds the Debian rootfs")
	}
}

func keys(t *testing.T, in Inputs) map[string]string {
	t.Helper()
	rs, err := All(in)
	if err != nil {
		t.Fatal(err)
	}
	k := map[string]string{}
	for _, r := range rs {
		k[r.Image.Name] = r.Key
	}
	return k
}

func TestKeysFollowInputs(t *testing.T) {
	in := fakeInputs(t)
	before := keys(t, in)
	if again := keys(t, in); !reflect.DeepEqual(before, again) {
		t.Fatalf("keys differ for the same inputs")
	}
	// A changed rootfs file changes the rootfs images only.
	if err := os.WriteFile(filepath.Join(in.Rootfs, "usr/bin/sh"), []byte("#!other sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	after := keys(t, in)
	for _, n := range []string{Agnhost, AgnhostPrev, Nginx, GlibcDNSTesting, Nautilus, Kitten} {
		if after[n] == before[n] {
			t.Errorf("%s: key unchanged after the rootfs changed", n)
		}
	}
	for _, n := range []string{Nonewprivs, SampleAPIServer, Etcd} {
		if after[n] != before[n] {
			t.Errorf("%s: key changed with the rootfs it does not hold", n)
		}
	}
	// A mode change counts too.
	if err := os.Chmod(in.Etcd, 0o700); err != nil {
		t.Fatal(err)
	}
	// etcd's mode in the image is fixed: the key must not change...
	if k := keys(t, in); k[Etcd] != after[Etcd] {
		t.Errorf("etcd key changed with a host mode the image does not use")
	}
	// ...but its content does.
	if err := os.WriteFile(in.Etcd, []byte("etcd 2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if k := keys(t, in); k[Etcd] == after[Etcd] || k[Agnhost] != after[Agnhost] {
		t.Errorf("etcd binary change: etcd key changed %v, agnhost key changed %v", k[Etcd] != after[Etcd], k[Agnhost] != after[Agnhost])
	}
}

func TestWriteSkipsUpToDate(t *testing.T) {
	in := fakeInputs(t)
	dir := t.TempDir()
	rs, err := All(in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Select(rs, []string{"etcd-3.7.0-0"})
	if err != nil || len(r) != 1 {
		t.Fatalf("Select: %v %v", r, err)
	}
	if wrote, err := Write(dir, r[0]); err != nil || !wrote {
		t.Fatalf("first Write: wrote %v, %v", wrote, err)
	}
	if wrote, err := Write(dir, r[0]); err != nil || wrote {
		t.Fatalf("second Write: wrote %v, %v", wrote, err)
	}
	// An archive without its key file (an interrupted write) is redone.
	if err := os.Remove(filepath.Join(dir, r[0].File+KeySuffix)); err != nil {
		t.Fatal(err)
	}
	if wrote, err := Write(dir, r[0]); err != nil || !wrote {
		t.Fatalf("Write after losing the key: wrote %v, %v", wrote, err)
	}
	if _, err := Select(rs, []string{"nope"}); err == nil {
		t.Errorf("Select of an unknown image did not fail")
	}
}

func TestMissingInput(t *testing.T) {
	in := fakeInputs(t)
	in.Etcd = filepath.Join(t.TempDir(), "missing")
	if _, err := All(in); err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("All with a missing etcd: %v", err)
	}
}

func TestArchiveFile(t *testing.T) {
	for in, want := range map[string]string{
		Agnhost:     "agnhost-2.66.1.tar",
		AgnhostPrev: "agnhost-2.55.tar",
		Etcd:        "etcd-3.7.0-0.tar",
	} {
		if got := ArchiveFile(in); got != want {
			t.Errorf("ArchiveFile(%s) = %s, want %s", in, got, want)
		}
	}
}
