package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc CPU times.
const clockTick = 100

// cpuSample is cumulative CPU time, to tell how much of the machine other
// processes took during a run (the machine is shared; its load average
// alone does not say whose load it is).
type cpuSample struct {
	at     time.Time
	busy   time.Duration // all CPUs, all processes (/proc/stat)
	self   time.Duration // this process: clients, and upstream's etcd
	server time.Duration // the server process
}

func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now(), self: procCPU("self"), server: procCPU(strconv.Itoa(serverPID))}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f {
			if i == 0 || i == 4 || i == 5 || i > 8 {
				continue // label, idle, iowait, guest (already in user)
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			s.busy += ticks(n)
		}
	}
	return s
}

// procCPU is utime+stime of /proc/<pid>/stat.
func procCPU(pid string) time.Duration {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data)[i+1:]) // from field 3, state
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return ticks(utime + stime)
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTick }

// cpuUse is what happened between two samples.
type cpuUse struct {
	ServerSeconds float64 `json:"server_cpu_seconds"`
	BenchSeconds  float64 `json:"bench_cpu_seconds"` // clients (+ etcd for upstream)
	// OtherShare is the fraction of all CPUs' time that other processes
	// used: 0.5 on 2 CPUs means one whole CPU went to someone else.
	OtherShare float64 `json:"other_cpu_share"`
}

func (a cpuSample) until(b cpuSample) cpuUse {
	u := cpuUse{ServerSeconds: (b.server - a.server).Seconds(), BenchSeconds: (b.self - a.self).Seconds()}
	capacity := b.at.Sub(a.at).Seconds() * float64(runtime.NumCPU())
	if capacity > 0 {
		other := (b.busy - a.busy).Seconds() - u.ServerSeconds - u.BenchSeconds
		u.OtherShare = max(other, 0) / capacity
	}
	return u
}
