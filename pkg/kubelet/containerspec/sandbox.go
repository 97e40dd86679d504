package containerspec

import (
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodLogsRootDir is where the kubelet keeps containers' logs.
const PodLogsRootDir = "/var/log/pods"

// PodLogDir is a pod's log directory: /var/log/pods/<ns>_<name>_<uid>.
func PodLogDir(pod *corev1.Pod) string {
	return filepath.Join(PodLogsRootDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

// Sandbox is the pod's sandbox config.
func Sandbox(pod *corev1.Pod, o SandboxOptions) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      pod.Name,
			Namespace: pod.Namespace,
			Uid:       string(pod.UID),
			Attempt:   o.Attempt,
		},
		Labels:       PodLabels(pod),
		Annotations:  copyMap(pod.Annotations),
		LogDirectory: o.LogDir,
		DnsConfig:    o.DNS,
	}
	if cfg.LogDirectory == "" {
		cfg.LogDirectory = PodLogDir(pod)
	}
	if pod.Spec.HostNetwork {
		cfg.Hostname = o.Hostname
	} else {
		hostname, err := podHostname(pod, o.ClusterDomain)
		if err != nil {
			return nil, err
		}
		cfg.Hostname = hostname
	}
	cfg.PortMappings = portMappings(pod)
	linux, err := sandboxLinux(pod, o)
	if err != nil {
		return nil, err
	}
	cfg.Linux = linux
	return cfg, nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func podHostname(pod *corev1.Pod, clusterDomain string) (string, error) {
	return pod.Name, nil
}

func portMappings(pod *corev1.Pod) []*runtimeapi.PortMapping {
	return nil
}

func sandboxLinux(pod *corev1.Pod, o SandboxOptions) (*runtimeapi.LinuxPodSandboxConfig, error) {
	parent := o.CgroupParent
	if parent == "" {
		parent = CgroupParent(pod)
	}
	return &runtimeapi.LinuxPodSandboxConfig{CgroupParent: parent}, nil
}
