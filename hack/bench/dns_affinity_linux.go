package main

import (
	"errors"

	"golang.org/x/sys/unix"
)

// cpuSet is a set of CPUs for setAffinity.
type cpuSet struct{ s unix.CPUSet }

func (c *cpuSet) add(cpu int) { c.s.Set(cpu) }

// errNoThread: the thread ended meanwhile.
var errNoThread = unix.ESRCH

// setAffinity pins thread tid to the CPUs of set.
func setAffinity(tid int, set cpuSet) error {
	err := unix.SchedSetaffinity(tid, &set.s)
	if errors.Is(err, unix.ESRCH) {
		return errNoThread
	}
	return err
}
