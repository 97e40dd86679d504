package containerspec

import (
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"

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
	if pod == nil {
		return nil, fmt.Errorf("sandbox config: pod is required")
	}
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
	// As upstream: a host-network pod's sandbox gets no hostname (it has
	// the node's UTS namespace; runc refuses to set a hostname without a
	// private one: "unable to set hostname without a private UTS
	// namespace").
	if !pod.Spec.HostNetwork {
		hostname, domain, err := PodHostnameAndDomain(pod, o.ClusterDomain)
		if err != nil {
			return nil, err
		}
		if cfg.Hostname, err = kernelHostname(hostname, domain, pod.Spec.SetHostnameAsFQDN); err != nil {
			return nil, err
		}
	}
	cfg.PortMappings = portMappings(pod)
	linux, err := sandboxLinux(pod, o)
	if err != nil {
		return nil, err
	}
	linux.Resources, linux.Overhead = SandboxResources(pod)
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

// DefaultClusterDomain is the cluster domain when none is configured.
const DefaultClusterDomain = "cluster.local"

// PodHostnameAndDomain are the pod's hostname and DNS domain as upstream's
// kubelet makes them: hostnameOverride, else spec.hostname, else the pod's
// name, cut to 63 characters; the domain <subdomain>.<ns>.svc.<cluster
// domain> when spec.subdomain is set.
func PodHostnameAndDomain(pod *corev1.Pod, clusterDomain string) (hostname, domain string, err error) {
	if clusterDomain == "" {
		clusterDomain = DefaultClusterDomain
	}
	if pod.Spec.HostnameOverride != nil {
		h := *pod.Spec.HostnameOverride
		if msgs := validation.IsDNS1123Subdomain(h); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod HostnameOverride %q is not a valid DNS subdomain: %s", h, strings.Join(msgs, ";"))
		}
		h, err := truncateHostname(pod.Name, h)
		return h, "", err
	}
	hostname = pod.Name
	if pod.Spec.Hostname != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Hostname); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod Hostname %q is not a valid DNS label: %s", pod.Spec.Hostname, strings.Join(msgs, ";"))
		}
		hostname = pod.Spec.Hostname
	}
	if hostname, err = truncateHostname(pod.Name, hostname); err != nil {
		return "", "", err
	}
	if pod.Spec.Subdomain != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Subdomain); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod Subdomain %q is not a valid DNS label: %s", pod.Spec.Subdomain, strings.Join(msgs, ";"))
		}
		domain = fmt.Sprintf("%s.%s.svc.%s", pod.Spec.Subdomain, pod.Namespace, clusterDomain)
	}
	return hostname, domain, nil
}

// truncateHostname cuts a hostname to the kernel's 63 characters, without
// a trailing '-' or '.'.
func truncateHostname(podName, hostname string) (string, error) {
	const maxLen = 63
	if len(hostname) <= maxLen {
		return hostname, nil
	}
	truncated := strings.TrimRight(hostname[:maxLen], "-.")
	klog.ErrorS(nil, "Hostname for pod was too long, truncated it", "podName", podName, "hostnameMaxLen", maxLen, "truncatedHostname", truncated)
	if truncated == "" {
		return "", fmt.Errorf("hostname for pod %q was invalid: %q", podName, hostname)
	}
	return truncated, nil
}

// kernelHostname is the hostname the pod's UTS namespace gets: its FQDN
// with setHostnameAsFQDN (at most 64 characters), else the short name.
func kernelHostname(hostname, domain string, asFQDN *bool) (string, error) {
	const fqdnMaxLen = 64
	if domain == "" || asFQDN == nil || !*asFQDN {
		return hostname, nil
	}
	fqdn := hostname + "." + domain
	if len(fqdn) > fqdnMaxLen {
		return "", fmt.Errorf("failed to construct FQDN from pod hostname and cluster domain, FQDN %s is too long (%d characters is the max, %d characters requested)", fqdn, fqdnMaxLen, len(fqdn))
	}
	return fqdn, nil
}

// portMappings are every container port of the pod's regular containers
// (the runtime maps those with a hostPort), a port name or
// family/protocol/hostIP/ports repeated within a container counted once.
func portMappings(pod *corev1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		seen := map[string]bool{}
		for _, p := range c.Ports {
			name := p.Name
			if name == "" {
				family := "any"
				if p.HostIP != "" {
					family = "v4"
					if netutils.IsIPv6String(p.HostIP) {
						family = "v6"
					}
				}
				name = fmt.Sprintf("%s-%s-%s:%d:%d", family, p.Protocol, p.HostIP, p.ContainerPort, p.HostPort)
			}
			if seen[name] {
				klog.InfoS("Port name conflicted, it is defined more than once", "portName", name)
				continue
			}
			seen[name] = true
			out = append(out, &runtimeapi.PortMapping{
				Protocol:      runtimeProtocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	return out
}

func runtimeProtocol(p corev1.Protocol) runtimeapi.Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case corev1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	case corev1.ProtocolTCP, "":
		return runtimeapi.Protocol_TCP
	}
	klog.InfoS("Unknown protocol, defaulting to TCP", "protocol", p)
	return runtimeapi.Protocol_TCP
}

// sandboxLinux is the sandbox's cgroup parent, sysctls and security
// context: always RuntimeDefault seccomp (the pause process needs
// nothing more), privileged when any container is, the pod's user and
// group, namespaces and supplemental groups (fsGroup first).
func sandboxLinux(pod *corev1.Pod, o SandboxOptions) (*runtimeapi.LinuxPodSandboxConfig, error) {
	parent := o.CgroupParent
	if parent == "" {
		parent = CgroupParent(pod)
	}
	lc := &runtimeapi.LinuxPodSandboxConfig{
		CgroupParent: parent,
		Sysctls:      map[string]string{},
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			Privileged:       hasPrivilegedContainer(pod),
			Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			NamespaceOptions: NamespaceOptions(pod),
		},
	}
	sc := pod.Spec.SecurityContext
	if sc == nil {
		return lc, nil
	}
	for _, s := range sc.Sysctls {
		lc.Sysctls[s.Name] = s.Value
	}
	if sc.RunAsUser != nil {
		lc.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
	}
	if sc.RunAsGroup != nil {
		lc.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
	}
	lc.SecurityContext.SupplementalGroups = supplementalGroups(sc)
	policy, err := supplementalGroupsPolicy(sc)
	if err != nil {
		return nil, err
	}
	lc.SecurityContext.SupplementalGroupsPolicy = policy
	lc.SecurityContext.SelinuxOptions = seLinuxOption(sc.SELinuxOptions)
	return lc, nil
}
