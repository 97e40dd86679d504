// Package machine reads what a real node registers with: its capacity
// (CPUs, memory, ephemeral storage, pods), addresses and system info, as
// upstream's kubelet gets them from cadvisor and the host.
package machine

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultMaxPods is upstream kubelet's --max-pods.
const DefaultMaxPods = 110

// Info is the host as a Node reports it.
type Info struct {
	NumCores       int
	MemoryCapacity int64
	// RootFSCapacity is the size of the filesystem of the kubelet's root
	// dir: the node's ephemeral-storage.
	RootFSCapacity int64
	MachineID      string
	SystemUUID     string
	BootID         string
	KernelVersion  string
	OSImage        string
	Hostname       string
}

// Read reads the host's info; rootDir is the kubelet's root dir.
func Read(rootDir string) (Info, error) {
	info := Info{NumCores: runtime.NumCPU()}
	mem, err := memTotal("/proc/meminfo")
	if err != nil {
		return info, err
	}
	info.MemoryCapacity = mem
	var fs unix.Statfs_t
	if err := unix.Statfs(rootDir, &fs); err != nil {
		return info, fmt.Errorf("statfs %s: %w", rootDir, err)
	}
	info.RootFSCapacity = int64(fs.Blocks) * fs.Bsize
	info.MachineID = firstLine("/etc/machine-id", "/var/lib/dbus/machine-id")
	info.SystemUUID = strings.ToLower(firstLine("/sys/class/dmi/id/product_uuid"))
	info.BootID = firstLine("/proc/sys/kernel/random/boot_id")
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
	}
	info.OSImage = osImage("/etc/os-release")
	info.Hostname, _ = os.Hostname()
	return info, nil
}

// Capacity is the node's capacity for maxPods pods.
func (i Info) Capacity(maxPods int) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(i.NumCores), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(i.MemoryCapacity, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(i.RootFSCapacity, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
		"hugepages-1Gi":                 resource.MustParse("0"),
		"hugepages-2Mi":                 resource.MustParse("0"),
	}
}

// Allocatable is capacity less upstream's default hard eviction
// thresholds (memory.available<100Mi, nodefs.available<10%), with no
// system or kube reservations, as a default kubelet computes it.
func Allocatable(capacity corev1.ResourceList) corev1.ResourceList {
	out := capacity.DeepCopy()
	if mem, ok := out[corev1.ResourceMemory]; ok {
		mem.Sub(resource.MustParse("100Mi"))
		if mem.Sign() < 0 {
			mem = resource.MustParse("0")
		}
		out[corev1.ResourceMemory] = mem
	}
	if fs, ok := out[corev1.ResourceEphemeralStorage]; ok {
		out[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(fs.Value()-fs.Value()/10, resource.BinarySI)
	}
	return out
}

// NodeInfo is the Node's status.nodeInfo, without the runtime's version
// (the Node fills that in).
func (i Info) NodeInfo(kubeletVersion string) corev1.NodeSystemInfo {
	return corev1.NodeSystemInfo{
		MachineID:       i.MachineID,
		SystemUUID:      i.SystemUUID,
		BootID:          i.BootID,
		KernelVersion:   i.KernelVersion,
		OSImage:         i.OSImage,
		OperatingSystem: runtime.GOOS,
		Architecture:    runtime.GOARCH,
		KubeletVersion:  kubeletVersion,
	}
}

// Addresses are the node's InternalIP(s) and Hostname: nodeIPs if given
// (--node-ip), else the address of the interface of the default route,
// as upstream's kubelet picks it.
func Addresses(hostname string, nodeIPs []net.IP) ([]corev1.NodeAddress, error) {
	if len(nodeIPs) == 0 {
		ip, err := DefaultRouteIP()
		if err != nil {
			return nil, err
		}
		nodeIPs = []net.IP{ip}
	}
	var out []corev1.NodeAddress
	for _, ip := range nodeIPs {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: hostname}), nil
}

// DefaultRouteIP is the first global unicast IPv4 address of the
// interface that holds the default route; without a default route, of
// any interface that is up and not loopback.
func DefaultRouteIP() (net.IP, error) {
	if name := defaultRouteInterface("/proc/net/route"); name != "" {
		if iface, err := net.InterfaceByName(name); err == nil {
			if ip := firstIPv4(iface); ip != nil {
				return ip, nil
			}
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifaces {
		iface := &ifaces[i]
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		if ip := firstIPv4(iface); ip != nil {
			return ip, nil
		}
	}
	return nil, fmt.Errorf("no IPv4 address on any interface that is up: set --node-ip")
}

func firstIPv4(iface *net.Interface) net.IP {
	addrs, err := iface.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.To4()
		}
	}
	return nil
}

// defaultRouteInterface reads /proc/net/route for the 0.0.0.0/0 entry.
func defaultRouteInterface(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0]
		}
	}
	return ""
}

func memTotal(file string) (int64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal %q: %w", file, f[0], err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no MemTotal", file)
}

func firstLine(files ...string) string {
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			if s := strings.TrimSpace(string(data)); s != "" {
				return s
			}
		}
	}
	return ""
}

// osImage is os-release's PRETTY_NAME, as upstream reports it.
func osImage(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
