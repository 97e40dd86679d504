package stats

import (
	"bufio"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MachineInfo is the subset of cadvisor's MachineInfo that the kubelet's
// /spec served, with cadvisor's JSON names.
type MachineInfo struct {
	Timestamp        time.Time `json:"timestamp"`
	NumCores         int       `json:"num_cores"`
	NumPhysicalCores int       `json:"num_physical_cores"`
	NumSockets       int       `json:"num_sockets"`
	CPUFrequencyKHz  uint64    `json:"cpu_frequency_khz"`
	MemoryCapacity   uint64    `json:"memory_capacity"`
	MachineID        string    `json:"machine_id"`
	SystemUUID       string    `json:"system_uuid"`
	BootID           string    `json:"boot_id"`
	Filesystems      []FsInfo  `json:"filesystems"`
	NetworkDevices   []NetInfo `json:"network_devices"`
	CloudProvider    string    `json:"cloud_provider"`
	InstanceType     string    `json:"instance_type"`
	InstanceID       string    `json:"instance_id"`
}

// FsInfo is one block-device filesystem of the machine.
type FsInfo struct {
	Device    string `json:"device"`
	Capacity  uint64 `json:"capacity"`
	Type      string `json:"type"`
	Inodes    uint64 `json:"inodes"`
	HasInodes bool   `json:"has_inodes"`
}

// NetInfo is one network interface of the machine.
type NetInfo struct {
	Name       string `json:"name"`
	MacAddress string `json:"mac_address"`
	Speed      int64  `json:"speed"`
	Mtu        int64  `json:"mtu"`
}

// Machine reads the machine's description from /proc, /sys and /etc.
func Machine() (*MachineInfo, error) {
	m := &MachineInfo{Timestamp: time.Now(), NumCores: runtime.NumCPU(), CloudProvider: "Unknown", InstanceType: "Unknown", InstanceID: "None"}
	mi, err := readMeminfo("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	m.MemoryCapacity = mi["MemTotal"]
	m.NumPhysicalCores, m.NumSockets, m.CPUFrequencyKHz = cpuTopology("/proc/cpuinfo")
	if m.NumPhysicalCores == 0 {
		m.NumPhysicalCores = m.NumCores
	}
	if m.NumSockets == 0 {
		m.NumSockets = 1
	}
	m.MachineID = firstLine("/etc/machine-id", "/var/lib/dbus/machine-id")
	m.SystemUUID = firstLine("/sys/class/dmi/id/product_uuid", "/proc/device-tree/system-id", "/proc/device-tree/vm,uuid")
	m.BootID = firstLine("/proc/sys/kernel/random/boot_id")
	m.Filesystems = blockFilesystems("/proc/self/mountinfo")
	m.NetworkDevices = netDevices("/sys/class/net")
	return m, nil
}

func firstLine(paths ...string) string {
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			if s := strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]); s != "" {
				return strings.Trim(s, "\x00")
			}
		}
	}
	return ""
}

// cpuTopology counts distinct (physical id, core id) pairs and sockets
// and takes the highest "cpu MHz" of /proc/cpuinfo.
func cpuTopology(path string) (cores, sockets int, khz uint64) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	coreSet, socketSet := map[string]bool{}, map[string]bool{}
	var physical, core string
	sc := bufio.NewScanner(f)
	flush := func() {
		if core != "" {
			coreSet[physical+"/"+core] = true
		}
		if physical != "" {
			socketSet[physical] = true
		}
		physical, core = "", ""
	}
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			flush()
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "physical id":
			physical = val
		case "core id":
			core = val
		case "cpu MHz":
			if mhz, err := strconv.ParseFloat(val, 64); err == nil && uint64(mhz*1000) > khz {
				khz = uint64(mhz * 1000)
			}
		}
	}
	flush()
	return len(coreSet), len(socketSet), khz
}

// blockFilesystems are the filesystems mounted from /dev devices, one per
// device, with their size.
func blockFilesystems(mountinfo string) []FsInfo {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []FsInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+3 || len(fields) < 5 {
			continue
		}
		mountPoint, fsType, source := fields[4], fields[sep+1], fields[sep+2]
		if !strings.HasPrefix(source, "/dev/") || seen[source] {
			continue
		}
		u, err := statfs(mountPoint)
		if err != nil {
			continue
		}
		seen[source] = true
		out = append(out, FsInfo{Device: source, Capacity: u.capacity, Type: "vfs", Inodes: u.inodes, HasInodes: fsType != "btrfs" && u.inodes > 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

func netDevices(dir string) []NetInfo {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []NetInfo
	for _, e := range entries {
		name := e.Name()
		if name == "lo" || strings.HasPrefix(name, "veth") {
			continue
		}
		n := NetInfo{Name: name, MacAddress: firstLine(dir + "/" + name + "/address")}
		n.Mtu, _ = strconv.ParseInt(firstLine(dir+"/"+name+"/mtu"), 10, 64)
		n.Speed, _ = strconv.ParseInt(firstLine(dir+"/"+name+"/speed"), 10, 64)
		out = append(out, n)
	}
	return out
}
