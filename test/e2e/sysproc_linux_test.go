package e2e

import "syscall"

// serverSysProcAttr makes the kernel kill a skiff server if the test binary
// dies without stopping it, so no server outlives an aborted test run.
func serverSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
