package stats

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// readMeminfo is /proc/meminfo in bytes, by key (MemTotal, MemFree, ...).
func readMeminfo(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemTotal:       24608204 kB
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			v *= 1024
		}
		out[key] = v
	}
	return out, sc.Err()
}

// bootTime is btime of /proc/stat.
func bootTime(procStat string) (time.Time, error) {
	data, err := os.ReadFile(procStat)
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parsing btime in %s: %w", procStat, err)
			}
			return time.Unix(secs, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("no btime in %s", procStat)
}

// iface is one line of /proc/net/dev.
type iface struct {
	name                               string
	rxBytes, rxErrors, txBytes, txErrs uint64
}

// cadvisor leaves these out of a network namespace's interfaces: the
// loopback and the host ends of container links.
var ignoredInterfacePrefixes = []string{"lo", "veth", "docker", "nerdctl"}

// readNetDev parses a /proc/<pid>/net/dev file, sorted by name, without
// the ignored interfaces.
func readNetDev(path string) ([]iface, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []iface
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		ignored := false
		for _, p := range ignoredInterfacePrefixes {
			if strings.HasPrefix(name, p) {
				ignored = true
			}
		}
		fields := strings.Fields(rest)
		if ignored || len(fields) < 16 {
			continue
		}
		num := func(i int) uint64 { v, _ := strconv.ParseUint(fields[i], 10, 64); return v }
		// receive: bytes packets errs drop fifo frame compressed multicast;
		// transmit: bytes packets errs ...
		out = append(out, iface{name: name, rxBytes: num(0), rxErrors: num(2), txBytes: num(8), txErrs: num(10)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// fsUsage is a statfs of the filesystem holding path.
type fsUsage struct {
	capacity, available, used uint64
	inodes, inodesFree        uint64
}

func statfs(path string) (fsUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fsUsage{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return fsUsage{
		capacity:   st.Blocks * bs,
		available:  st.Bavail * bs,
		used:       (st.Blocks - st.Bfree) * bs,
		inodes:     st.Files,
		inodesFree: st.Ffree,
	}, nil
}

// diskUsage sums the sizes and counts the inodes of the files under dir
// (a container's log directory).
func diskUsage(dir string) (bytes, inodes uint64, err error) {
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		inodes++
		if info, err := d.Info(); err == nil && d.Type().IsRegular() {
			bytes += uint64(info.Size())
		}
		return nil
	})
	return bytes, inodes, err
}

// pidLimits are the node's process limit (the smaller of pid_max and
// threads-max, as upstream) and its number of processes.
func pidLimits(procSys string) (maxPID, procs int64, err error) {
	for _, f := range []string{"kernel/pid_max", "kernel/threads-max"} {
		v, err := readUint(filepath.Join(procSys, f))
		if err != nil {
			return 0, 0, err
		}
		if maxPID == 0 || int64(v) < maxPID {
			maxPID = int64(v)
		}
	}
	var info unix.Sysinfo_t
	if err := unix.Sysinfo(&info); err != nil {
		return 0, 0, fmt.Errorf("sysinfo: %w", err)
	}
	return maxPID, int64(info.Procs), nil
}
