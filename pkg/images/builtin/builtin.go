// Package builtin defines the images a skiff node builds from files on the
// host instead of pulling them: the sandbox (pause) image and the busybox
// image the e2e specs use, under their upstream names.
package builtin

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/pkg/images"
)

const (
	// PauseImage is upstream's sandbox image of Kubernetes v1.37.
	PauseImage = "registry.k8s.io/pause:3.10.2"
	// BusyboxImage is the busybox of the v1.37 e2e specs.
	BusyboxImage = "registry.k8s.io/e2e-test-images/busybox:1.37.0-2"

	// PauseArchive and BusyboxArchive are the archives' file names.
	PauseArchive   = "pause.tar"
	BusyboxArchive = "busybox.tar"

	// BashStaticBinary is Debian's bash-static, the busybox image's
	// /usr/bin/sh (`sh` by PATH) when present.
	BashStaticBinary = "/bin/bash-static"

	// DefaultBusyboxBinary is Debian's busybox-static.
	DefaultBusyboxBinary = "/bin/busybox"

	// BusyboxPath is the PATH of upstream's busybox image (Docker's
	// default), spelled out here because /usr/bin must come before /bin.
	BusyboxPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Pause is the pause image of the static pause binary (cmd/pause).
func Pause(pauseBinary string) (*images.Image, error) {
	if err := checkExecutable(pauseBinary); err != nil {
		return nil, fmt.Errorf("pause image: %w", err)
	}
	l := images.NewLayer()
	if err := l.AddFile("/pause", pauseBinary, 0o755); err != nil {
		return nil, err
	}
	return &images.Image{
		Name:   PauseImage,
		Layers: []*images.Layer{l},
		// As upstream's Dockerfile: an unprivileged user, no shell.
		Config: images.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
	}, nil
}

// passwd and group are upstream busybox image's root and nobody.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
	group  = "root:x:0:\nnobody:x:65534:\n"
)

// Busybox is the busybox image of a static busybox binary: /bin/busybox and
// a /bin/<applet> symlink for each applet it lists (specs run /bin/sh,
// /bin/true, /bin/sleep by path), bash-static as /usr/bin/sh when the host
// has it, root and nobody users, /tmp.
func Busybox(ctx context.Context, busyboxBinary string) (*images.Image, error) {
	if err := checkExecutable(busyboxBinary); err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	applets, err := Applets(ctx, busyboxBinary)
	if err != nil {
		return nil, err
	}
	l := images.NewLayer()
	for _, e := range []error{
		l.AddFile("/bin/busybox", busyboxBinary, 0o755),
		l.AddData("/etc/passwd", []byte(passwd), 0o644),
		l.AddData("/etc/group", []byte(group), 0o644),
		l.AddDir("/tmp", 0o777|os.ModeSticky),
		l.AddDir("/root", 0o700),
		l.AddDir("/home", 0o755),
		l.AddDir("/usr/sbin", 0o755),
		l.AddDir("/var", 0o755),
	} {
		if err := e; err != nil {
			return nil, err
		}
	}
	// Two specs want different shells. Debian's busybox 1.35 ash drops
	// environment variables whose names are not shell identifiers (envFrom
	// keys such as data-1), which the specs' busybox 1.37 passes on to
	// `sh -c env`; yet another spec runs /bin/sh by path and wants ash's
	// error text. So where the host has bash-static, `sh` found by PATH
	// (/usr/bin before /bin) is bash, and /bin/sh stays busybox's ash.
	// Busybox's own applets (env, xargs, ash) still run its sh: Debian
	// builds it to prefer applets over PATH.
	if err := checkExecutable(BashStaticBinary); err == nil {
		if err := l.AddFile("/usr/bin/bash", BashStaticBinary, 0o755); err != nil {
			return nil, err
		}
		if err := l.AddSymlink("/usr/bin/sh", "bash"); err != nil {
			return nil, err
		}
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		if err := l.AddSymlink("/bin/"+a, "busybox"); err != nil {
			return nil, err
		}
	}
	return &images.Image{
		Name:   BusyboxImage,
		Layers: []*images.Layer{l},
		Config: images.Config{Env: []string{"PATH=" + BusyboxPath}, Cmd: []string{"sh"}},
	}, nil
}

// Applets lists busybox's applets (`busybox --list`).
func Applets(ctx context.Context, busyboxBinary string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busyboxBinary, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busyboxBinary, err)
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		if a == "" {
			continue
		}
		if strings.ContainsAny(a, "/ ") || a == "." || a == ".." {
			return nil, fmt.Errorf("%s --list: unexpected applet name %q", busyboxBinary, a)
		}
		applets = append(applets, a)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list printed no applets", busyboxBinary)
	}
	return applets, nil
}

// Build writes both archives into dir (PauseArchive, BusyboxArchive) and
// returns their paths.
func Build(ctx context.Context, dir, pauseBinary, busyboxBinary string) ([]string, error) {
	pause, err := Pause(pauseBinary)
	if err != nil {
		return nil, err
	}
	busybox, err := Busybox(ctx, busyboxBinary)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, b := range []struct {
		img  *images.Image
		file string
	}{{pause, PauseArchive}, {busybox, BusyboxArchive}} {
		f := filepath.Join(dir, b.file)
		if _, err := images.WriteFile(f, b.img); err != nil {
			return nil, fmt.Errorf("writing %s: %w", b.img.Name, err)
		}
		files = append(files, f)
	}
	return files, nil
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
