package containerd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperDirEnv = "SKIFF_TEST_CONTAINERD_HELPER_DIR"

// TestHelperStartsContainerd is the "skiff" of
// TestContainerdOutlivesKilledSkiff: run in a child process, it starts
// containerd, prints its pid and waits to be killed.
func TestHelperStartsContainerd(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("only run as the child of TestContainerdOutlivesKilledSkiff")
	}
	p, err := Start(context.Background(), Options{DataDir: dir})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("pid:", p.Pid())
	time.Sleep(time.Minute)
	os.Exit(1)
}

// TestContainerdOutlivesKilledSkiff kills the process group of the
// process that started containerd with SIGKILL: containerd keeps running
// (it has its own group and no parent-death signal) and the next Start
// reuses it.
func TestContainerdOutlivesKilledSkiff(t *testing.T) {
	requireContainerd(t)
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestHelperStartsContainerd$", "-test.count=1")
	child.Env = append(os.Environ(), helperDirEnv+"="+dir)
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	lines := bufio.NewScanner(out)
	for pid == 0 && lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "pid: "); ok {
			pid, _ = strconv.Atoi(v)
		} else if strings.HasPrefix(lines.Text(), "error:") {
			t.Fatal(lines.Text())
		}
	}
	if pid == 0 {
		_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
		t.Fatalf("helper printed no pid (%v)", child.Wait())
	}
	t.Cleanup(func() {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if err := syscall.Kill(-child.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	time.Sleep(100 * time.Millisecond)
	if !alive(pid) || isZombie(pid) {
		t.Fatalf("containerd %d died with the process group that started it", pid)
	}
	p := startForTest(t, Options{DataDir: dir})
	if p.Pid() != pid {
		t.Errorf("Start after the starter was killed ran pid %d, want the running %d", p.Pid(), pid)
	}
}
