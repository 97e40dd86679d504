package volume

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Upstream's masks for fsGroup ownership (pkg/volume/volume_linux.go).
const (
	rwMask   fs.FileMode = 0o660
	roMask   fs.FileMode = 0o440
	execMask fs.FileMode = 0o110
)

func fsGroupOf(pod *corev1.Pod) *int64 {
	if pod.Spec.SecurityContext == nil {
		return nil
	}
	return pod.Spec.SecurityContext.FSGroup
}

func fsGroupPolicyOf(pod *corev1.Pod) *corev1.PodFSGroupChangePolicy {
	if pod.Spec.SecurityContext == nil {
		return nil
	}
	return pod.Spec.SecurityContext.FSGroupChangePolicy
}

// fsUserOf is the one user every container of the pod runs as, nil when
// some container names none or they differ (upstream's FsUserFrom).
func fsUserOf(pod *corev1.Pod) *int64 {
	var user *int64
	var podUser *int64
	if pod.Spec.SecurityContext != nil {
		podUser = pod.Spec.SecurityContext.RunAsUser
	}
	check := func(sc *corev1.SecurityContext) bool {
		u := podUser
		if sc != nil && sc.RunAsUser != nil {
			u = sc.RunAsUser
		}
		if u == nil || (user != nil && *user != *u) {
			user = nil
			return false
		}
		user = u
		return true
	}
	for i := range pod.Spec.InitContainers {
		if !check(pod.Spec.InitContainers[i].SecurityContext) {
			return nil
		}
	}
	for i := range pod.Spec.Containers {
		if !check(pod.Spec.Containers[i].SecurityContext) {
			return nil
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if !check(pod.Spec.EphemeralContainers[i].SecurityContext) {
			return nil
		}
	}
	return user
}

// setOwnership gives everything below dir the group fsGroup, group
// read (and write unless readOnly) and setgid dirs, as upstream's
// SetVolumeOwnership; with OnRootMismatch it does nothing when the root
// already looks right. Symlinks are re-owned, never followed.
func setOwnership(dir string, fsGroup *int64, policy *corev1.PodFSGroupChangePolicy, readOnly bool) error {
	if fsGroup == nil {
		return nil
	}
	if policy != nil && *policy == corev1.FSGroupChangeOnRootMismatch && !rootNeedsChange(dir, *fsGroup, readOnly) {
		klog.V(3).InfoS("Skipping permission and ownership change for volume", "path", dir)
		return nil
	}
	gid := int(*fsGroup)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walking %s: %w", p, err)
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			klog.ErrorS(err, "Lchown failed", "path", p)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		mask := rwMask
		if readOnly {
			mask = roMask
		}
		if info.IsDir() {
			mask |= fs.ModeSetgid | execMask
		}
		if err := os.Chmod(p, info.Mode()|mask); err != nil {
			klog.ErrorS(err, "chmod failed", "path", p)
		}
		return nil
	})
}

func rootNeedsChange(dir string, fsGroup int64, readOnly bool) bool {
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return true
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || int64(st.Gid) != fsGroup {
		return true
	}
	want := rwMask
	if readOnly {
		want = roMask
	}
	want |= execMask
	return info.Mode().Perm()&want != want || info.Mode()&fs.ModeSetgid == 0
}
