// Package harness starts apiservers for tests and benchmarks that compare
// skiff with upstream: a `skiff server` process (StartSkiff) and an upstream
// kube-apiserver process on an in-process etcd (StartUpstream). Both come
// back as a Server with an admin kubeconfig (group system:masters).
//
// It is a normal package so that hack/bench can import it as well as tests.
package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/pkg/etcd"
)

const (
	startTimeout = 3 * time.Minute  // process start until /readyz answers 200
	stopTimeout  = 30 * time.Second // SIGTERM until the process must have exited
)

// Options tune a server start. The zero value is fine.
type Options struct {
	// Dir holds the server's data, certificates, kubeconfig and log. Empty: a
	// fresh temporary directory, removed by Stop.
	Dir string
	// Args are extra command-line flags for the server.
	Args []string
	// Port is the loopback port to listen on, e.g. an earlier server's to
	// start it again on the same Dir and port. 0: a free port, and another
	// one if it was taken in the meantime.
	Port int
	// Command is the skiff subcommand StartSkiff runs: "server" (empty)
	// or "apiserver" (the API server without controllers).
	Command string
	// LocalNode lets `skiff server` run its local node (containerd, real
	// pods); without it the server gets --disable-agent, so that tests and
	// benchmarks see only the nodes they start.
	LocalNode bool
	// DNS lets `skiff server` serve the cluster DNS on its advertise
	// address's port 53; without it the server gets --disable-dns, as
	// servers side by side would contend for that port.
	DNS bool
	// NodeNetwork lets the local node run its service proxy, pod network
	// routes and NetworkPolicy enforcement; without it the server gets
	// --disable-kube-proxy, --disable-network-policy and
	// --pod-network-backend none, as their rules and routes (in the
	// machine's own network namespace, under fixed chain names) would mix
	// with those of other servers' nodes on the machine.
	NodeNetwork bool
}

// Server is one running apiserver process.
type Server struct {
	Name       string // "skiff" or "upstream"
	Kubeconfig string // admin kubeconfig (system:masters)
	URL        string // https://127.0.0.1:<port>
	Port       int
	Dir        string
	LogPath    string // the process' stdout and stderr
	Cmd        *exec.Cmd
	PID        int
	StartedAt  time.Time // the process was started
	ReadyAt    time.Time // /readyz first answered 200

	removeDir bool
	command   string         // skiff only: the subcommand
	etcd      *etcd.Embedded // upstream only
	exited    chan struct{}  // closed once the process has exited
	waitErr   error          // valid once exited is closed
}

// RESTConfig returns a client config for the admin kubeconfig, without
// client-side rate limits.
func (s *Server) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	return cfg, nil
}

// Exited is closed when the process has exited (also on a crash).
func (s *Server) Exited() <-chan struct{} { return s.exited }

// ExitErr is the process' exit error once Exited is closed (nil for a
// clean exit), and nil while it runs.
func (s *Server) ExitErr() error {
	select {
	case <-s.exited:
		return s.waitErr
	default:
		return nil
	}
}

// WaitReady polls /readyz with the admin credentials until it answers 200;
// it fails when the process exits or ctx ends first.
func (s *Server) WaitReady(ctx context.Context) error { return s.waitReady(ctx) }

// Kill sends SIGKILL, as a crash would end the process, and waits up to 10s
// for it to be gone. Unlike Stop it leaves everything else as it is: the
// Dir (even a temporary one), and upstream's etcd. Stop after Kill cleans
// those up and returns the kill's exit error.
func (s *Server) Kill() error {
	s.kill()
	select {
	case <-s.exited:
		return nil
	default:
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", s.Name, s.PID)
	}
}

// Stop sends SIGTERM, waits up to 30s for the process to exit, then kills it;
// then stops the in-process etcd (upstream) and removes a temporary Dir.
// It returns the process' exit error, if it did not exit cleanly.
func (s *Server) Stop() error {
	var err error
	if s.Cmd != nil && s.Cmd.Process != nil {
		_ = s.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = s.Cmd.Process.Kill()
			<-s.exited
		}
		err = s.waitErr
	}
	if s.etcd != nil {
		s.etcd.Close()
		s.etcd = nil
	}
	if s.removeDir {
		os.RemoveAll(s.Dir)
	}
	return err
}

// RSS returns the resident set size of the server process in bytes (for
// skiff that includes its embedded etcd; upstream's etcd runs in the
// caller's process and is not counted).
func (s *Server) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest) // "123456 kB"
			if len(fields) != 2 || fields[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.PID)
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	data, _ := os.ReadFile(s.LogPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// prepareDir returns the server's directory, creating a temporary one when
// opts.Dir is empty.
func prepareDir(opts Options, name string) (dir string, temporary bool, err error) {
	if opts.Dir != "" {
		return opts.Dir, false, os.MkdirAll(opts.Dir, 0o700)
	}
	dir, err = os.MkdirTemp("", "harness-"+name+"-")
	return dir, true, err
}

// launch starts the process with stdout and stderr in s.LogPath. onLine, if
// set, sees each stdout line.
func (s *Server) launch(bin string, args []string, onLine func(string)) error {
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	var stdout *lineWriter
	if onLine != nil {
		stdout = &lineWriter{fn: func(line string) {
			fmt.Fprintln(logf, line)
			onLine(line)
		}}
		cmd.Stdout = stdout
	} else {
		cmd.Stdout = logf
	}
	s.StartedAt = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	s.Cmd, s.PID, s.exited = cmd, cmd.Process.Pid, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		if stdout != nil {
			stdout.flush()
		}
		fmt.Fprintf(logf, "==== %s: exited: %v\n", time.Now().Format(time.RFC3339), s.waitErr)
		logf.Close()
		close(s.exited)
	}()
	return nil
}

// waitReady polls /readyz with the admin credentials until it answers 200,
// the process exits or ctx ends, and sets ReadyAt.
func (s *Server) waitReady(ctx context.Context) error {
	cfg, err := s.RESTConfig()
	if err != nil {
		return err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	client.Timeout = 5 * time.Second
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.ReadyAt = time.Now()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready (%v); log tail:\n%s", s.Name, s.waitErr, s.LogTail(30))
		case <-ctx.Done():
			return fmt.Errorf("%s: /readyz not 200 (%s): %w; log tail:\n%s", s.Name, last, ctx.Err(), s.LogTail(30))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// startWithRetry runs start on port, or, when port is 0, with a fresh free
// port until it succeeds, three times at most while the port was taken in
// the meantime.
func startWithRetry(port int, start func(port int) error) error {
	if port != 0 {
		return start(port)
	}
	return OnFreePort(start)
}

// OnFreePort calls start with a loopback port that is free and that this
// process has not handed out before, and again with another one while
// start's error says that the port was taken in the meantime ("address
// already in use"), three times at most. It returns start's last error.
func OnFreePort(start func(port int) error) error {
	var err error
	for range 3 {
		var port int
		if port, err = FreePort(); err != nil {
			return err
		}
		if err = start(port); err == nil || !isAddrInUse(err) {
			return err
		}
	}
	return err
}

var errAddrInUse = errors.New("address already in use")

func isAddrInUse(err error) bool {
	return errors.Is(err, errAddrInUse) || strings.Contains(err.Error(), errAddrInUse.Error())
}

// addrInUse wraps err with errAddrInUse when the log says the port was taken.
func addrInUse(err error, log string) error {
	if strings.Contains(log, "address already in use") {
		return fmt.Errorf("%w: %w", errAddrInUse, err)
	}
	return err
}

var (
	portsMu    sync.Mutex
	portsTaken = map[int]bool{}
)

// FreePort returns a loopback TCP port that is free now and that this
// process has not handed out before, so that servers started side by side,
// or restarted on their old port, do not get the same one.
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsTaken[port] {
			portsTaken[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port found")
}

// repoRoot walks up from the working directory to the directory of go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// lineWriter calls fn for each complete line written to it.
type lineWriter struct {
	fn  func(string)
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}
