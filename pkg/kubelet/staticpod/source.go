// Package staticpod is the kubelet's static pods: pods read from manifest
// files in --pod-manifest-path instead of the API, named, identified and
// annotated as upstream's file source does (k8s.io/kubernetes
// pkg/kubelet/config), and their mirror pods in the API (Mirrors), the
// read-only copies through which the API sees them.
package staticpod

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/dump"

	"github.com/skiff-dev/skiff/pkg/apis/core"
	"github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// Upstream kubelet's annotations of static and mirror pods.
const (
	// ConfigSourceAnnotation says where the kubelet got the pod: "file".
	ConfigSourceAnnotation = "kubernetes.io/config.source"
	// ConfigHashAnnotation is the pod's hash, its UID.
	ConfigHashAnnotation = "kubernetes.io/config.hash"
	// ConfigSeenAnnotation is when the kubelet first saw the pod.
	ConfigSeenAnnotation = "kubernetes.io/config.seen"
	// ConfigMirrorAnnotation marks a mirror pod, with its static pod's
	// hash (corev1.MirrorPodAnnotationKey).
	ConfigMirrorAnnotation = corev1.MirrorPodAnnotationKey
	// FileSource is the source annotation's value for manifest files.
	FileSource = "file"
	// DefaultCheckFrequency is upstream's --file-check-frequency.
	DefaultCheckFrequency = 20 * time.Second
)

// Options say where the manifests are.
type Options struct {
	// Path is --pod-manifest-path: a directory of manifests (files whose
	// names start with "." are skipped, subdirectories are not read) or
	// one manifest file.
	Path string
	// NodeName suffixes the pods' names and is their spec.nodeName.
	NodeName string
	// CheckFrequency is how often Path is read again; default 20s.
	CheckFrequency time.Duration
	Clock          clock.Clock
}

// Source is the static pods of a manifest path.
type Source struct {
	o Options

	mu      sync.Mutex
	changes []chan struct{}
	pods    []*corev1.Pod
	// seen is when each pod (by UID) was first read.
	seen map[types.UID]string
	// digest of what was read last, to tell a change.
	digest string
}

// NewSource is the static pods of o.Path; nothing is read before Run or
// Refresh.
func NewSource(o Options) (*Source, error) {
	if o.Path == "" {
		return nil, errors.New("staticpod: no manifest path")
	}
	if o.NodeName == "" {
		return nil, errors.New("staticpod: no node name")
	}
	if o.CheckFrequency <= 0 {
		o.CheckFrequency = DefaultCheckFrequency
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Source{o: o, seen: map[types.UID]string{}}, nil
}

// Run reads the manifests now and every CheckFrequency until ctx ends.
func (s *Source) Run(ctx context.Context) {
	wait.UntilWithContext(ctx, func(ctx context.Context) { s.Refresh(ctx) }, s.o.CheckFrequency)
}

// Changes is a new subscription to the pods' changes: it gets a value
// after they changed (changes coalesce: read Pods then).
func (s *Source) Changes() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.changes = append(s.changes, ch)
	s.mu.Unlock()
	return ch
}

// Pods are the static pods read last, by file name (copies).
func (s *Source) Pods() []*corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*corev1.Pod, len(s.pods))
	for i, p := range s.pods {
		out[i] = p.DeepCopy()
	}
	return out
}

// Refresh reads the manifests; true: the pods changed. A manifest that
// cannot be read or is not a valid pod is logged and left out (its pod
// stops), as upstream.
func (s *Source) Refresh(ctx context.Context) bool {
	logger := klog.FromContext(ctx)
	pods := s.read(logger)
	h := sha256.New()
	for _, p := range pods {
		fmt.Fprintf(h, "%s/%s/%s\n", p.Namespace, p.Name, p.UID)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	now := s.o.Clock.Now().Format(time.RFC3339Nano)
	seen := map[types.UID]string{}
	for _, p := range pods {
		first := s.seen[p.UID]
		if first == "" {
			first = now
		}
		seen[p.UID] = first
		p.Annotations[ConfigSourceAnnotation] = FileSource
		p.Annotations[ConfigSeenAnnotation] = first
	}
	s.seen = seen
	changed := digest != s.digest
	s.pods, s.digest = pods, digest
	subscribers := s.changes
	s.mu.Unlock()
	if changed {
		logger.V(2).Info("Static pods changed", "path", s.o.Path, "pods", len(pods))
		for _, ch := range subscribers {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	return changed
}

func (s *Source) read(logger klog.Logger) []*corev1.Pod {
	info, err := os.Stat(s.o.Path)
	if err != nil {
		if os.IsNotExist(err) {
			logger.V(4).Info("Static pod manifest path does not exist", "path", s.o.Path)
		} else {
			logger.Error(err, "Reading the static pod manifest path", "path", s.o.Path)
		}
		return nil
	}
	files := []string{s.o.Path}
	if info.IsDir() {
		if files, err = filepath.Glob(filepath.Join(s.o.Path, "[^.]*")); err != nil {
			logger.Error(err, "Listing the static pod manifests", "path", s.o.Path)
			return nil
		}
		sort.Strings(files)
	}
	var pods []*corev1.Pod
	names := map[string]string{}
	for _, f := range files {
		st, err := os.Stat(f)
		switch {
		case err != nil:
			continue
		case st.IsDir():
			logger.Error(nil, "Provided manifest path is a directory, not recursing into manifest path", "path", f)
			continue
		case !st.Mode().IsRegular():
			logger.Error(nil, "Manifest path is not a directory or file", "path", f, "mode", st.Mode())
			continue
		}
		got, err := ReadManifest(f, s.o.NodeName)
		if err != nil {
			logger.Error(err, "Could not process manifest file", "path", f)
			continue
		}
		for _, p := range got {
			key := p.Namespace + "/" + p.Name
			if other, dup := names[key]; dup {
				logger.Error(nil, "Static pod of this name read already; ignored", "pod", klog.KObj(p), "path", f, "first", other)
				continue
			}
			names[key] = f
			pods = append(pods, p)
		}
	}
	return pods
}

// ReadManifest reads the pods of one manifest file (YAML or JSON: a Pod,
// a PodList, or several YAML documents) with upstream's defaults for a
// node: name <name>-<node>, namespace default, spec.nodeName, a UID
// hashed from the pod, node and file (also the config.hash annotation),
// a toleration of every NoExecute taint, phase Pending.
func ReadManifest(file, nodeName string) ([]*corev1.Pod, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return decode(data, file, nodeName)
}

func decode(data []byte, file, nodeName string) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	reader := utilyaml.NewYAMLReader(bufioReader(data))
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || isComment(doc) {
			continue
		}
		jsonDoc, err := utilyaml.ToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(jsonDoc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		switch o := obj.(type) {
		case *corev1.Pod:
			pods = append(pods, o)
		case *corev1.PodList:
			for i := range o.Items {
				pods = append(pods, &o.Items[i])
			}
		default:
			return nil, fmt.Errorf("invalid pod: %s holds a %T, not a Pod", file, obj)
		}
	}
	for _, p := range pods {
		if err := applyDefaults(p, file, nodeName); err != nil {
			return nil, err
		}
	}
	return pods, nil
}

func isComment(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}

// applyDefaults makes a decoded manifest the node's static pod, as
// upstream's file source, and checks it as the API would.
func applyDefaults(pod *corev1.Pod, file, nodeName string) error {
	if pod.Name == "" {
		return errors.New("invalid pod: name is needed for the pod")
	}
	core.SetObjectDefaultsPod(pod)
	if pod.UID == "" {
		pod.UID = hashUID(pod, file, nodeName)
	}
	pod.Name = fmt.Sprintf("%s-%s", pod.Name, strings.ToLower(nodeName))
	if pod.Namespace == "" {
		pod.Namespace = corev1.NamespaceDefault
	}
	pod.Spec.NodeName = nodeName
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[ConfigHashAnnotation] = string(pod.UID)
	addToleration(pod, corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})
	pod.Status.Phase = corev1.PodPending

	if errs := utilvalidation.IsDNS1123Subdomain(pod.Name); len(errs) > 0 {
		return fmt.Errorf("invalid pod: metadata.name %q: %s", pod.Name, strings.Join(errs, "; "))
	}
	if errs := validation.ValidatePod(pod); len(errs) > 0 {
		return fmt.Errorf("invalid pod: %v", errs.ToAggregate())
	}
	resource, err := apiObjectReference(pod)
	if err != nil {
		return err
	}
	if resource != "" {
		return fmt.Errorf("static pods may not reference %s", resource)
	}
	return nil
}

// hashUID is upstream's UID of a static pod: a 128-bit FNV-1a hash of the
// defaulted pod, the node and the file. (Upstream hashes its internal
// type; this hashes the v1 Pod, so the values differ from upstream's.)
func hashUID(pod *corev1.Pod, file, nodeName string) types.UID {
	h := fnv.New128a()
	fmt.Fprintf(h, "%v", dump.ForHash(pod))
	fmt.Fprintf(h, "host:%s", nodeName)
	fmt.Fprintf(h, "file:%s", file)
	return types.UID(hex.EncodeToString(h.Sum(nil)))
}

// addToleration adds t unless the pod tolerates the same key and effect.
func addToleration(pod *corev1.Pod, t corev1.Toleration) {
	for i, have := range pod.Spec.Tolerations {
		if have.Key == t.Key && have.Effect == t.Effect && have.Operator == t.Operator {
			pod.Spec.Tolerations[i] = t
			return
		}
	}
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
}

// apiObjectReference names what a static pod references that only the
// API has, as upstream's HasAPIObjectReference ("" if nothing).
func apiObjectReference(pod *corev1.Pod) (string, error) {
	if pod.Spec.ServiceAccountName != "" {
		return "serviceaccounts", nil
	}
	if len(pod.Spec.ImagePullSecrets) > 0 {
		return "secrets", nil
	}
	var containers []corev1.Container
	containers = append(containers, pod.Spec.InitContainers...)
	containers = append(containers, pod.Spec.Containers...)
	for i := range pod.Spec.EphemeralContainers {
		containers = append(containers, corev1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	secrets, configMaps := false, false
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			secrets = secrets || e.SecretRef != nil
			configMaps = configMaps || e.ConfigMapRef != nil
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				secrets = secrets || e.ValueFrom.SecretKeyRef != nil
				configMaps = configMaps || e.ValueFrom.ConfigMapKeyRef != nil
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.CephFS != nil && v.CephFS.SecretRef != nil, v.Cinder != nil && v.Cinder.SecretRef != nil,
			v.FlexVolume != nil && v.FlexVolume.SecretRef != nil, v.RBD != nil && v.RBD.SecretRef != nil,
			v.ScaleIO != nil && v.ScaleIO.SecretRef != nil, v.StorageOS != nil && v.StorageOS.SecretRef != nil,
			v.ISCSI != nil && v.ISCSI.SecretRef != nil:
			secrets = true
		}
	}
	switch {
	case secrets:
		return "secrets", nil
	case configMaps:
		return "configmaps", nil
	case len(pod.Spec.ResourceClaims) > 0:
		return "resourceclaims", nil
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.AWSElasticBlockStore != nil, v.AzureDisk != nil, v.CephFS != nil, v.Cinder != nil,
			v.DownwardAPI != nil, v.EmptyDir != nil, v.FC != nil, v.FlexVolume != nil, v.Flocker != nil, v.GCEPersistentDisk != nil,
			v.GitRepo != nil, v.HostPath != nil, v.Image != nil, v.ISCSI != nil, v.NFS != nil, v.PhotonPersistentDisk != nil,
			v.PortworxVolume != nil, v.Quobyte != nil, v.RBD != nil, v.ScaleIO != nil, v.StorageOS != nil, v.VsphereVolume != nil:
			continue
		case v.ConfigMap != nil:
			return "configmaps (via configmap volumes)", nil
		case v.Secret != nil:
			return "secrets (via secret volumes)", nil
		case v.CSI != nil:
			return "csidrivers (via CSI volumes)", nil
		case v.Glusterfs != nil:
			return "endpoints (via glusterFS volumes)", nil
		case v.PersistentVolumeClaim != nil:
			return "persistentvolumeclaims", nil
		case v.Ephemeral != nil:
			return "persistentvolumeclaims (via ephemeral volumes)", nil
		case v.AzureFile != nil:
			return "secrets (via azureFile volumes)", nil
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				switch {
				case src.ConfigMap != nil:
					return "configmaps (via projected volumes)", nil
				case src.Secret != nil:
					return "secrets (via projected volumes)", nil
				case src.ServiceAccountToken != nil:
					return "serviceaccounts (via projected volumes)", nil
				case src.ClusterTrustBundle != nil:
					return "clustertrustbundles", nil
				case src.PodCertificate != nil:
					return "podcertificates", nil
				case src.DownwardAPI != nil:
				default:
					return "", fmt.Errorf("unknown source for projected volume %q", v.Name)
				}
			}
		default:
			return "", fmt.Errorf("unknown volume type for volume  %q", v.Name)
		}
	}
	return "", nil
}

// IsStaticPod tells whether the pod came from a manifest file (or any
// source but the API).
func IsStaticPod(pod *corev1.Pod) bool {
	src := pod.Annotations[ConfigSourceAnnotation]
	return src != "" && src != "api"
}

// IsMirrorPod tells whether the pod is a static pod's mirror in the API.
func IsMirrorPod(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[ConfigMirrorAnnotation]
	return ok
}

// IsMirrorPodOf tells whether mirror is static's mirror, as it is now.
func IsMirrorPodOf(mirror, static *corev1.Pod) bool {
	if mirror.Name != static.Name || mirror.Namespace != static.Namespace {
		return false
	}
	h, ok := mirror.Annotations[ConfigMirrorAnnotation]
	return ok && h == static.Annotations[ConfigHashAnnotation]
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }
