//go:build !linux

package main

import "errors"

type cpuSet struct{}

func (c *cpuSet) add(int) {}

var errNoThread = errors.New("no such thread")

func setAffinity(int, cpuSet) error { return errors.New("CPU affinity needs Linux") }
