package stats

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroups finds the cgroup files of a cgroup path such as
// /kubepods/burstable/pod<uid> on cgroup v1 (a hierarchy per controller)
// or v2 (one unified hierarchy).
type cgroups struct {
	// v2: the unified mount point; "" on v1.
	unified string
	// v1 mount points of the cpuacct and memory controllers.
	cpuacct, memory string
}

// findCgroups reads the mount table: v2 when /sys/fs/cgroup itself (or
// the only cgroup mount) is cgroup2, else v1's cpuacct and memory
// hierarchies wherever they are mounted (cpu,cpuacct or split).
func findCgroups(mountinfo string) (*cgroups, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	cg := &cgroups{}
	var unified string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 || len(fields) < 5 {
			continue
		}
		mountPoint, fsType, superOpts := fields[4], fields[sep+1], fields[sep+3]
		switch fsType {
		case "cgroup2":
			unified = mountPoint
		case "cgroup":
			for _, o := range strings.Split(superOpts, ",") {
				switch o {
				case "cpuacct":
					cg.cpuacct = mountPoint
				case "memory":
					cg.memory = mountPoint
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	if cg.cpuacct == "" && cg.memory == "" {
		if unified == "" {
			return nil, fmt.Errorf("no cgroup v1 cpuacct/memory or cgroup v2 mount found")
		}
		cg.unified = unified
	}
	return cg, nil
}

func (c *cgroups) v2() bool { return c.unified != "" }

// exists tells whether the cgroup is there (in the cpu accounting
// hierarchy).
func (c *cgroups) exists(path string) bool {
	dir := c.cpuacct
	if c.v2() {
		dir = c.unified
	}
	if dir == "" {
		dir = c.memory
	}
	_, err := os.Stat(filepath.Join(dir, path))
	return err == nil
}

// cpuUsage is the cgroup's cumulative CPU time in nanoseconds.
func (c *cgroups) cpuUsage(path string) (uint64, error) {
	if c.v2() {
		kv, err := readKeyValues(filepath.Join(c.unified, path, "cpu.stat"))
		if err != nil {
			return 0, err
		}
		usec, ok := kv["usage_usec"]
		if !ok {
			return 0, fmt.Errorf("no usage_usec in %s", filepath.Join(c.unified, path, "cpu.stat"))
		}
		return usec * 1000, nil
	}
	if c.cpuacct == "" {
		return 0, fmt.Errorf("no cpuacct cgroup hierarchy")
	}
	return readUint(filepath.Join(c.cpuacct, path, "cpuacct.usage"))
}

// memory is what a cgroup's memory accounting says, in bytes.
type memory struct {
	usage, workingSet, rss, pageFaults, majorPageFaults uint64
	// limit: 0 when unlimited.
	limit uint64
}

// unlimited v1 limits are a page-rounded MaxInt64; anything this large
// means no limit.
const unlimited = uint64(1) << 62

// memoryStats reads the cgroup's usage, working set (usage less inactive
// file pages, as cadvisor), RSS and page faults. On v2 the root cgroup
// has no memory.current: root is "/" and usage comes from /proc/meminfo.
func (c *cgroups) memoryStats(path string, meminfo string) (memory, error) {
	var m memory
	if c.v2() {
		dir := filepath.Join(c.unified, path)
		stat, err := readKeyValues(filepath.Join(dir, "memory.stat"))
		if err != nil {
			return m, err
		}
		if path == "/" || path == "" {
			mi, err := readMeminfo(meminfo)
			if err != nil {
				return m, err
			}
			m.usage = mi["MemTotal"] - mi["MemFree"]
		} else {
			if m.usage, err = readUint(filepath.Join(dir, "memory.current")); err != nil {
				return m, err
			}
			if l, err := readUint(filepath.Join(dir, "memory.max")); err == nil && l < unlimited {
				m.limit = l
			}
		}
		m.workingSet = sub(m.usage, stat["inactive_file"])
		m.rss = stat["anon"]
		m.pageFaults = stat["pgfault"]
		m.majorPageFaults = stat["pgmajfault"]
		return m, nil
	}
	if c.memory == "" {
		return m, fmt.Errorf("no memory cgroup hierarchy")
	}
	dir := filepath.Join(c.memory, path)
	usage, err := readUint(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return m, err
	}
	stat, err := readKeyValues(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return m, err
	}
	m.usage = usage
	m.workingSet = sub(usage, stat["total_inactive_file"])
	m.rss = stat["total_rss"]
	m.pageFaults = stat["total_pgfault"]
	m.majorPageFaults = stat["total_pgmajfault"]
	if l, err := readUint(filepath.Join(dir, "memory.limit_in_bytes")); err == nil && l < unlimited {
		m.limit = l
	}
	return m, nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return unlimited, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", path, err)
	}
	return v, nil
}

// readKeyValues reads "key value" lines (memory.stat, cpu.stat).
func readKeyValues(path string) (map[string]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kv := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
			kv[fields[0]] = v
		}
	}
	return kv, nil
}
