// Package netnstest gives tests network namespaces of their own: made
// with ip netns (removed when the test ends), commands and Go code run
// inside them, and tools on PATH that act in one.
package netnstest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips t unless it runs as root, may make network
// namespaces and finds ip and tools on PATH; why says what the test
// does as root, for the skip message.
func RequireRoot(t testing.TB, why string, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s on PATH", tool)
		}
	}
	if err := onThread(func() error { return unix.Unshare(unix.CLONE_NEWNET) }, func() error { return nil }); err != nil {
		t.Skipf("needs to make network namespaces (CAP_SYS_ADMIN): unshare: %v", err)
	}
}

// Add makes the network namespace name with its loopback up, removed
// when t ends.
func Add(t testing.TB, name string) {
	t.Helper()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	In(t, name, "ip", "link", "set", "lo", "up")
}

// Run runs a command and returns its output; it fails t with the output
// when the command fails.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// In is Run inside the network namespace ns.
func In(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return Run(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Do runs fn on an OS thread moved into the network namespace ns.
// Sockets made there stay there.
func Do(ns string, fn func() error) error {
	enter := func() error {
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns %s: %w", ns, err)
		}
		return nil
	}
	return onThread(enter, fn)
}

// onThread runs enter, which moves the OS thread to another network
// namespace, and fn when enter succeeded, on a locked thread that goes
// back to its namespace afterwards (it is discarded when that fails).
// The thread may be the process's main one, whose namespace /proc/net
// shows (the API server reads its routes there), so it must not stay
// elsewhere.
func onThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		err = enter()
		if err == nil {
			err = fn()
		}
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// ReadTCP connects from the network namespace ns to addr and returns
// what the server sends before it closes, trimmed; timeout bounds the
// connect and the read each.
func ReadTCP(ns, addr string, timeout time.Duration) (string, error) {
	var answer string
	err := Do(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		b, err := io.ReadAll(c)
		answer = strings.TrimSpace(string(b))
		return err
	})
	return answer, err
}

// ServeTCP listens on addr in the network namespace ns until t ends and
// runs handle for each connection, in a goroutine of its own, closing the
// connection after it.
func ServeTCP(t testing.TB, ns, addr string, handle func(net.Conn)) {
	t.Helper()
	var ln net.Listener
	if err := Do(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// ToolWrappers puts on PATH, for the rest of t, scripts named as tools
// that run the real ones inside the network namespace ns, so that code
// which finds them on PATH changes ns, never the host. Tools missing
// here are left out.
func ToolWrappers(t testing.TB, ns string, tools ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range tools {
		real, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns, real)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

// Eventually retries check until it passes, or fails t naming what when
// within has passed.
func Eventually(t testing.TB, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
