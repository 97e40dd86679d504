// Package containerspec translates a Pod into the CRI configs the kubelet
// hands the container runtime (k8s.io/cri-api runtime v1), by the rules of
// upstream kubelet's kuberuntime: sandbox and container metadata, labels
// and annotations, environment with $(VAR) expansion, mounts, linux
// resources and security contexts.
//
// It does no I/O beyond reading configMaps and secrets through Sources (and
// env files through ContainerOptions.ReadFile): the host directories and
// files a container needs (log dir, termination-log, /etc/hosts) are
// returned in Extras for the caller to create before CreateContainer.
package containerspec

import (
	"context"
	"os"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sources reads the configMaps and secrets a container's environment refers to.
// A missing object is reported with an error for which
// apierrors.IsNotFound is true.
type Sources interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// Mount is a volume already set up on the host, by volume name.
type Mount struct {
	HostPath string
	ReadOnly bool
}

// SandboxOptions are the node-side facts a pod sandbox config needs.
type SandboxOptions struct {
	NodeName string
	// LogDir overrides the pod's log directory (default
	// /var/log/pods/<ns>_<name>_<uid>).
	LogDir string
	// CgroupParent overrides CgroupParent(pod).
	CgroupParent string
	DNS          *runtimeapi.DNSConfig
	Attempt      uint32
	// ClusterDomain makes the pod's domain <subdomain>.<ns>.svc.<ClusterDomain>
	// (setHostnameAsFQDN); default cluster.local.
	ClusterDomain string
}

// ContainerOptions are the node-side facts a container config needs.
type ContainerOptions struct {
	// SubPath makes the host path of a volume mount's subPath (mount index
	// i of the container, in volume volumeName at volumePath); nil: the
	// path is joined as it is, with no protection against symlinks.
	SubPath func(volumeName string, i int, volumePath, subPath string) (string, error)

	NodeName string
	PodIPs   []string
	HostIP   string
	// HostIPs are all the node's IPs (status.hostIPs); default [HostIP].
	HostIPs []string
	// Volumes are the pod's volumes set up on the host, by volume name.
	Volumes map[string]Mount
	// PodDir is the kubelet's dir of this pod (<root>/pods/<uid>): the
	// termination-log file and etc-hosts live under it.
	PodDir       string
	RestartCount int
	// ServiceEnv are the service links' variables (FOO_SERVICE_HOST...),
	// put before the container's own as upstream does.
	ServiceEnv []corev1.EnvVar
	// NodeAllocatable stands in for unset limits in resourceFieldRef.
	NodeAllocatable corev1.ResourceList
	// MemoryCapacity is the node's memory in bytes, for a Burstable
	// container's oom_score_adj; default NodeAllocatable's memory.
	MemoryCapacity int64
	// ClusterDomain for the pod's FQDN in /etc/hosts; default cluster.local.
	ClusterDomain string
	// NodeHostsFile is the node's /etc/hosts content, the base of a
	// host-network pod's /etc/hosts.
	NodeHostsFile []byte
	// TerminationLogID names this instance's termination-log file under
	// <PodDir>/containers/<name>/; default 8 random hex digits as upstream.
	TerminationLogID string
	// RuntimeSupportsRecursiveReadOnly: the runtime handler reports
	// recursive read-only mounts (containerd 1.6 does not).
	RuntimeSupportsRecursiveReadOnly bool
	// ReadFile reads an env file for valueFrom.fileKeyRef (EnvFiles, on by
	// default upstream); nil: such variables are an error. The caller's
	// reader should refuse symlinks leaving the volume.
	ReadFile func(path string) ([]byte, error)
	// Security are the node's seccomp settings.
	Security SecurityOptions
	// PodLogDir is the pod's log directory as given to its sandbox;
	// default PodLogDir(pod).
	PodLogDir string
}

// Extras are what the caller must do on the host before CreateContainer,
// and what it must check once the image is known.
type Extras struct {
	// Dirs to create (MkdirAll) first: the container's log directory and
	// its termination-log directory.
	Dirs []HostDir
	// Files to write (create or overwrite), with their content and mode,
	// after Dirs and before the container is created: they are
	// bind-mounted into it (etc-hosts, the termination-log file). Their
	// parent directories exist once Dirs and the pod's dir exist.
	Files []HostFile
	// TerminationLogPath is the host file mounted at the container's
	// terminationMessagePath ("" when none).
	TerminationLogPath string
	// RunAsNonRoot: the runtime must refuse an image whose user is root
	// (or non-numeric) when the container has no runAsUser; see
	// VerifyRunAsNonRoot.
	RunAsNonRoot bool
}

// HostDir is a directory the caller creates on the host.
type HostDir struct {
	Path string
	Perm os.FileMode
}

// HostFile is a file the caller writes on the host (then chmods to Perm,
// whatever the umask).
type HostFile struct {
	Path    string
	Content []byte
	Perm    os.FileMode
}
