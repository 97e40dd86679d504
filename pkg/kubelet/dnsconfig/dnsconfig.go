// Package dnsconfig forms a pod sandbox's resolver config (its
// /etc/resolv.conf) from the pod's dnsPolicy and dnsConfig, by upstream
// kubelet's rules: ClusterFirst pods ask the cluster DNS with the
// cluster's search paths and ndots:5, Default pods get the host's
// resolv.conf, None pods only their dnsConfig.
package dnsconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// Limits of a resolv.conf, upstream's (its API validation's and glibc's).
const (
	MaxNameservers     = 3
	MaxSearchPaths     = 32
	MaxSearchListChars = 2048
	// maxSearchLength: glibc aborts on a longer search path.
	maxSearchLength   = 253
	maxResolvConfSize = 10 << 20
)

// Paths of the host's resolver configs.
const (
	DefaultResolvConf = "/etc/resolv.conf"
	// SystemdResolvConf lists systemd-resolved's upstream resolvers, which
	// a pod can reach (its stub on 127.0.0.53 it cannot).
	SystemdResolvConf = "/run/systemd/resolve/resolv.conf"
)

// defaultOptions of ClusterFirst pods: names with fewer than 5 dots try
// the cluster's search paths first.
var defaultOptions = []string{"ndots:5"}

// Configurer forms pods' DNS configs on one node.
type Configurer struct {
	// ClusterDNS are the cluster DNS servers (--cluster-dns); none:
	// ClusterFirst pods fall back to Default, with a warning event.
	ClusterDNS []net.IP
	// ClusterDomain (--cluster-domain) makes ClusterFirst pods' search
	// paths; empty: only the host's.
	ClusterDomain string
	// ResolvConf is the host's resolver config (--resolv-conf); empty:
	// none, and Default pods resolve with the node's own (127.0.0.1).
	ResolvConf string
	// NodeIPs pick 127.0.0.1 or ::1 when there is no ResolvConf.
	NodeIPs []net.IP
	// Recorder and NodeRef receive the warnings; a nil Recorder: logged
	// only.
	Recorder record.EventRecorder
	NodeRef  *corev1.ObjectReference
	Logger   klog.Logger
}

// PodDNS is the sandbox's DNS config of pod.
func (c *Configurer) PodDNS(pod *corev1.Pod) (*runtimeapi.DNSConfig, error) {
	cfg, err := c.hostConfig()
	if err != nil {
		return nil, err
	}
	policy := pod.Spec.DNSPolicy
	switch {
	case policy == corev1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	case policy == corev1.DNSDefault || (policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork):
		// A host-network ClusterFirst pod resolves as the host does.
		c.hostFallback(cfg)
	default:
		if policy != corev1.DNSClusterFirst && policy != corev1.DNSClusterFirstWithHostNet {
			// The API rejects other policies; upstream treats them as
			// ClusterFirst.
			c.Logger.Error(fmt.Errorf("invalid DNSPolicy=%v", policy), "Failed to get DNS type for pod. Falling back to DNSClusterFirst policy.", "pod", klog.KObj(pod))
		}
		if len(c.ClusterDNS) == 0 {
			msg := fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.", corev1.DNSClusterFirst, corev1.DNSDefault)
			c.event(c.NodeRef, "MissingClusterDNS", msg)
			c.event(pod, "MissingClusterDNS", fmt.Sprintf("pod: %q. %s", podDesc(pod), msg))
			c.hostFallback(cfg)
			break
		}
		cfg.Servers = nil
		for _, ip := range c.ClusterDNS {
			cfg.Servers = append(cfg.Servers, ip.String())
		}
		cfg.Searches = c.clusterSearches(cfg.Searches, pod)
		cfg.Options = append([]string(nil), defaultOptions...)
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = unique(append(cfg.Servers, dc.Nameservers...))
		cfg.Searches = unique(append(cfg.Searches, dc.Searches...))
		cfg.Options = mergePodOptions(cfg.Options, dc.Options)
	}
	cfg.Servers = c.fitNameservers(cfg.Servers, pod)
	cfg.Searches = c.fitSearches(cfg.Searches, pod)
	return cfg, nil
}

// hostFallback: without a host resolv.conf, the node itself resolves, as
// a resolver library does without nameservers.
func (c *Configurer) hostFallback(cfg *runtimeapi.DNSConfig) {
	if c.ResolvConf != "" {
		return
	}
	for _, ip := range c.NodeIPs {
		if ip.To4() == nil {
			cfg.Servers = append(cfg.Servers, "::1")
		} else {
			cfg.Servers = append(cfg.Servers, "127.0.0.1")
		}
	}
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{"127.0.0.1"}
	}
	cfg.Searches = []string{"."}
}

func (c *Configurer) clusterSearches(host []string, pod *corev1.Pod) []string {
	if c.ClusterDomain == "" {
		return host
	}
	return unique(append([]string{pod.Namespace + ".svc." + c.ClusterDomain, "svc." + c.ClusterDomain, c.ClusterDomain}, host...))
}

func (c *Configurer) fitNameservers(servers []string, pod *corev1.Pod) []string {
	if len(servers) <= MaxNameservers {
		return servers
	}
	servers = servers[:MaxNameservers]
	c.warnPod(pod, fmt.Errorf("Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: %s", strings.Join(servers, " ")), "Nameserver limits exceeded")
	return servers
}

// fitSearches keeps the first 32 search paths, drops those longer than a
// DNS name, then the last ones until the line fits 2048 characters.
func (c *Configurer) fitSearches(searches []string, pod *corev1.Pod) []string {
	exceeded := false
	if len(searches) > MaxSearchPaths {
		searches, exceeded = searches[:MaxSearchPaths], true
	}
	kept := searches[:0:0]
	for _, s := range searches {
		if len(s) > maxSearchLength {
			exceeded = true
			continue
		}
		kept = append(kept, s)
	}
	searches = kept
	for len(searches) > 0 && len(strings.Join(searches, " ")) > MaxSearchListChars {
		searches, exceeded = searches[:len(searches)-1], true
	}
	if exceeded {
		c.warnPod(pod, fmt.Errorf("Search Line limits were exceeded, some search paths have been omitted, the applied search line is: %s", strings.Join(searches, " ")), "Search Line limits exceeded")
	}
	return searches
}

func (c *Configurer) warnPod(pod *corev1.Pod, err error, logMsg string) {
	c.event(pod, "DNSConfigForming", err.Error())
	c.Logger.Error(err, logMsg, "pod", klog.KObj(pod))
}

func (c *Configurer) event(obj runtime.Object, reason, msg string) {
	if c.Recorder == nil {
		return
	}
	if ref, ok := obj.(*corev1.ObjectReference); ok && ref == nil {
		return
	}
	c.Recorder.Event(obj, corev1.EventTypeWarning, reason, msg)
}

// hostConfig is the host's resolv.conf, empty without one.
func (c *Configurer) hostConfig() (*runtimeapi.DNSConfig, error) {
	if c.ResolvConf == "" {
		return &runtimeapi.DNSConfig{}, nil
	}
	f, err := os.Open(c.ResolvConf)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	servers, searches, options, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("Encountered error while parsing resolv conf file. Error: %w", err)
	}
	return &runtimeapi.DNSConfig{Servers: servers, Searches: searches, Options: options}, nil
}

// CheckHostLimits warns on the node (as upstream's kubelet at start) when
// the host's search line leaves pods too little room.
func (c *Configurer) CheckHostLimits() {
	if c.ResolvConf == "" {
		return
	}
	warn := func(msg string) {
		c.event(c.NodeRef, "CheckLimitsForResolvConf", msg)
		c.Logger.V(4).Info("Check limits for resolv.conf failed", "eventlog", msg)
	}
	f, err := os.Open(c.ResolvConf)
	if err != nil {
		warn(err.Error())
		return
	}
	defer f.Close()
	_, searches, _, err := Parse(f)
	if err != nil {
		warn(err.Error())
		return
	}
	limit := MaxSearchPaths
	if c.ClusterDomain != "" {
		limit -= 3
	}
	if len(searches) > limit {
		warn(fmt.Sprintf("Resolv.conf file '%s' contains search line consisting of more than %d domains!", c.ResolvConf, limit))
		return
	}
	for _, s := range searches {
		if len(s) > maxSearchLength {
			warn(fmt.Sprintf("Resolv.conf file %q contains a search path which length is more than allowed %d chars!", c.ResolvConf, maxSearchLength))
			return
		}
	}
	if len(strings.Join(searches, " ")) > MaxSearchListChars {
		warn(fmt.Sprintf("Resolv.conf file '%s' contains search line which length is more than allowed %d chars!", c.ResolvConf, MaxSearchListChars))
	}
}

// Parse reads a resolv.conf: nameserver lines accumulate, the last search
// line wins (trailing dots dropped, so a name counts once), options
// accumulate with the last value of a name winning.
func Parse(r io.Reader) (servers, searches, options []string, err error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResolvConfSize+1))
	if err != nil {
		return nil, nil, nil, err
	}
	if len(data) > maxResolvConfSize {
		return nil, nil, nil, fmt.Errorf("resolv.conf is larger than %d bytes", maxResolvConfSize)
	}
	servers, searches, options = []string{}, []string{}, []string{}
	var errs []error
	for _, line := range bytes.Split(data, []byte("\n")) {
		fields := strings.Fields(string(line))
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 {
				errs = append(errs, errors.New("nameserver list is empty "))
				continue
			}
			servers = append(servers, fields[1])
		case "search":
			searches = []string{}
			for _, s := range fields[1:] {
				if s != "." {
					searches = append(searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			options = mergeOptions(options, fields[1:])
		}
	}
	return servers, searches, options, errors.Join(errs...)
}

// mergeOptions sets each option (name or name:value) in options, a later
// value of a name replacing the earlier in its place.
func mergeOptions(options, more []string) []string {
	for _, o := range more {
		name, _, _ := strings.Cut(o, ":")
		replaced := false
		for i, existing := range options {
			if n, _, _ := strings.Cut(existing, ":"); n == name {
				options[i], replaced = o, true
				break
			}
		}
		if !replaced {
			options = append(options, o)
		}
	}
	return options
}

// mergePodOptions adds the pod's dnsConfig options, which win over those
// of the same name.
func mergePodOptions(options []string, pod []corev1.PodDNSConfigOption) []string {
	more := make([]string, 0, len(pod))
	for _, o := range pod {
		s := o.Name
		if o.Value != nil && *o.Value != "" {
			s += ":" + *o.Value
		}
		more = append(more, s)
	}
	return mergeOptions(append([]string(nil), options...), more)
}

func unique(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// HostResolvConf is the resolv.conf a node uses when none is given, as
// k3s picks it: /etc/resolv.conf, unless it lists only loopback
// nameservers (systemd-resolved's stub, unreachable from a pod's network)
// and systemd-resolved's own list has others.
func HostResolvConf() string { return pickResolvConf(DefaultResolvConf, SystemdResolvConf) }

func pickResolvConf(def, systemd string) string {
	if usable(def) || !usable(systemd) {
		return def
	}
	return systemd
}

// usable: the file lists a nameserver a pod can reach.
func usable(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	servers, _, _, _ := Parse(f)
	for _, s := range servers {
		if ip := net.ParseIP(s); ip != nil && !ip.IsLoopback() {
			return true
		}
	}
	return false
}

func podDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
