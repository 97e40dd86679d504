package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// SubPath makes the subPath of one volume mount of a container safe to
// hand to the runtime, as upstream's subpather: the path is resolved
// inside the volume (symlinks allowed only while they stay inside it),
// created as a directory with the volume root's mode when missing, opened
// component by component without following symlinks (so a container
// swapping in a symlink meanwhile cannot redirect it), and bind-mounted at
// <root>/pods/<uid>/volume-subpaths/<volume>/<container>/<index>, the path
// returned for the runtime to mount. TearDown removes these mounts.
func (m *Manager) SubPath(pod *corev1.Pod, container string, mountIndex int, volumeName, volumePath, subPath string) (string, error) {
	for _, s := range []string{string(pod.UID), volumeName, container} {
		if err := validName(s); err != nil {
			return "", err
		}
	}
	base, err := filepath.EvalSymlinks(volumePath)
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", volumeName, err)
	}
	target := filepath.Join(base, subPath)
	if !within(target, base) {
		return "", fmt.Errorf("subpath %q not within volume path %q", target, base)
	}
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		info, err := os.Stat(base)
		if err != nil {
			return "", err
		}
		if err := safeMakeDir(base, subPath, info.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return "", fmt.Errorf("failed to create subPath directory for volumeMount %q of container %q: %w", volumeName, container, err)
		}
	}
	resolved, err := filepath.EvalSymlinks(target)
	if err != nil {
		return "", fmt.Errorf("subPath %s of volume %s: %w", subPath, volumeName, err)
	}
	if !within(resolved, base) {
		return "", fmt.Errorf("subpath %q not within volume path %q", resolved, base)
	}
	fd, err := openNoFollow(base, resolved)
	if err != nil {
		return "", fmt.Errorf("subPath %s of volume %s: %w", subPath, volumeName, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}

	dir := filepath.Join(m.RootDir, "pods", string(pod.UID), "volume-subpaths", volumeName, container)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	bind := filepath.Join(dir, strconv.Itoa(mountIndex))
	if fsType, err := mountOf(bind); err == nil && fsType != "" {
		// A restarted container gets a fresh bind of the path as it is now.
		if err := unmount(bind); err != nil {
			return "", err
		}
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if info, err := os.Lstat(bind); err == nil && info.IsDir() != isDir {
		if err := os.Remove(bind); err != nil {
			return "", err
		}
	}
	if isDir {
		if err := os.Mkdir(bind, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	} else {
		f, err := os.OpenFile(bind, os.O_CREATE|os.O_RDONLY, 0o640)
		if err != nil {
			return "", err
		}
		f.Close()
	}
	// /proc/self/fd/N is the very file opened above, whatever the path
	// names now.
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), bind, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind-mounting subPath %s of volume %s: %w", subPath, volumeName, err)
	}
	klog.V(3).InfoS("SubPath prepared", "pod", klog.KObj(pod), "volume", volumeName, "container", container, "subPath", subPath, "path", bind)
	return bind, nil
}

func within(p, base string) bool {
	return p == base || strings.HasPrefix(p, base+"/")
}

// safeMakeDir creates base/rel's missing directories with perm (not
// masked), refusing symlinks on the way.
func safeMakeDir(base, rel string, perm fs.FileMode) error {
	fd, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { unix.Close(fd) }()
	kernelPerm := uint32(perm & fs.ModePerm)
	if perm&fs.ModeSetgid != 0 {
		kernelPerm |= unix.S_ISGID
	}
	if perm&fs.ModeSticky != 0 {
		kernelPerm |= unix.S_ISVTX
	}
	for _, part := range strings.Split(filepath.Clean(rel), "/") {
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			return fmt.Errorf("%q leaves the volume", rel)
		}
		created := false
		if err := unix.Mkdirat(fd, part, kernelPerm); err == nil {
			created = true
		} else if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("cannot create directory %s: %w", part, err)
		}
		child, err := unix.Openat(fd, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cannot open %s: %w", part, err)
		}
		unix.Close(fd)
		fd = child
		if created {
			if err := unix.Fchmod(fd, kernelPerm); err != nil {
				return fmt.Errorf("chmod %s: %w", part, err)
			}
		}
	}
	return nil
}

// openNoFollow opens path (inside base, symlinks already resolved) one
// component at a time with O_NOFOLLOW: a symlink anywhere fails.
func openNoFollow(base, path string) (int, error) {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if rel == "." {
		return fd, nil
	}
	for _, part := range strings.Split(rel, "/") {
		child, err := unix.Openat(fd, part, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("opening %s: %w", part, err)
		}
		fd = child
	}
	// O_PATH|O_NOFOLLOW on a final symlink opens the link itself.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		unix.Close(fd)
		return -1, fmt.Errorf("%s changed into a symlink", path)
	}
	return fd, nil
}
