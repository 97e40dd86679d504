package ipvs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sysctl reads and writes kernel parameters ("net/ipv4/ip_forward").
type Sysctl interface {
	Get(name string) (string, error)
	Set(name, value string) error
}

// ProcSysctl is Sysctl on /proc/sys.
type ProcSysctl struct{}

func (ProcSysctl) Get(name string) (string, error) {
	v, err := os.ReadFile(filepath.Join("/proc/sys", name))
	return strings.TrimSpace(string(v)), err
}

func (ProcSysctl) Set(name, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", name), []byte(value), 0o644)
}

// KernelSettings are the sysctls the ipvs mode needs, as upstream's
// NewProxier sets them: conntrack for IPVS connections (the iptables
// masquerade needs it), connections to deleted real servers expired and
// persistence templates of weight-0 ones too, forwarding on; with
// strictARP, no ARP answers for kube-ipvs0's addresses on other
// interfaces. conn_reuse_mode is left as is: upstream sets it only on
// kernels older than 5.9, whose IPVS mishandled reused ports.
func KernelSettings(strictARP bool) [][2]string {
	s := [][2]string{
		{"net/ipv4/vs/conntrack", "1"},
		{"net/ipv4/vs/expire_nodest_conn", "1"},
		{"net/ipv4/vs/expire_quiescent_template", "1"},
		{"net/ipv4/ip_forward", "1"},
	}
	if strictARP {
		s = append(s, [2]string{"net/ipv4/conf/all/arp_ignore", "1"}, [2]string{"net/ipv4/conf/all/arp_announce", "2"})
	}
	return s
}

// SetupKernel applies KernelSettings through sysctl, writing only what
// differs.
func SetupKernel(sysctl Sysctl, strictARP bool) error {
	for _, kv := range KernelSettings(strictARP) {
		if cur, err := sysctl.Get(kv[0]); err == nil && cur == kv[1] {
			continue
		}
		if err := sysctl.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("setting sysctl %s=%s for the ipvs mode: %w", kv[0], kv[1], err)
		}
	}
	return nil
}
