package recipe

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/skiff-dev/skiff/pkg/images"
)

// fileSums memoizes the content digests of host files: several images share
// the same rootfs and binaries, and hashing the rootfs is the slow part of
// deciding whether an archive is up to date.
type fileSums map[string]string

func (s fileSums) sum(file string) (string, error) {
	if d, ok := s[file]; ok {
		return d, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", file, err)
	}
	d := hex.EncodeToString(h.Sum(nil))
	s[file] = d
	return d, nil
}

// layer is an images.Layer that also digests what it is made of (paths,
// modes, owners, link targets and file contents), so that an archive is
// rebuilt exactly when one of its inputs changed.
type layer struct {
	l    *images.Layer
	h    hash.Hash
	sums fileSums
}

func newLayer(sums fileSums) *layer {
	return &layer{l: images.NewLayer(), h: sha256.New(), sums: sums}
}

// key is the digest of everything added so far.
func (b *layer) key() string { return hex.EncodeToString(b.h.Sum(nil)) }

func (b *layer) add(e images.Entry) error {
	content := ""
	switch {
	case e.Source != "":
		d, err := b.sums.sum(e.Source)
		if err != nil {
			return err
		}
		content = d
	case e.Mode.Type() == 0:
		sum := sha256.Sum256(e.Data)
		content = hex.EncodeToString(sum[:])
	}
	fmt.Fprintf(b.h, "%s\x00%o\x00%d:%d\x00%s\x00%s\n", e.Path, uint32(e.Mode), e.UID, e.GID, e.Linkname, content)
	return b.l.Add(e)
}

func (b *layer) file(p, source string, mode fs.FileMode) error {
	return b.add(images.Entry{Path: p, Source: source, Mode: mode &^ fs.ModeType})
}

func (b *layer) data(p string, data []byte, mode fs.FileMode) error {
	if data == nil {
		data = []byte{}
	}
	return b.add(images.Entry{Path: p, Data: data, Mode: mode &^ fs.ModeType})
}

func (b *layer) dir(p string, mode fs.FileMode, uid, gid int) error {
	return b.add(images.Entry{Path: p, Mode: fs.ModeDir | mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), UID: uid, GID: gid})
}

func (b *layer) symlink(p, target string) error {
	return b.add(images.Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Linkname: target})
}

// tree adds the host directory hostDir as the image root, keeping modes
// (setuid included), numeric owners and symlinks. Entries for which skip
// returns true (given the slash-separated path relative to hostDir) are left
// out with everything under them; devices, sockets and pipes are left out
// too: the runtime provides /dev.
func (b *layer) tree(hostDir string, skip func(rel string) bool) error {
	// WalkDir visits in lexical order, so the digest does not depend on
	// the order the file system lists entries in.
	return filepath.WalkDir(hostDir, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(hostDir, hp)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		uid, gid := 0, 0
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
		e := images.Entry{Path: "/" + rel, Mode: info.Mode(), UID: uid, GID: gid}
		switch info.Mode().Type() {
		case 0:
			e.Source = hp
		case fs.ModeDir:
		case fs.ModeSymlink:
			target, err := os.Readlink(hp)
			if err != nil {
				return err
			}
			e.Linkname = target
		default:
			return nil
		}
		return b.add(e)
	})
}

// underAny returns a skip function for tree that leaves out the contents of
// the given directories (the directories themselves stay) and the given
// files.
func underAny(dirs, files []string) func(string) bool {
	sort.Strings(dirs)
	return func(rel string) bool {
		for _, f := range files {
			if rel == f {
				return true
			}
		}
		for _, d := range dirs {
			if strings.HasPrefix(rel, d+"/") && path.Clean(rel) != d {
				return true
			}
		}
		return false
	}
}
