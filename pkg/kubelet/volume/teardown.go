package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// TearDown unmounts the pod's tmpfs volumes and removes its volume dirs
// and subPath binds (<root>/pods/<uid>/volumes, .../volume-subpaths and
// .../plugins); the rest of the pod dir is
// the caller's. Nothing is removed while anything is still mounted below
// them, and symlinks are removed, never followed.
func (m *Manager) TearDown(ctx context.Context, uid types.UID) error {
	m.init()
	if err := validName(string(uid)); err != nil {
		return fmt.Errorf("pod uid: %w", err)
	}
	unlock := m.lockPod(uid)
	defer func() {
		unlock()
		m.mu.Lock()
		delete(m.podLocks, uid)
		m.mu.Unlock()
	}()
	podDir := filepath.Join(m.RootDir, "pods", string(uid))
	// The subPath binds first: they are mounts of the volumes' files.
	for _, sub := range []string{"volume-subpaths", "volumes", "plugins"} {
		dir := filepath.Join(podDir, sub)
		info, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !info.IsDir() {
			// Not ours to follow: only the entry itself goes.
			if err := os.Remove(dir); err != nil {
				return fmt.Errorf("removing %s: %w", dir, err)
			}
			continue
		}
		mounts, err := mountsUnder(dir)
		if err != nil {
			return fmt.Errorf("listing the mounts of pod %s: %w", uid, err)
		}
		for _, mp := range mounts {
			if err := unmount(mp); err != nil {
				return err
			}
			klog.V(3).InfoS("Volume unmounted", "podUID", uid, "path", mp)
		}
		if left, err := mountsUnder(dir); err != nil || len(left) > 0 {
			return fmt.Errorf("pod %s: still mounted after unmounting: %v (%v)", uid, left, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing the volumes of pod %s: %w", uid, err)
		}
	}
	m.forgetTokens(uid)
	return nil
}

// PodUIDs are the pods that have volume dirs on this node, for removing
// those of pods the node no longer runs (e.g. after a restart).
func (m *Manager) PodUIDs() ([]types.UID, error) {
	entries, err := os.ReadDir(filepath.Join(m.RootDir, "pods"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var uids []types.UID
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Lstat(filepath.Join(m.RootDir, "pods", e.Name(), "volumes")); err == nil {
			uids = append(uids, types.UID(e.Name()))
		}
	}
	return uids, nil
}
