package probe

import (
	"net"
	"strconv"
	"time"

	"k8s.io/klog/v2"
)

// TCP succeeds when a connection to host:port opens within timeout.
func TCP(host string, port int, timeout time.Duration) (Result, string, error) {
	d := dialer()
	d.Timeout = timeout
	conn, err := d.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		// Refused, unreachable and timed out alike are failures.
		return Failure, err.Error(), nil
	}
	if err := conn.Close(); err != nil {
		klog.V(4).InfoS("Closing a TCP probe's connection failed", "err", err)
	}
	return Success, "", nil
}
