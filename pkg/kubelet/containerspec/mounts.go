package containerspec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Host file permissions, as upstream.
const (
	etcHostsPath         = "/etc/hosts"
	etcHostsPerm         = 0o644
	terminationLogPerm   = 0o666 // writable by any container user
	podContainerDirPerm  = 0o750
	containerLogsDirPerm = 0o755
)

// EtcHostsFile is the host path of a pod's managed /etc/hosts.
func EtcHostsFile(podDir string) string { return filepath.Join(podDir, "etc-hosts") }

// PodContainerDir is where a container's termination-log files live:
// <podDir>/containers/<name>.
func PodContainerDir(podDir, containerName string) string {
	return filepath.Join(podDir, "containers", containerName)
}

// mounts are the container's volume mounts, then its /etc/hosts (when the
// pod has an IP or uses the host's network, and the container does not
// mount /etc/hosts itself), then its termination-log file.
func mounts(pod *corev1.Pod, c *corev1.Container, env []EnvVar, o ContainerOptions, extras *Extras) ([]*runtimeapi.Mount, error) {
	var out []*runtimeapi.Mount
	mountHosts := o.PodDir != "" && (len(o.PodIPs) > 0 || pod.Spec.HostNetwork)
	for i, vm := range c.VolumeMounts {
		if vm.MountPath == etcHostsPath {
			mountHosts = false
		}
		vol, ok := o.Volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		subPath := vm.SubPath
		if vm.SubPathExpr != "" {
			var err error
			if subPath, err = expandSubPath(vm.SubPathExpr, env); err != nil {
				return nil, err
			}
		}
		hostPath := vol.HostPath
		if subPath != "" {
			if path.IsAbs(subPath) || filepath.IsAbs(subPath) {
				return nil, fmt.Errorf("error SubPath `%s` must not be an absolute path", subPath)
			}
			if err := noBacksteps(subPath); err != nil {
				return nil, fmt.Errorf("unable to provision SubPath `%s`: %w", subPath, err)
			}
			if o.SubPath != nil {
				// Resolved and bind-mounted safely by the volume manager: a
				// symlink the container planted cannot lead out of the
				// volume.
				var err error
				if hostPath, err = o.SubPath(vm.Name, i, vol.HostPath, subPath); err != nil {
					return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q: %w", vm.Name, c.Name, err)
				}
			} else {
				hostPath = filepath.Join(hostPath, subPath)
			}
		}
		propagation, err := mountPropagation(vm.MountPropagation)
		if err != nil {
			return nil, err
		}
		containerPath := vm.MountPath
		if !path.IsAbs(containerPath) {
			containerPath = "/" + containerPath
		}
		m := &runtimeapi.Mount{
			ContainerPath: containerPath,
			HostPath:      hostPath,
			Readonly:      vm.ReadOnly || vol.ReadOnly,
			Propagation:   propagation,
		}
		if m.RecursiveReadOnly, err = recursiveReadOnly(vm, o.RuntimeSupportsRecursiveReadOnly); err != nil {
			return nil, fmt.Errorf("failed to resolve recursive read-only mode: %w", err)
		}
		out = append(out, m)
	}

	if mountHosts {
		hostname, domain, err := PodHostnameAndDomain(pod, o.ClusterDomain)
		if err != nil {
			return nil, err
		}
		var content []byte
		if pod.Spec.HostNetwork {
			content = nodeHostsFileContent(o.NodeHostsFile, pod.Spec.HostAliases)
		} else {
			content = ManagedHostsFileContent(o.PodIPs, hostname, domain, pod.Spec.HostAliases)
		}
		file := EtcHostsFile(o.PodDir)
		extras.Files = append(extras.Files, HostFile{Path: file, Content: content, Perm: etcHostsPerm})
		out = append(out, &runtimeapi.Mount{ContainerPath: etcHostsPath, HostPath: file})
	}

	if o.PodDir != "" && c.TerminationMessagePath != "" {
		dir := PodContainerDir(o.PodDir, c.Name)
		id := o.TerminationLogID
		if id == "" {
			// Unique per instance of the container, as upstream.
			id = fmt.Sprintf("%08x", rand.Uint32())
		}
		file := filepath.Join(dir, id)
		extras.Dirs = append(extras.Dirs, HostDir{Path: dir, Perm: podContainerDirPerm})
		extras.Files = append(extras.Files, HostFile{Path: file, Content: []byte{}, Perm: terminationLogPerm})
		extras.TerminationLogPath = file
		out = append(out, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: file})
	}
	return out, nil
}

// expandSubPath expands subPathExpr against the container's environment;
// a reference to an unset or empty variable is an error, as upstream.
func expandSubPath(expr string, env []EnvVar) (string, error) {
	values := envMap(env)
	missing := map[string]bool{}
	expanded := Expand(expr, func(name string) (string, bool) {
		v := values[name]
		if v == "" {
			missing[name] = true
		}
		return v, true
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("missing value for %s", strings.Join(sortedKeys(missing), ", "))
	}
	return expanded, nil
}

// noBacksteps refuses a path with a ".." element.
func noBacksteps(p string) error {
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return fmt.Errorf("must not contain '..'")
		}
	}
	return nil
}

func mountPropagation(mode *corev1.MountPropagationMode) (runtimeapi.MountPropagation, error) {
	switch {
	case mode == nil, *mode == corev1.MountPropagationNone:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	case *mode == corev1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, nil
	case *mode == corev1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, nil
	}
	return 0, fmt.Errorf("invalid MountPropagation mode: %q", *mode)
}

// Headers of the /etc/hosts files the kubelet writes, as upstream.
const (
	managedHostsHeader                = "# Kubernetes-managed hosts file.\n"
	managedHostsHeaderWithHostNetwork = "# Kubernetes-managed hosts file (host network).\n"
)

// ManagedHostsFileContent is a pod-network pod's /etc/hosts: localhost
// entries, the pod's IPs with its hostname (and FQDN), then hostAliases.
func ManagedHostsFileContent(podIPs []string, hostname, domain string, aliases []corev1.HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString(managedHostsHeader)
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	b.Write(hostAliasesEntries(aliases))
	return b.Bytes()
}

// nodeHostsFileContent is a host-network pod's /etc/hosts: the node's,
// then hostAliases.
func nodeHostsFileContent(node []byte, aliases []corev1.HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString(managedHostsHeaderWithHostNetwork)
	b.Write(node)
	b.Write(hostAliasesEntries(aliases))
	return b.Bytes()
}

func hostAliasesEntries(aliases []corev1.HostAlias) []byte {
	if len(aliases) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.Bytes()
}

// recursiveReadOnly resolves a mount's recursiveReadOnly as upstream.
func recursiveReadOnly(m corev1.VolumeMount, supported bool) (bool, error) {
	if m.RecursiveReadOnly == nil || *m.RecursiveReadOnly == corev1.RecursiveReadOnlyDisabled {
		return false, nil
	}
	if !m.ReadOnly {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not read-only", m.Name)
	}
	if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not compatible with propagation %q", m.Name, *m.MountPropagation)
	}
	switch mode := *m.RecursiveReadOnly; mode {
	case corev1.RecursiveReadOnlyIfPossible:
		return supported, nil
	case corev1.RecursiveReadOnlyEnabled:
		if !supported {
			return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not supported by the runtime", m.Name)
		}
		return true, nil
	default:
		return false, fmt.Errorf("unknown recursive read-only mode %q", mode)
	}
}
