// Package volume is the node side of a pod's volumes, as upstream's kubelet
// volume plugins (pkg/volume/{emptydir,configmap,secret,downwardapi,
// projected,hostpath,local}) and volume manager do it, much smaller: every
// volume of a pod made ready on the host before its containers start,
// configMap/secret/downwardAPI/projected contents kept current, and all of
// it removed when the pod leaves the node.
//
// Layout under the kubelet's root dir, as upstream's:
//
//	<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>
//	<root>/pods/<uid>/volumes/kubernetes.io~configmap/<name>
//	<root>/pods/<uid>/volumes/kubernetes.io~secret/<name>       (tmpfs)
//	<root>/pods/<uid>/volumes/kubernetes.io~downward-api/<name> (tmpfs)
//	<root>/pods/<uid>/volumes/kubernetes.io~projected/<name>    (tmpfs)
//	<root>/pods/<uid>/plugins/kubernetes.io~empty-dir/<name>/ready
//
// hostPath volumes and persistentVolumeClaims bound to hostPath or local
// PersistentVolumes are the host's paths themselves.
package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
	"github.com/skiff-dev/skiff/pkg/kubelet/volume/atomicwriter"
)

// Plugin directory names, upstream's escaped plugin names.
const (
	PluginEmptyDir    = "kubernetes.io~empty-dir"
	PluginConfigMap   = "kubernetes.io~configmap"
	PluginSecret      = "kubernetes.io~secret"
	PluginDownwardAPI = "kubernetes.io~downward-api"
	PluginProjected   = "kubernetes.io~projected"
)

// Manager sets up, refreshes and tears down the volumes of the node's
// pods. Its zero value plus the exported fields is ready; use it by
// pointer. Calls for different pods run concurrently, calls for one pod
// one after another.
type Manager struct {
	// Client reads claims, volumes and the node, and requests service
	// account tokens.
	Client kubernetes.Interface
	// RootDir is the kubelet's root dir (--root-dir).
	RootDir string
	// NodeName names the node whose allocatable sizes memory-backed
	// volumes and resourceFieldRef defaults.
	NodeName string
	// Clock times token rotation; nil: the real clock.
	Clock clock.Clock
	// Sources reads ConfigMaps and Secrets (e.g. from an informer cache);
	// nil: GETs through Client.
	Sources containerspec.Sources

	once          sync.Once
	mu            sync.Mutex
	podLocks      map[types.UID]*sync.Mutex
	tokens        map[tokenKey]*cachedToken
	alloc         cachedAllocatable
	tmpfsFallback sync.Once
}

func (m *Manager) init() {
	m.once.Do(func() {
		m.podLocks = map[types.UID]*sync.Mutex{}
		m.tokens = map[tokenKey]*cachedToken{}
		if m.Clock == nil {
			m.Clock = clock.RealClock{}
		}
		if m.Sources == nil {
			m.Sources = apiSources{m.Client}
		}
	})
}

func (m *Manager) lockPod(uid types.UID) func() {
	m.mu.Lock()
	l := m.podLocks[uid]
	if l == nil {
		l = &sync.Mutex{}
		m.podLocks[uid] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// VolumeError is one volume that could not be set up; Error() is the
// message of upstream's FailedMount event.
type VolumeError struct {
	Volume string
	// Processing: the volume could not even be resolved (e.g. an unbound
	// claim), upstream's "failed to process volumes".
	Processing bool
	Err        error
}

func (e *VolumeError) Error() string {
	if e.Processing {
		return e.Err.Error()
	}
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *VolumeError) Unwrap() error { return e.Err }

// Error lists the volumes of a pod that are not ready.
type Error struct {
	Volumes []*VolumeError
}

func (e *Error) Error() string {
	var unmounted, unprocessed, msgs []string
	for _, v := range e.Volumes {
		if v.Processing {
			unprocessed = append(unprocessed, v.Volume)
		} else {
			unmounted = append(unmounted, v.Volume)
		}
		msgs = append(msgs, v.Error())
	}
	return fmt.Sprintf("unmounted volumes=[%s], failed to process volumes=[%s]: %s",
		strings.Join(unmounted, " "), strings.Join(unprocessed, " "), strings.Join(msgs, "; "))
}

// SetUp makes every volume of pod ready on the host and returns them by
// volume name. It is idempotent: a volume already set up is left as it is
// (configMap, secret, downwardAPI and projected contents are brought up to
// date; when that fails the last contents stay and only Refresh reports
// it). When some volumes fail, the others are still returned, with an
// *Error naming the failed ones.
func (m *Manager) SetUp(ctx context.Context, pod *corev1.Pod) (map[string]containerspec.Mount, error) {
	m.init()
	if err := validName(string(pod.UID)); err != nil {
		return nil, fmt.Errorf("pod %s/%s: uid: %w", pod.Namespace, pod.Name, err)
	}
	defer m.lockPod(pod.UID)()
	mounts := make(map[string]containerspec.Mount, len(pod.Spec.Volumes))
	var failed []*VolumeError
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		mount, err := m.setUpVolume(ctx, pod, v, false)
		if err != nil && contentPlugin(v) != "" && mount.HostPath != "" && hasData(mount.HostPath) {
			// Set up before: the pod keeps the last contents, as upstream
			// keeps a mounted volume whose remount fails; Refresh reports it.
			klog.ErrorS(err, "Volume contents not updated, keeping the last ones", "pod", klog.KObj(pod), "volume", v.Name)
			err = nil
		}
		if err != nil {
			var ve *VolumeError
			if !errors.As(err, &ve) {
				ve = &VolumeError{Volume: v.Name, Err: err}
			}
			klog.ErrorS(err, "Volume not set up", "pod", klog.KObj(pod), "volume", v.Name)
			failed = append(failed, ve)
			continue
		}
		mounts[v.Name] = mount
	}
	if len(failed) > 0 {
		return mounts, &Error{Volumes: failed}
	}
	return mounts, nil
}

// Refresh rewrites the contents of the pod's configMap, secret,
// downwardAPI and projected volumes that SetUp made, from the objects as
// they are now and the pod as given (labels, annotations), atomically; a
// service account token is renewed when it is older than 80 % of its
// lifetime or 24 h. Nothing changes on disk when nothing changed. Call it
// on every pod sync or periodically.
func (m *Manager) Refresh(ctx context.Context, pod *corev1.Pod) error {
	m.init()
	if err := validName(string(pod.UID)); err != nil {
		return fmt.Errorf("pod %s/%s: uid: %w", pod.Namespace, pod.Name, err)
	}
	defer m.lockPod(pod.UID)()
	var failed []*VolumeError
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		plugin := contentPlugin(v)
		if plugin == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(m.RootDir, "pods", string(pod.UID), "volumes", plugin, v.Name)); err != nil {
			continue // not set up (yet): SetUp's business
		}
		if _, err := m.setUpVolume(ctx, pod, v, true); err != nil {
			klog.ErrorS(err, "Volume contents not refreshed", "pod", klog.KObj(pod), "volume", v.Name)
			failed = append(failed, &VolumeError{Volume: v.Name, Err: err})
		}
	}
	if len(failed) > 0 {
		return &Error{Volumes: failed}
	}
	return nil
}

// hasData tells whether an atomic writer already wrote into dir.
func hasData(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, atomicwriter.DataDirName))
	return err == nil
}

func contentPlugin(v *corev1.Volume) string {
	switch {
	case v.ConfigMap != nil:
		return PluginConfigMap
	case v.Secret != nil:
		return PluginSecret
	case v.DownwardAPI != nil:
		return PluginDownwardAPI
	case v.Projected != nil:
		return PluginProjected
	}
	return ""
}

func (m *Manager) volumeDir(uid types.UID, plugin, name string) (string, error) {
	if err := validName(name); err != nil {
		return "", fmt.Errorf("volume name: %w", err)
	}
	return filepath.Join(m.RootDir, "pods", string(uid), "volumes", plugin, name), nil
}

// validName refuses what is not one plain path component.
func validName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%q is not a valid path component", s)
	}
	return nil
}

func (m *Manager) setUpVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, refresh bool) (containerspec.Mount, error) {
	switch {
	case v.EmptyDir != nil:
		dir, err := m.volumeDir(pod.UID, PluginEmptyDir, v.Name)
		if err != nil {
			return containerspec.Mount{}, err
		}
		return containerspec.Mount{HostPath: dir}, m.setUpEmptyDir(ctx, pod, v, dir)
	case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
		dir, err := m.volumeDir(pod.UID, contentPlugin(v), v.Name)
		if err != nil {
			return containerspec.Mount{}, err
		}
		return containerspec.Mount{HostPath: dir, ReadOnly: true}, m.setUpContent(ctx, pod, v, dir)
	case v.HostPath != nil:
		if err := checkHostPath(v.HostPath.Path, v.HostPath.Type); err != nil {
			return containerspec.Mount{}, err
		}
		return containerspec.Mount{HostPath: v.HostPath.Path}, nil
	case v.PersistentVolumeClaim != nil, v.Ephemeral != nil:
		return m.setUpClaim(ctx, pod, v)
	}
	return containerspec.Mount{}, fmt.Errorf("volume %q: %s volumes are not supported by this kubelet", v.Name, sourceKind(v))
}

func sourceKind(v *corev1.Volume) string {
	switch {
	case v.NFS != nil:
		return "nfs"
	case v.CSI != nil:
		return "csi"
	case v.Image != nil:
		return "image"
	case v.ISCSI != nil:
		return "iscsi"
	case v.GitRepo != nil:
		return "gitRepo"
	}
	return "these"
}
