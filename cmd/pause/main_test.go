package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildPause builds the static binary as images ship it.
func buildPause(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

func TestVersion(t *testing.T) {
	bin := buildPause(t)
	for _, arg := range []string{"-v", "-V"} {
		out, err := exec.Command(bin, "x", arg).Output()
		if err != nil {
			t.Fatalf("pause %s: %v", arg, err)
		}
		if got, want := string(out), "pause.c v3.10.2\n"; got != want {
			t.Errorf("pause %s printed %q, want %q", arg, got, want)
		}
	}
}

func TestSignalsStopIt(t *testing.T) {
	bin := buildPause(t)
	for sig, name := range map[syscall.Signal]string{syscall.SIGTERM: "Terminated", syscall.SIGINT: "Interrupt"} {
		cmd := exec.Command(bin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Its warning says the handlers are about to be set up; give it a moment.
		time.Sleep(200 * time.Millisecond)
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("after %v: %v (want exit 0)", sig, err)
		}
		want := "Warning: pause should be the first process\nShutting down, got signal: " + name + "\n"
		if stderr.String() != want {
			t.Errorf("after %v stderr = %q, want %q", sig, stderr.String(), want)
		}
	}
}

// TestReapsOrphansAsPID1 runs pause as PID 1 of a new PID namespace, leaves
// an orphan in it (a child whose parent exits, so the kernel hands it to
// pause) and checks that pause reaps it once it exits.
func TestReapsOrphansAsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a PID namespace needs root")
	}
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (util-linux)", tool)
		}
	}
	bin := buildPause(t)
	cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var pause int
	for deadline := time.Now().Add(5 * time.Second); pause == 0; {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if f := strings.Fields(string(data)); len(f) > 0 {
			pause, _ = strconv.Atoi(f[0])
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare started no pause")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	// sh (PID 2 there) starts sleep and exits: sleep is pause's now.
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pause), "-p", "--", "/bin/sh", "-c", "sleep 0.5 </dev/null >/dev/null 2>&1 &").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	time.Sleep(100 * time.Millisecond)
	if kids := childrenOf(pause); len(kids) == 0 {
		t.Fatalf("the orphan was not handed to pause (pid %d)", pause)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		kids := childrenOf(pause)
		if len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pause left children %v (states %v): not reaped", kids, states(kids))
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := syscall.Kill(pause, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("unshare: %v", err)
	}
	// As PID 1 it does not warn.
	if got, want := stderr.String(), "Shutting down, got signal: Terminated\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func childrenOf(pid int) []int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var kids []int
	for _, f := range strings.Fields(string(data)) {
		if k, err := strconv.Atoi(f); err == nil {
			kids = append(kids, k)
		}
	}
	// Threads other than the main one may be the parent too.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		if task.Name() == strconv.Itoa(pid) {
			continue
		}
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(data)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

func states(pids []int) []string {
	var s []string
	for _, p := range pids {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if i := strings.LastIndex(string(data), ")"); i > 0 && len(data) > i+2 {
			s = append(s, string(data[i+2]))
		}
	}
	return s
}
