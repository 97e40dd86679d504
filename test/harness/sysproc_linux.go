package harness

import "syscall"

// sysProcAttr makes the kernel kill a server if the process that started it
// dies without stopping it, so no server outlives an aborted run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
