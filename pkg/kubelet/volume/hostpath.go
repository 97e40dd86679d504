package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/storage/ephemeral"

	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
)

// pvcProtectionFinalizer keeps a claim in use from going away; a claim
// being deleted without it must not be mounted.
const pvcProtectionFinalizer = "kubernetes.io/pvc-protection"

// checkHostPath is upstream's hostPath SetUp: no ".." in the path, and the
// type check (creating the path for the *OrCreate types).
func checkHostPath(path string, pathType *corev1.HostPathType) error {
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return fmt.Errorf("invalid HostPath `%s`: must not contain '..'", path)
		}
	}
	if pathType == nil || *pathType == corev1.HostPathUnset {
		return nil
	}
	switch *pathType {
	case corev1.HostPathDirectoryOrCreate:
		if !exists(path) {
			if err := os.MkdirAll(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		}
		return typeIs(path, corev1.HostPathDirectory, "directory")
	case corev1.HostPathDirectory:
		return typeIs(path, corev1.HostPathDirectory, "directory")
	case corev1.HostPathFileOrCreate:
		if !exists(path) {
			f, err := os.OpenFile(path, os.O_CREATE, 0o644)
			if f != nil {
				f.Close()
			}
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		}
		return typeIs(path, corev1.HostPathFile, "file")
	case corev1.HostPathFile:
		return typeIs(path, corev1.HostPathFile, "file")
	case corev1.HostPathSocket:
		return typeIs(path, corev1.HostPathSocket, "socket file")
	case corev1.HostPathCharDev:
		return typeIs(path, corev1.HostPathCharDev, "character device")
	case corev1.HostPathBlockDev:
		return typeIs(path, corev1.HostPathBlockDev, "block device")
	}
	return fmt.Errorf("%s is an invalid volume type", *pathType)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// fileType is upstream hostutil's type of a path (symlinks followed).
func fileType(path string) (corev1.HostPathType, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("path %q does not exist", path)
	}
	if err != nil {
		return "", err
	}
	mode := info.Mode()
	switch {
	case mode.IsDir():
		return corev1.HostPathDirectory, nil
	case mode.IsRegular():
		return corev1.HostPathFile, nil
	case mode&fs.ModeSocket != 0:
		return corev1.HostPathSocket, nil
	case mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice != 0:
		return corev1.HostPathCharDev, nil
	case mode&fs.ModeDevice != 0:
		return corev1.HostPathBlockDev, nil
	}
	return "", errors.New("only recognise file, directory, socket, block device and character device")
}

// typeIs is upstream's typeMatchedOrError, with its messages.
func typeIs(path string, want corev1.HostPathType, expected string) error {
	got, err := fileType(path)
	if err != nil {
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: %w", path, expected, err)
	}
	if got != want {
		return fmt.Errorf("hostPath type check failed: %s is not a %s, it's a %s", path, expected, got)
	}
	return nil
}

// setUpClaim resolves a persistentVolumeClaim (or a generic ephemeral
// volume's claim) to its bound PersistentVolume, a hostPath or local one,
// with upstream's messages for what is not ready.
func (m *Manager) setUpClaim(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (containerspec.Mount, error) {
	claimName, readOnly := "", false
	if v.PersistentVolumeClaim != nil {
		claimName, readOnly = v.PersistentVolumeClaim.ClaimName, v.PersistentVolumeClaim.ReadOnly
	} else {
		claimName = ephemeral.VolumeClaimName(pod, v)
	}
	processing := func(err error) error {
		return &VolumeError{Volume: v.Name, Processing: true,
			Err: fmt.Errorf("error processing PVC %s/%s: %w", pod.Namespace, claimName, err)}
	}
	if m.Client == nil {
		return containerspec.Mount{}, processing(errors.New("no API client"))
	}
	pvc, err := m.Client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, claimName, metav1.GetOptions{})
	if err != nil {
		return containerspec.Mount{}, processing(fmt.Errorf("failed to fetch PVC from API server: %w", err))
	}
	if pvc.DeletionTimestamp != nil && !slices.Contains(pvc.Finalizers, pvcProtectionFinalizer) {
		return containerspec.Mount{}, processing(errors.New("PVC is being deleted"))
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		return containerspec.Mount{}, processing(errors.New("PVC is not bound"))
	}
	if pvc.Spec.VolumeName == "" {
		return containerspec.Mount{}, processing(errors.New("PVC has empty pvc.Spec.VolumeName"))
	}
	if v.Ephemeral != nil {
		if err := ephemeral.VolumeIsForPod(pod, pvc); err != nil {
			return containerspec.Mount{}, &VolumeError{Volume: v.Name, Processing: true, Err: err}
		}
	}
	pv, err := m.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return containerspec.Mount{}, processing(fmt.Errorf("failed to fetch PV %s from API server: %w", pvc.Spec.VolumeName, err))
	}
	if pv.Spec.ClaimRef == nil {
		return containerspec.Mount{}, processing(fmt.Errorf("found PV object %s but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim", pv.Name))
	}
	if pv.Spec.ClaimRef.UID != pvc.UID {
		return containerspec.Mount{}, processing(fmt.Errorf("found PV object %s but its pv.Spec.ClaimRef.UID %s does not point to claim.UID %s", pv.Name, pv.Spec.ClaimRef.UID, pvc.UID))
	}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return containerspec.Mount{}, processing(fmt.Errorf("volume %s has volumeMode Block, but is specified in volumeMounts", v.Name))
	}
	switch {
	case pv.Spec.HostPath != nil:
		if err := checkHostPath(pv.Spec.HostPath.Path, pv.Spec.HostPath.Type); err != nil {
			return containerspec.Mount{}, err
		}
		return containerspec.Mount{HostPath: pv.Spec.HostPath.Path, ReadOnly: readOnly}, nil
	case pv.Spec.Local != nil:
		path := pv.Spec.Local.Path
		info, err := os.Stat(path)
		if err != nil {
			return containerspec.Mount{}, fmt.Errorf("local volume %s: %w", pv.Name, err)
		}
		if !info.IsDir() {
			return containerspec.Mount{}, fmt.Errorf("local volume %s: %s is not a directory (block local volumes are not supported by this kubelet)", pv.Name, path)
		}
		// Upstream's local plugin gives a writable volume the fsGroup, once
		// per pod (a ready file marks it).
		ready := filepath.Join(m.RootDir, "pods", string(pod.UID), "plugins", "kubernetes.io~local-volume", v.Name, "ready")
		if _, err := os.Stat(ready); !readOnly && fsGroupOf(pod) != nil && err != nil {
			if err := setOwnership(path, fsGroupOf(pod), fsGroupPolicyOf(pod), false); err != nil {
				return containerspec.Mount{}, err
			}
			if err := os.MkdirAll(filepath.Dir(ready), 0o750); err != nil {
				return containerspec.Mount{}, err
			}
			if err := os.WriteFile(ready, nil, 0o600); err != nil {
				return containerspec.Mount{}, err
			}
		}
		return containerspec.Mount{HostPath: path, ReadOnly: readOnly}, nil
	}
	return containerspec.Mount{}, fmt.Errorf("persistent volume %s: only hostPath and local volumes are supported by this kubelet", pv.Name)
}
