package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/volume/atomicwriter"
)

// defaultMode is the API's default of defaultMode.
const defaultMode int32 = 0o644

// setUpContent makes a configMap, secret, downwardAPI or projected volume:
// the contents are gathered first (a missing object leaves nothing
// behind), then written atomically into the volume's dir, a tmpfs except
// for configMaps, as upstream.
func (m *Manager) setUpContent(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, dir string) error {
	payload, err := m.payload(ctx, pod, v)
	if err != nil {
		return err
	}
	if err := m.makeVolumeDir(dir); err != nil {
		return err
	}
	if v.ConfigMap == nil {
		if err := m.contentTmpfs(ctx, pod, dir); err != nil {
			return err
		}
	}
	if err := makeNestedMountpoints(v.Name, dir, pod); err != nil {
		return err
	}
	fsGroup := fsGroupOf(pod)
	w := atomicwriter.Writer{TargetDir: dir, LogContext: fmt.Sprintf("pod %s/%s volume %s", pod.Namespace, pod.Name, v.Name), Now: m.Clock.Now}
	_, err = w.Write(payload, func(string) error {
		// The whole volume, not only the new dir: the first write also
		// makes the visible links outside it. Always read-only.
		return setOwnership(dir, fsGroup, nil, true)
	})
	return err
}

// contentTmpfs mounts the tmpfs of a secret, downwardAPI or projected
// volume; where mounting is impossible (no privilege) the plain dir is
// used and said once.
func (m *Manager) contentTmpfs(ctx context.Context, pod *corev1.Pod, dir string) error {
	size, err := m.memoryVolumeSize(ctx, pod, nil)
	if err != nil {
		return err
	}
	if err := m.ensureTmpfs(dir, size); err != nil {
		m.tmpfsFallback.Do(func() {
			klog.ErrorS(err, "Cannot mount tmpfs: secret, downwardAPI and projected volumes are plain directories on this node")
		})
	}
	return nil
}

func (m *Manager) payload(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (map[string]atomicwriter.FileProjection, error) {
	switch {
	case v.ConfigMap != nil:
		s := v.ConfigMap
		optional := s.Optional != nil && *s.Optional
		cm, err := m.configMap(ctx, pod.Namespace, s.Name, optional)
		if err != nil {
			return nil, err
		}
		return configMapPayload(s.Items, cm, modeOr(s.DefaultMode), optional)
	case v.Secret != nil:
		s := v.Secret
		optional := s.Optional != nil && *s.Optional
		secret, err := m.secret(ctx, pod.Namespace, s.SecretName, optional)
		if err != nil {
			return nil, err
		}
		return secretPayload(s.Items, secret, modeOr(s.DefaultMode), optional)
	case v.DownwardAPI != nil:
		return m.downwardAPIPayload(ctx, v.DownwardAPI.Items, pod, modeOr(v.DownwardAPI.DefaultMode))
	case v.Projected != nil:
		return m.projectedPayload(ctx, pod, v)
	}
	return nil, fmt.Errorf("volume %q has no contents", v.Name)
}

func modeOr(mode *int32) int32 {
	if mode == nil {
		return defaultMode
	}
	return *mode
}

// configMap reads one, a missing one as an empty object when optional.
// Not found reads as the kubelet's cache says it: `configmap "x" not found`.
func (m *Manager) configMap(ctx context.Context, namespace, name string, optional bool) (*corev1.ConfigMap, error) {
	cm, err := m.Sources.ConfigMap(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		if optional {
			return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}, nil
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
	}
	if err != nil {
		return nil, fmt.Errorf("getting configmap %s/%s: %w", namespace, name, err)
	}
	return cm, nil
}

func (m *Manager) secret(ctx context.Context, namespace, name string, optional bool) (*corev1.Secret, error) {
	s, err := m.Sources.Secret(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		if optional {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}, nil
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
	}
	if err != nil {
		return nil, fmt.Errorf("getting secret %s/%s: %w", namespace, name, err)
	}
	return s, nil
}

// apiSources reads ConfigMaps and Secrets straight from the API.
type apiSources struct{ client kubernetes.Interface }

func (a apiSources) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	if a.client == nil {
		return nil, errors.New("no API client")
	}
	return a.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a apiSources) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	if a.client == nil {
		return nil, errors.New("no API client")
	}
	return a.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func configMapPayload(items []corev1.KeyToPath, cm *corev1.ConfigMap, mode int32, optional bool) (map[string]atomicwriter.FileProjection, error) {
	payload := make(map[string]atomicwriter.FileProjection, len(cm.Data)+len(cm.BinaryData))
	if len(items) == 0 {
		for k, v := range cm.Data {
			payload[k] = atomicwriter.FileProjection{Data: []byte(v), Mode: mode}
		}
		for k, v := range cm.BinaryData {
			payload[k] = atomicwriter.FileProjection{Data: v, Mode: mode}
		}
		return payload, nil
	}
	for _, item := range items {
		var data []byte
		if s, ok := cm.Data[item.Key]; ok {
			data = []byte(s)
		} else if b, ok := cm.BinaryData[item.Key]; ok {
			data = b
		} else if optional {
			continue
		} else {
			return nil, fmt.Errorf("configmap references non-existent config key: %s", item.Key)
		}
		payload[item.Path] = atomicwriter.FileProjection{Data: data, Mode: itemMode(item.Mode, mode)}
	}
	return payload, nil
}

func secretPayload(items []corev1.KeyToPath, s *corev1.Secret, mode int32, optional bool) (map[string]atomicwriter.FileProjection, error) {
	payload := make(map[string]atomicwriter.FileProjection, len(s.Data))
	if len(items) == 0 {
		for k, v := range s.Data {
			payload[k] = atomicwriter.FileProjection{Data: v, Mode: mode}
		}
		return payload, nil
	}
	for _, item := range items {
		data, ok := s.Data[item.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("references non-existent secret key: %s", item.Key)
		}
		payload[item.Path] = atomicwriter.FileProjection{Data: data, Mode: itemMode(item.Mode, mode)}
	}
	return payload, nil
}

func itemMode(item *int32, def int32) int32 {
	if item != nil {
		return *item
	}
	return def
}

// downwardAPIPayload is upstream's CollectData: one file per item, every
// failing item reported.
func (m *Manager) downwardAPIPayload(ctx context.Context, items []corev1.DownwardAPIVolumeFile, pod *corev1.Pod, mode int32) (map[string]atomicwriter.FileProjection, error) {
	payload := make(map[string]atomicwriter.FileProjection, len(items))
	var errs []error
	for _, item := range items {
		f := atomicwriter.FileProjection{Mode: itemMode(item.Mode, mode)}
		switch {
		case item.FieldRef != nil:
			value, err := podFieldValue(pod, item.FieldRef.FieldPath)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.Data = []byte(value)
		case item.ResourceFieldRef != nil:
			alloc, err := m.allocatable(ctx)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			value, err := containerResourceValue(item.ResourceFieldRef, pod, alloc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.Data = []byte(value)
		}
		payload[filepath.Clean(item.Path)] = f
	}
	return payload, utilerrors.NewAggregate(errs)
}

// podFieldValue is the downward API's value of a pod field: upstream's
// ExtractFieldPathAsString for the fields a volume may name.
func podFieldValue(pod *corev1.Pod, fieldPath string) (string, error) {
	if path, key, ok := splitSubscript(fieldPath); ok {
		switch path {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		}
		return "", fmt.Errorf("fieldPath %q does not support subscript", fieldPath)
	}
	switch fieldPath {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
}

func splitSubscript(fieldPath string) (string, string, bool) {
	if !strings.HasSuffix(fieldPath, "']") {
		return "", "", false
	}
	path, key, ok := strings.Cut(strings.TrimSuffix(fieldPath, "']"), "['")
	if !ok || path == "" {
		return "", "", false
	}
	return path, key, true
}

// formatMap is the downward API's form of labels and annotations:
// key="quoted value" lines, sorted by key, no final newline.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, m[k])
	}
	return string(b)
}

// containerResourceValue is upstream's
// ExtractResourceValueByContainerNameAndNodeAllocatable: a container's
// request or limit over the divisor, rounded up; unset limits are the
// node's allocatable.
func containerResourceValue(ref *corev1.ResourceFieldSelector, pod *corev1.Pod, alloc corev1.ResourceList) (string, error) {
	var c *corev1.Container
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if c == nil && cs[i].Name == ref.ContainerName {
				c = cs[i].DeepCopy()
			}
		}
	}
	if c == nil {
		return "", fmt.Errorf("container %s not found", ref.ContainerName)
	}
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if q, ok := c.Resources.Limits[name]; !ok || q.IsZero() {
			if a, ok := alloc[name]; ok {
				c.Resources.Limits[name] = a.DeepCopy()
			}
		}
	}
	divisor := resource.MustParse("1")
	if !ref.Divisor.IsZero() {
		divisor = ref.Divisor
	}
	which, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (which != "limits" && which != "requests") {
		return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
	}
	list := c.Resources.Limits
	if which == "requests" {
		list = c.Resources.Requests
	}
	rn := corev1.ResourceName(name)
	switch {
	case rn == corev1.ResourceCPU:
		q := list[rn]
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case rn == corev1.ResourceMemory, rn == corev1.ResourceEphemeralStorage, strings.HasPrefix(name, corev1.ResourceHugePagesPrefix):
		q := list[rn]
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
}

// projectedPayload merges the sources, in order, into one payload;
// every failing source is reported.
func (m *Manager) projectedPayload(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (map[string]atomicwriter.FileProjection, error) {
	mode := modeOr(v.Projected.DefaultMode)
	payload := map[string]atomicwriter.FileProjection{}
	var errs []error
	merge := func(p map[string]atomicwriter.FileProjection, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for k, f := range p {
			payload[k] = f
		}
	}
	for i, src := range v.Projected.Sources {
		switch {
		case src.ConfigMap != nil:
			optional := src.ConfigMap.Optional != nil && *src.ConfigMap.Optional
			cm, err := m.configMap(ctx, pod.Namespace, src.ConfigMap.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			merge(configMapPayload(src.ConfigMap.Items, cm, mode, optional))
		case src.Secret != nil:
			optional := src.Secret.Optional != nil && *src.Secret.Optional
			s, err := m.secret(ctx, pod.Namespace, src.Secret.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			merge(secretPayload(src.Secret.Items, s, mode, optional))
		case src.DownwardAPI != nil:
			merge(m.downwardAPIPayload(ctx, src.DownwardAPI.Items, pod, mode))
		case src.ServiceAccountToken != nil:
			tp := src.ServiceAccountToken
			fsUser := fsUserOf(pod)
			tokenMode := mode
			// With an fsGroup the ownership change makes 0600 0640.
			if fsUser != nil || fsGroupOf(pod) != nil {
				tokenMode = 0o600
			}
			token, err := m.serviceAccountToken(ctx, pod, v.Name, tp)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			payload[tp.Path] = atomicwriter.FileProjection{Data: []byte(token), Mode: tokenMode, FsUser: fsUser}
		case src.ClusterTrustBundle != nil:
			errs = append(errs, fmt.Errorf("projected source %d: clusterTrustBundle projections are not supported by this kubelet", i))
		case src.PodCertificate != nil:
			errs = append(errs, fmt.Errorf("projected source %d: podCertificate projections are not supported by this kubelet", i))
		}
	}
	return payload, utilerrors.NewAggregate(errs)
}

// makeNestedMountpoints creates, inside the volume, the directories that
// other volumes of a container are mounted on below this one's mount path
// (upstream's MakeNestedMountpoints): the runtime cannot make them in a
// read-only volume. Never through a symlink.
func makeNestedMountpoints(name, dir string, pod *corev1.Pod) error {
	check := func(mounts []corev1.VolumeMount) error {
		var all, mine []string
		for _, vm := range mounts {
			p := filepath.Clean(vm.MountPath)
			all = append(all, p)
			if vm.Name == name {
				mine = append(mine, p)
			}
		}
		sort.Strings(all)
		for _, my := range mine {
			if strings.HasPrefix(my, "../") {
				return fmt.Errorf("invalid container mount point %v", my)
			}
			prefix := my + "/"
			var done []string
			for _, p := range all {
				if !strings.HasPrefix(p, prefix) {
					continue
				}
				nested := false
				for _, d := range done {
					if strings.HasPrefix(p, d) {
						nested = true
						break
					}
				}
				if nested {
					continue
				}
				done = append(done, p+"/")
				if err := mkdirNoFollow(dir, strings.TrimPrefix(p, prefix)); err != nil {
					return fmt.Errorf("unable to create nested volume mountpoints: %w", err)
				}
			}
		}
		return nil
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if err := check(cs[i].VolumeMounts); err != nil {
				return err
			}
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if err := check(pod.Spec.EphemeralContainers[i].VolumeMounts); err != nil {
			return err
		}
	}
	return nil
}

// mkdirNoFollow makes base/rel, refusing any symlink or ".." on the way.
func mkdirNoFollow(base, rel string) error {
	cur := base
	for _, part := range strings.Split(filepath.Clean(rel), "/") {
		if part == ".." {
			return fmt.Errorf("%q leaves the volume", rel)
		}
		if part == "." || part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		info, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return fmt.Errorf("%s is not a directory", cur)
		}
	}
	return nil
}
