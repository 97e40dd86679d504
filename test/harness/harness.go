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
}

// Server is one running apiserver process.
type Server struct {
	Name       string // "skiff" or "upstream"
	Kubeconfig string // admin kubeconfig (system:masters)
	URL        string // https://127.0.0.1:<port>
	Dir        string
	LogPath    string // the process' stdout and stderr
	Cmd        *exec.Cmd
	PID        int
	StartedAt  time.Time // the process was started
	ReadyAt    time.Time // /readyz first answered 200

	removeDir bool
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

// startWithRetry runs start with a fresh free port until it succeeds, tries
// three times when the port was taken in the meantime.
func startWithRetry(start func(port int) error) error {
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		if err = start(port); err == nil || !errors.Is(err, errAddrInUse) {
			return err
		}
	}
	return err
}

var errAddrInUse = errors.New("address already in use")

// addrInUse wraps err with errAddrInUse when the log says the port was taken.
func addrInUse(err error, log string) error {
	if strings.Contains(log, "address already in use") {
		return fmt.Errorf("%w: %w", errAddrInUse, err)
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
