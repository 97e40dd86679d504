// Package atomicwriter writes the files of configMap, secret, downwardAPI
// and projected volumes so that a reader sees either the old set or the new
// set, never a mix, as upstream's AtomicWriter (pkg/volume/util).
//
// Layout of a target directory:
//
//	..2026_12_04_10_20_30.123456789/  the current files (a timestamped dir)
//	..data -> ..2026_12_04_10_20_30.123456789
//	key    -> ..data/key             one symlink per top-level path
//
// An update writes a new timestamped dir, points a new symlink ..data_tmp
// at it and renames that over ..data (rename is atomic), then adds and
// prunes the top-level symlinks and removes the old dir.
package atomicwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

const (
	// DataDirName is the symlink to the current timestamped dir.
	DataDirName = "..data"
	// newDataDirName is the symlink renamed over DataDirName.
	newDataDirName = "..data_tmp"

	maxPathLength     = 4096
	maxFileNameLength = 255
)

// FileProjection is one file of a payload: its content, its mode, and the
// owner to give it (nil: leave it to the writer's user).
type FileProjection struct {
	Data   []byte
	Mode   int32
	FsUser *int64
}

// Writer writes payloads into one existing target directory.
type Writer struct {
	TargetDir string
	// LogContext names the volume in log lines (e.g. "pod ns/name volume v").
	LogContext string
	// Now dates the timestamped dirs; nil: time.Now.
	Now func() time.Time
}

// Write makes the target directory show exactly payload (paths relative to
// it). setPerms, when not nil, runs after the new files are written and
// before they become visible, with the new timestamped dir's name. changed
// tells whether anything on disk had to change.
func (w Writer) Write(payload map[string]FileProjection, setPerms func(tsDirName string) error) (changed bool, err error) {
	clean, err := validatePayload(payload)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(w.TargetDir); err != nil {
		return false, err
	}
	oldTsDir, err := w.currentTsDir()
	if err != nil {
		return false, err
	}
	w.removeLeftovers(oldTsDir)

	var stale map[string]bool
	write := true
	if oldTsDir != "" {
		oldTsPath := filepath.Join(w.TargetDir, oldTsDir)
		stale, err = pathsToRemove(clean, oldTsPath)
		if err != nil {
			return false, fmt.Errorf("listing the current files of %s: %w", w.TargetDir, err)
		}
		differs, err := payloadDiffers(clean, oldTsPath)
		if err != nil {
			return false, err
		}
		write = differs || len(stale) > 0
	}

	if write {
		changed = true
		tsDir, err := w.newTsDir()
		if err != nil {
			return false, err
		}
		tsName := filepath.Base(tsDir)
		if err := writePayload(clean, tsDir); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, err
		}
		if setPerms != nil {
			if err := setPerms(tsName); err != nil {
				_ = os.RemoveAll(tsDir)
				return false, fmt.Errorf("applying ownership to %s: %w", w.TargetDir, err)
			}
		}
		tmpLink := filepath.Join(w.TargetDir, newDataDirName)
		if err := os.Symlink(tsName, tmpLink); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("creating the symlink for an atomic update: %w", err)
		}
		if err := os.Rename(tmpLink, filepath.Join(w.TargetDir, DataDirName)); err != nil {
			_ = os.Remove(tmpLink)
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("renaming the symlink of the data directory: %w", err)
		}
	}

	made, err := w.createUserVisibleFiles(clean)
	if err != nil {
		return changed, fmt.Errorf("creating the visible symlinks in %s: %w", w.TargetDir, err)
	}
	changed = changed || made
	if err := w.removeUserVisiblePaths(stale); err != nil {
		return changed, fmt.Errorf("removing old visible symlinks in %s: %w", w.TargetDir, err)
	}
	if write && oldTsDir != "" {
		if err := os.RemoveAll(filepath.Join(w.TargetDir, oldTsDir)); err != nil {
			return changed, fmt.Errorf("removing the old data directory %s: %w", oldTsDir, err)
		}
	}
	if changed {
		klog.V(3).InfoS("Volume files updated", "volume", w.LogContext, "dir", w.TargetDir)
	}
	return changed, nil
}

// currentTsDir is the name ..data points at, "" before the first write.
// Only a plain ".."-dir name inside the target is accepted: what is
// removed later must never be outside it.
func (w Writer) currentTsDir() (string, error) {
	target, err := os.Readlink(filepath.Join(w.TargetDir, DataDirName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the data directory link in %s: %w", w.TargetDir, err)
	}
	if !isTsDirName(target) {
		return "", fmt.Errorf("the data directory link in %s points at %q, not at a timestamped directory", w.TargetDir, target)
	}
	return target, nil
}

func isTsDirName(name string) bool {
	return strings.HasPrefix(name, "..") && len(name) > 2 && name[2] >= '0' && name[2] <= '9' && !strings.ContainsRune(name, '/')
}

// removeLeftovers deletes what an interrupted write left behind: the
// temporary link and timestamped dirs that ..data does not point at.
func (w Writer) removeLeftovers(current string) {
	_ = os.Remove(filepath.Join(w.TargetDir, newDataDirName))
	entries, err := os.ReadDir(w.TargetDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && isTsDirName(e.Name()) && e.Name() != current {
			klog.V(2).InfoS("Removing a data directory left by an interrupted write", "volume", w.LogContext, "dir", e.Name())
			_ = os.RemoveAll(filepath.Join(w.TargetDir, e.Name()))
		}
	}
}

func (w Writer) newTsDir() (string, error) {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	dir, err := os.MkdirTemp(w.TargetDir, now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return "", fmt.Errorf("creating a data directory in %s: %w", w.TargetDir, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("setting the mode of %s: %w", dir, err)
	}
	return dir, nil
}

func validatePayload(payload map[string]FileProjection) (map[string]FileProjection, error) {
	clean := make(map[string]FileProjection, len(payload))
	for p, f := range payload {
		if err := ValidatePath(p); err != nil {
			return nil, err
		}
		clean[filepath.Clean(p)] = f
	}
	return clean, nil
}

// ValidatePath refuses what could land outside the target or clash with
// the writer's own entries, with upstream's messages.
func ValidatePath(p string) error {
	if p == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", p)
	}
	if path.IsAbs(p) {
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	}
	if len(p) > maxPathLength {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLength)
	}
	items := strings.Split(p, "/")
	for _, item := range items {
		if item == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(item) > maxFileNameLength {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", maxFileNameLength)
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	return nil
}

// payloadDiffers tells whether a file of payload is missing from dir or
// differs in content or mode.
func payloadDiffers(payload map[string]FileProjection, dir string) (bool, error) {
	for p, f := range payload {
		full := filepath.Join(dir, p)
		info, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if !info.Mode().IsRegular() || info.Mode().Perm() != fs.FileMode(f.Mode).Perm() {
			return true, nil
		}
		onDisk, err := os.ReadFile(full)
		if err != nil {
			return false, err
		}
		if !bytes.Equal(onDisk, f.Data) {
			return true, nil
		}
	}
	return false, nil
}

// pathsToRemove are the paths (files and dirs, relative) of oldTsDir that
// the new payload no longer has.
func pathsToRemove(payload map[string]FileProjection, oldTsDir string) (map[string]bool, error) {
	wanted := map[string]bool{}
	for p := range payload {
		for sub := p; sub != "." && sub != ""; sub = filepath.Dir(sub) {
			wanted[sub] = true
		}
	}
	stale := map[string]bool{}
	err := filepath.WalkDir(oldTsDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(oldTsDir, p)
		if err != nil || rel == "." {
			return err
		}
		if !wanted[rel] {
			stale[rel] = true
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return stale, err
}

func writePayload(payload map[string]FileProjection, dir string) error {
	for p, f := range payload {
		full := filepath.Join(dir, p)
		mode := fs.FileMode(f.Mode) & fs.ModePerm
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("creating the directory of %s: %w", p, err)
		}
		if err := os.WriteFile(full, f.Data, mode); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		// WriteFile's mode passes through the umask.
		if err := os.Chmod(full, mode); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", p, err)
		}
		if f.FsUser != nil {
			if err := os.Lchown(full, int(*f.FsUser), -1); err != nil {
				return fmt.Errorf("setting the owner of %s: %w", p, err)
			}
		}
	}
	return nil
}

// createUserVisibleFiles links each top-level path to ..data/<path>.
func (w Writer) createUserVisibleFiles(payload map[string]FileProjection) (made bool, err error) {
	for p, f := range payload {
		top, _, _ := strings.Cut(p, "/")
		visible := filepath.Join(w.TargetDir, top)
		if _, err := os.Lstat(visible); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Symlink(filepath.Join(DataDirName, top), visible); err != nil {
			return made, err
		}
		made = true
		if f.FsUser != nil {
			if err := os.Lchown(visible, int(*f.FsUser), -1); err != nil {
				return made, fmt.Errorf("setting the owner of %s: %w", visible, err)
			}
		}
	}
	return made, nil
}

// removeUserVisiblePaths removes the top-level symlinks of stale paths.
func (w Writer) removeUserVisiblePaths(stale map[string]bool) error {
	var last error
	for p := range stale {
		if strings.Contains(p, "/") {
			continue
		}
		visible := filepath.Join(w.TargetDir, p)
		// Only our own links: a nested mount point dir of the same name stays.
		if info, err := os.Lstat(visible); err != nil || info.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if err := os.Remove(visible); err != nil {
			klog.ErrorS(err, "Removing an old visible path", "volume", w.LogContext, "path", p)
			last = err
		}
	}
	return last
}
