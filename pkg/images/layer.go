// Package images writes OCI image archives (an OCI image layout in a tar)
// that `ctr images import` and `skopeo copy oci-archive:` read, and imports
// them into containerd. It exists because a node here has no registry to pull
// from: the images a node needs are built from files on the host.
package images

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// Entry is one file, directory or symlink of a layer.
type Entry struct {
	// Path in the image; a leading "/" is optional.
	Path string
	// Mode: the type (0 for a regular file, fs.ModeDir, fs.ModeSymlink)
	// and the permission bits, with fs.ModeSetuid, fs.ModeSetgid and
	// fs.ModeSticky kept in the tar header.
	Mode fs.FileMode
	// Source is the host file a regular file's content comes from, read
	// when the layer is written; empty: Data.
	Source string
	// Data is a regular file's content when Source is empty.
	Data []byte
	// Linkname is a symlink's target.
	Linkname string
	// UID and GID are numeric owners (no user names are written).
	UID, GID int
}

// Layer is a set of entries, written as an uncompressed tar in path order
// with parent directories (0755, root) made for entries that lack them.
type Layer struct {
	entries map[string]Entry
}

// NewLayer returns an empty layer.
func NewLayer() *Layer { return &Layer{entries: map[string]Entry{}} }

// cleanPath returns p relative to the image root, or an error for a path
// that is empty or leaves the root.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("path %q: \"..\" is not allowed", p)
		}
	}
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if c == "" {
		return "", fmt.Errorf("path %q is the image root", p)
	}
	return c, nil
}

// Add adds e, replacing an entry of the same path.
func (l *Layer) Add(e Entry) error {
	p, err := cleanPath(e.Path)
	if err != nil {
		return err
	}
	switch e.Mode.Type() {
	case 0:
		if e.Source != "" && e.Data != nil {
			return fmt.Errorf("%s: both Source and Data are set", p)
		}
	case fs.ModeDir:
	case fs.ModeSymlink:
		if e.Linkname == "" {
			return fmt.Errorf("%s: symlink without a target", p)
		}
	default:
		return fmt.Errorf("%s: unsupported file type %v", p, e.Mode.Type())
	}
	if e.UID < 0 || e.GID < 0 {
		return fmt.Errorf("%s: negative owner %d:%d", p, e.UID, e.GID)
	}
	e.Path = p
	l.entries[p] = e
	return nil
}

// AddFile adds the host file source at p, owned by root.
func (l *Layer) AddFile(p, source string, mode fs.FileMode) error {
	return l.Add(Entry{Path: p, Source: source, Mode: mode &^ fs.ModeType})
}

// AddData adds a regular file with the given content, owned by root.
func (l *Layer) AddData(p string, data []byte, mode fs.FileMode) error {
	if data == nil {
		data = []byte{}
	}
	return l.Add(Entry{Path: p, Data: data, Mode: mode &^ fs.ModeType})
}

// AddDir adds a directory, owned by root.
func (l *Layer) AddDir(p string, mode fs.FileMode) error {
	return l.Add(Entry{Path: p, Mode: fs.ModeDir | mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)})
}

// AddSymlink adds a symlink p → target.
func (l *Layer) AddSymlink(p, target string) error {
	return l.Add(Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Linkname: target})
}

// AddTree adds everything under the host directory hostDir at imageDir,
// keeping modes (setuid included) and symlinks, owned by root. Devices,
// sockets and pipes are skipped: the runtime provides /dev.
func (l *Layer) AddTree(hostDir, imageDir string) error {
	return filepath.WalkDir(hostDir, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(hostDir, hp)
		if err != nil {
			return err
		}
		if rel == "." {
			if imageDir == "" || strings.Trim(imageDir, "/") == "" {
				return nil
			}
		}
		p := path.Join("/", imageDir, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode()
		switch mode.Type() {
		case 0:
			return l.AddFile(p, hp, mode)
		case fs.ModeDir:
			return l.AddDir(p, mode)
		case fs.ModeSymlink:
			target, err := os.Readlink(hp)
			if err != nil {
				return err
			}
			return l.AddSymlink(p, target)
		default:
			klog.V(2).InfoS("Skipping special file", "path", hp, "type", mode.Type().String())
			return nil
		}
	})
}

// Paths returns the layer's explicit entries in order (for tests and logs).
func (l *Layer) Paths() []string {
	ps := make([]string, 0, len(l.entries))
	for p := range l.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// tarMode is the tar header mode of m, setuid/setgid/sticky included.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// write writes the layer as a tar to w, every entry with mtime.
func (l *Layer) write(w io.Writer, mtime time.Time) error {
	all := make(map[string]Entry, len(l.entries))
	for p, e := range l.entries {
		all[p] = e
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, ok := all[dir]; ok {
				continue
			}
			if e, ok := l.entries[dir]; ok {
				all[dir] = e
				continue
			}
			all[dir] = Entry{Path: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	// Sorting puts each directory before what it holds ("a" < "a/b").
	sort.Strings(paths)

	tw := tar.NewWriter(w)
	for _, p := range paths {
		e := all[p]
		if e.Mode.Type() != fs.ModeDir {
			// A parent that is not a directory would make the tar unextractable.
			for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
				if all[dir].Mode.Type() != fs.ModeDir {
					return fmt.Errorf("%s: parent %s is not a directory", p, dir)
				}
			}
		}
		hdr := &tar.Header{
			Name:    p,
			Mode:    tarMode(e.Mode),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if err := writeEntry(tw, hdr, e); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return tw.Close()
}

// writeEntry writes one entry's header (completed from e) and content.
func writeEntry(tw *tar.Writer, hdr *tar.Header, e Entry) error {
	switch e.Mode.Type() {
	case fs.ModeDir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	case fs.ModeSymlink:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.Linkname
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag = tar.TypeReg
	if e.Source == "" {
		hdr.Size = int64(len(e.Data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.Data)
		return err
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("source %s is not a regular file", e.Source)
	}
	hdr.Size = st.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Source, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("source %s changed size while being written", e.Source)
	}
	return nil
}
