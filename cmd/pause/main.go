// Command pause is the infra container of a pod sandbox, as upstream's
// build/pause: it holds the pod's namespaces by doing nothing until told to
// stop, and as PID 1 of a shared PID namespace it reaps orphaned children.
// Build it static and small: CGO_ENABLED=0 go build -ldflags "-s -w".
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is the image tag it ships in (-ldflags "-X main.version=...").
var version = "v3.10.2"

// signalNames are psignal(3)'s descriptions, which upstream prints.
var signalNames = map[syscall.Signal]string{
	syscall.SIGINT:  "Interrupt",
	syscall.SIGTERM: "Terminated",
}

func main() {
	for _, arg := range os.Args[1:] {
		if strings.EqualFold(arg, "-v") {
			// Upstream's output, so that tools reading it see the same.
			fmt.Printf("pause.c %s\n", version)
			return
		}
	}
	if os.Getpid() != 1 {
		// Not an error: pause is used outside infra containers too.
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}

	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		sig := s.(syscall.Signal)
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %s\n", signalNames[sig])
		os.Exit(0)
	}
}

// reap collects every child that has exited. Signals coalesce, so one
// SIGCHLD may stand for several children.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
