// Package recipe defines the images the Kubernetes v1.37.2 conformance suite
// runs, under their upstream names, made from local files instead of pulled:
// a Debian rootfs in place of upstream's Alpine base and programs built from
// the upstream Go modules. Each image keeps what the specs rely on
// (entrypoint, default command, files at fixed paths, tools they exec).
package recipe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/pkg/images"
)

// version changes when a recipe changes in a way its inputs do not show, so
// that archives of an older recipe are rebuilt.
const version = "1"

// The images' upstream names (test/utils/image/manifest.go of v1.37.2).
const (
	Agnhost         = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
	AgnhostPrev     = "registry.k8s.io/e2e-test-images/agnhost:2.55"
	Nginx           = "registry.k8s.io/e2e-test-images/nginx:1.27.0-2"
	GlibcDNSTesting = "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1"
	Nautilus        = "registry.k8s.io/e2e-test-images/nautilus:1.8"
	Kitten          = "registry.k8s.io/e2e-test-images/kitten:1.8"
	Nonewprivs      = "registry.k8s.io/e2e-test-images/nonewprivs:1.4"
	SampleAPIServer = "registry.k8s.io/e2e-test-images/sample-apiserver:1.29.2"
	Etcd            = "registry.k8s.io/etcd:3.7.0-0"
)

// Images are the names All makes, in its order.
var Images = []string{Agnhost, AgnhostPrev, Nginx, GlibcDNSTesting, Nautilus, Kitten, Nonewprivs, SampleAPIServer, Etcd}

// NameLabel is set on every image to its name: images made of the same
// layers (agnhost 2.66.1 and 2.55) then still have distinct IDs, and a
// container's status reports the name it was started from.
const NameLabel = "dev.skiff.image.name"

// Inputs are the host files the images are made of.
type Inputs struct {
	// Rootfs is a Debian rootfs directory with the tools the specs exec
	// (hack/images.sh makes it with mmdebstrap).
	Rootfs string
	// KubernetesDir is the k8s.io/kubernetes@v1.37.2 module directory, for
	// agnhost's porter certificates and the nautilus and kitten pages.
	KubernetesDir string
	// Static binaries built from the upstream modules.
	Agnhost, Nnp, SampleAPIServer, Etcd string
}

// Recipe is one archive to write.
type Recipe struct {
	// File is the archive's file name.
	File  string
	Image *images.Image
	// Key digests everything the archive is made of.
	Key string
}

// ArchiveFile is the file name of an image's archive:
// "registry.k8s.io/e2e-test-images/agnhost:2.66.1" → "agnhost-2.66.1.tar".
func ArchiveFile(name string) string {
	base := name[strings.LastIndex(name, "/")+1:]
	return strings.ReplaceAll(base, ":", "-") + ".tar"
}

// rootfsSkip leaves out what a container runtime provides or mounts, and
// package caches.
var rootfsSkip = underAny(
	[]string{"dev", "proc", "sys", "run", "tmp", "var/cache/apt", "var/lib/apt/lists", "var/log"},
	[]string{"etc/resolv.conf", "etc/hostname", "etc/hosts", "etc/machine-id"},
)

// All returns every image's recipe.
func All(in Inputs) ([]Recipe, error) {
	for what, p := range map[string]string{
		"rootfs": in.Rootfs, "kubernetes module dir": in.KubernetesDir,
		"agnhost": in.Agnhost, "nnp": in.Nnp, "sample-apiserver": in.SampleAPIServer, "etcd": in.Etcd,
	} {
		if p == "" {
			return nil, fmt.Errorf("no %s given", what)
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	sums := fileSums{}

	rootfs := newLayer(sums)
	if err := rootfs.tree(in.Rootfs, rootfsSkip); err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", in.Rootfs, err)
	}
	agnhost, err := agnhostLayer(sums, in)
	if err != nil {
		return nil, err
	}
	agnhostConfig := images.Config{
		Entrypoint:   []string{"/agnhost"},
		Cmd:          []string{"pause"},
		ExposedPorts: []string{"80/tcp", "8080/tcp", "8081/tcp", "9376/tcp", "5000/tcp"},
	}

	var recipes []Recipe
	add := func(name string, cfg images.Config, layers ...*layer) {
		cfg.Labels = map[string]string{NameLabel: name}
		img := &images.Image{Name: name, Config: cfg}
		h := sha256.New()
		cfgJSON, _ := json.Marshal(cfg)
		fmt.Fprintf(h, "recipe %s\x00%s\x00%s\n", version, name, cfgJSON)
		for _, l := range layers {
			img.Layers = append(img.Layers, l.l)
			fmt.Fprintf(h, "layer %s\n", l.key())
		}
		recipes = append(recipes, Recipe{File: ArchiveFile(name), Image: img, Key: hex.EncodeToString(h.Sum(nil))})
	}

	add(Agnhost, agnhostConfig, rootfs, agnhost)
	add(AgnhostPrev, agnhostConfig, rootfs, agnhost)

	// No conformance spec looks at nginx itself: they need a pod that
	// stays up and serves HTTP on port 80.
	nginx := agnhostConfig
	nginx.Cmd = []string{"netexec", "--http-port=80", "--udp-port=-1"}
	nginx.ExposedPorts = []string{"80/tcp"}
	add(Nginx, nginx, rootfs, agnhost)

	// Upstream: debian bookworm-slim with dnsutils; the specs run their own
	// commands (dig, getent) in it.
	add(GlibcDNSTesting, images.Config{Cmd: []string{"bash"}}, rootfs)

	for _, p := range []struct{ name, dir, picture string }{
		{Nautilus, "nautilus", "nautilus.jpg"},
		{Kitten, "kitten", "kitten.jpg"},
	} {
		pages := newLayer(sums)
		html := filepath.Join(in.KubernetesDir, "test", "images", p.dir, "html")
		if err := pages.file("/"+p.picture, filepath.Join(html, p.picture), 0o644); err != nil {
			return nil, err
		}
		if err := pages.file("/data.json", filepath.Join(html, "data.json"), 0o644); err != nil {
			return nil, err
		}
		if p.name == Kitten {
			// The ImageVolume spec reads the image's os-release and expects
			// upstream's Alpine base.
			if err := pages.data("/etc/os-release", []byte(alpineOSRelease), 0o644); err != nil {
				return nil, err
			}
		}
		cfg := agnhostConfig
		cfg.Cmd = []string{"test-webserver"}
		add(p.name, cfg, rootfs, agnhost, pages)
	}

	nnp := newLayer(sums)
	if err := addMinimalBase(nnp); err != nil {
		return nil, err
	}
	// setuid root: the spec checks the effective uid with and without
	// allowPrivilegeEscalation.
	if err := nnp.file("/usr/local/bin/nnp", in.Nnp, 0o755|os.ModeSetuid); err != nil {
		return nil, err
	}
	add(Nonewprivs, images.Config{Cmd: []string{"nnp"}}, nnp)

	sample := newLayer(sums)
	if err := addMinimalBase(sample); err != nil {
		return nil, err
	}
	if err := sample.file("/sample-apiserver", in.SampleAPIServer, 0o755); err != nil {
		return nil, err
	}
	add(SampleAPIServer, images.Config{Entrypoint: []string{"/sample-apiserver"}}, sample)

	etcd := newLayer(sums)
	if err := addMinimalBase(etcd); err != nil {
		return nil, err
	}
	if err := etcd.file("/usr/local/bin/etcd", in.Etcd, 0o755); err != nil {
		return nil, err
	}
	if err := etcd.dir("/var/etcd", 0o700, 0, 0); err != nil {
		return nil, err
	}
	add(Etcd, images.Config{Cmd: []string{"/usr/local/bin/etcd"}}, etcd)

	return recipes, nil
}

const alpineOSRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.22.0
PRETTY_NAME="Alpine Linux v3.22"
HOME_URL="https://alpinelinux.org/"
`

// agnhostLayer holds what upstream's agnhost Dockerfile adds to its base:
// the binary, the agnhost-2 link, porter's certificates (a StatefulSet
// readiness probe fetches /localhost.crt), /uploads, and a user and group
// defined in the image (uid 1000 in gid 50000) for the supplemental groups
// specs.
func agnhostLayer(sums fileSums, in Inputs) (*layer, error) {
	l := newLayer(sums)
	porter := filepath.Join(in.KubernetesDir, "test", "images", "agnhost", "porter")
	passwd, err := os.ReadFile(filepath.Join(in.Rootfs, "etc", "passwd"))
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	group, err := os.ReadFile(filepath.Join(in.Rootfs, "etc", "group"))
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	passwd = append(passwd, "user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh\n"...)
	group = append(group, "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"...)
	for _, err := range []error{
		l.file("/agnhost", in.Agnhost, 0o755),
		l.symlink("/agnhost-2", "agnhost"),
		l.file("/localhost.crt", filepath.Join(porter, "localhost.crt"), 0o644),
		l.file("/localhost.key", filepath.Join(porter, "localhost.key"), 0o644),
		l.dir("/uploads", 0o755, 0, 0),
		l.data("/etc/passwd", passwd, 0o644),
		l.data("/etc/group", group, 0o644),
		l.dir("/home/user-defined-in-image", 0o755, 1000, 1000),
	} {
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

// addMinimalBase adds what a static program's image needs around it: root
// and nobody, a writable /tmp.
func addMinimalBase(l *layer) error {
	for _, err := range []error{
		l.data("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"), 0o644),
		l.data("/etc/group", []byte("root:x:0:\nnobody:x:65534:\n"), 0o644),
		l.dir("/tmp", 0o777|os.ModeSticky, 0, 0),
		l.dir("/root", 0o700, 0, 0),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
