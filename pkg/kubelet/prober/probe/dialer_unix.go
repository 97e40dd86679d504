//go:build unix

package probe

import (
	"net"
	"syscall"
)

// dialer lingers one second on close instead of the kernel's TIME-WAIT
// minute, so frequent probes do not pile up sockets (upstream issue
// 89898); not zero, which would reset the connection.
func dialer() *net.Dialer {
	return &net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
		},
	}
}
