package main

import "syscall"

// schedSysProcAttr makes the kernel kill the agent or a scheduler if this
// process dies without stopping it.
func schedSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
