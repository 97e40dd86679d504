package probe

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if res, out, err := TCP("127.0.0.1", port, time.Second); res != Success || out != "" || err != nil {
		t.Errorf("open port: %s %q %v", res, out, err)
	}
	l.Close()
	res, out, err := TCP("127.0.0.1", port, time.Second)
	if res != Failure || !strings.Contains(out, "connection refused") || err != nil {
		t.Errorf("closed port: %s %q %v", res, out, err)
	}
}
