// Package containerd runs the node's containerd the way k3s does: skiff
// writes its config, starts it in its own process group so that it (and
// the pods' shims) outlive skiff, and reuses it when skiff starts again.
package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
)

const (
	defaultStartTimeout = 60 * time.Second
	stopGracePeriod     = 10 * time.Second
	// sun_path holds 108 bytes; containerd also listens on <socket>.ttrpc.
	maxSocketPath = 107 - len(".ttrpc")
)

// Options say how to run containerd.
type Options struct {
	// DataDir holds everything of this containerd: config.toml, root,
	// state, the socket, its log and pid file, certs.d. Required.
	DataDir string
	// Binary defaults to "containerd" from PATH.
	Binary string
	// SandboxImage defaults to DefaultSandboxImage.
	SandboxImage string
	// CNIBinDir defaults to cni.FindBinDir(); CNIConfDir to <DataDir>/net.d.
	CNIBinDir, CNIConfDir string
	// RegistryMirrors maps a registry host (as image names spell it, e.g.
	// registry.k8s.io) to mirror URLs tried in order before it, e.g.
	// http://127.0.0.1:5000 (plain http works for loopback).
	RegistryMirrors map[string][]string
	// StartTimeout bounds the wait for CRI to answer; default 60 s.
	StartTimeout time.Duration
}

func (o Options) socketPath() string  { return filepath.Join(o.DataDir, "containerd.sock") }
func (o Options) configPath() string  { return filepath.Join(o.DataDir, "config.toml") }
func (o Options) pidPath() string     { return filepath.Join(o.DataDir, "containerd.pid") }
func (o Options) logPath() string     { return filepath.Join(o.DataDir, "containerd.log") }
func (o Options) registryDir() string { return filepath.Join(o.DataDir, "certs.d") }
func (o Options) lockPath() string    { return filepath.Join(o.DataDir, "containerd.lock") }
func (o Options) endpoint() string    { return "unix://" + o.socketPath() }
func (o Options) startTimeout() time.Duration {
	if o.StartTimeout > 0 {
		return o.StartTimeout
	}
	return defaultStartTimeout
}

// withDefaults fills in o's defaults and checks what containerd needs.
func (o Options) withDefaults() (Options, error) {
	if o.DataDir == "" {
		return o, errors.New("containerd: no data dir")
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return o, fmt.Errorf("containerd: data dir: %w", err)
	}
	o.DataDir = dir
	if n := len(o.socketPath()); n > maxSocketPath {
		return o, fmt.Errorf("containerd: socket path %s is %d bytes long, longer than a unix socket allows (%d): use a shorter data dir", o.socketPath(), n, maxSocketPath)
	}
	if o.Binary == "" {
		o.Binary = "containerd"
	}
	bin, err := exec.LookPath(o.Binary)
	if err != nil {
		return o, fmt.Errorf("containerd: %w (on Debian: apt-get install containerd, or run hack/node-deps.sh)", err)
	}
	o.Binary = bin
	// The config names the runc runtime; the shim finds runc in PATH.
	if _, err := exec.LookPath("runc"); err != nil {
		return o, fmt.Errorf("containerd: %w (on Debian: apt-get install runc, or run hack/node-deps.sh)", err)
	}
	if o.SandboxImage == "" {
		o.SandboxImage = DefaultSandboxImage
	}
	if o.CNIBinDir == "" {
		if o.CNIBinDir, err = cni.FindBinDir(); err != nil {
			return o, fmt.Errorf("containerd: %w", err)
		}
	}
	if o.CNIConfDir == "" {
		o.CNIConfDir = filepath.Join(o.DataDir, "net.d")
	}
	return o, nil
}

// Process is a running containerd.
type Process struct {
	opts    Options
	pid     int
	version *runtimeapi.VersionResponse
	// exited is closed once the process is reaped; nil when this skiff
	// did not start it (then only polling /proc tells).
	exited chan struct{}
}

// Address is containerd's socket path, for k8s.io/cri-client and ctr.
func (p *Process) Address() string { return p.opts.socketPath() }

// Endpoint is Address as a CRI endpoint (unix://...).
func (p *Process) Endpoint() string { return p.opts.endpoint() }

// Pid of the containerd process.
func (p *Process) Pid() int { return p.pid }

// Version is the runtime as nodeInfo.containerRuntimeVersion names it,
// <runtime name>://<runtime version> as its CRI reports them.
func (p *Process) Version() string {
	return p.version.RuntimeName + "://" + p.version.RuntimeVersion
}

// CNIConfDir is where containerd looks for the pod network's conflist.
func (p *Process) CNIConfDir() string { return p.opts.CNIConfDir }

// LogPath is containerd's log file.
func (p *Process) LogPath() string { return p.opts.logPath() }

// Start returns the containerd of o.DataDir once its CRI answers: the one
// an earlier Start left running when it still is (and its config did not
// change), else a new one in its own process group, logging to
// <DataDir>/containerd.log. It outlives skiff; Stop ends it.
func Start(ctx context.Context, o Options) (*Process, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{o.DataDir, o.CNIConfDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	unlock, err := lockDataDir(o)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if err := writeRegistryHosts(o); err != nil {
		return nil, fmt.Errorf("containerd: registry hosts: %w", err)
	}
	changed, err := cni.WriteFileIfChanged(o.configPath(), []byte(renderConfig(o)), 0o644)
	if err != nil {
		return nil, fmt.Errorf("containerd: config: %w", err)
	}

	if pid := runningPid(o); pid > 0 {
		old := &Process{opts: o, pid: pid}
		if changed {
			klog.InfoS("Restarting containerd: its config changed", "pid", pid, "config", o.configPath())
			if err := old.Stop(ctx); err != nil {
				return nil, err
			}
		} else if v, err := criVersion(ctx, o, 5*time.Second); err == nil {
			old.version = v
			klog.InfoS("Reusing running containerd", "pid", pid, "address", o.socketPath(), "version", old.Version())
			return old, nil
		} else {
			// Alive but deaf (wedged, or still starting from a crashed
			// skiff's attempt): replace it.
			klog.InfoS("Restarting containerd: its CRI does not answer", "pid", pid, "err", err)
			if err := old.Stop(ctx); err != nil {
				return nil, err
			}
		}
	}
	return start(ctx, o)
}

func start(ctx context.Context, o Options) (*Process, error) {
	logFile, err := os.OpenFile(o.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("containerd: log: %w", err)
	}
	defer logFile.Close() // the child has its own copy
	logOffset, _ := logFile.Seek(0, 2)
	fmt.Fprintf(logFile, "--- skiff starts containerd at %s\n", time.Now().Format(time.RFC3339))

	cmd := exec.Command(o.Binary, "--config", o.configPath())
	cmd.Dir = o.DataDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and no parent-death signal: containerd and the
	// pods must survive skiff being killed or stopped by a terminal's ^C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("containerd: start %s: %w", o.Binary, err)
	}
	p := &Process{opts: o, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap, so a dead containerd is not a zombie that looks alive
		close(p.exited)
	}()
	if _, err := cni.WriteFileIfChanged(o.pidPath(), []byte(strconv.Itoa(p.pid)+"\n"), 0o644); err != nil {
		_ = p.Stop(ctx)
		return nil, fmt.Errorf("containerd: pid file: %w", err)
	}
	klog.InfoS("Started containerd", "pid", p.pid, "config", o.configPath(), "log", o.logPath())

	startedAt := time.Now()
	deadline := startedAt.Add(o.startTimeout())
	nextReport := startedAt.Add(5 * time.Second)
	for {
		v, err := criVersion(ctx, o, 2*time.Second)
		if err == nil {
			p.version = v
			klog.InfoS("Containerd is up", "pid", p.pid, "address", o.socketPath(), "version", p.Version(), "after", time.Since(startedAt).Round(time.Millisecond))
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("containerd exited while starting (%s): %s", cmd.ProcessState, logTail(o.logPath(), logOffset))
		default:
		}
		now := time.Now()
		if now.After(deadline) {
			_ = p.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("containerd's CRI did not answer within %s: %v; log: %s", o.startTimeout(), err, logTail(o.logPath(), logOffset))
		}
		if now.After(nextReport) {
			klog.InfoS("Waiting for containerd's CRI", "pid", p.pid, "address", o.socketPath(), "waited", now.Sub(startedAt).Round(time.Second), "err", err)
			nextReport = now.Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			_ = p.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("containerd: %w", ctx.Err())
		case <-p.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends containerd: SIGTERM, SIGKILL after 10 s (or when ctx ends).
// The pods' containers keep running in their shims; a later Start's
// containerd adopts them.
func (p *Process) Stop(ctx context.Context) error {
	if !p.alive() {
		p.removePidFile()
		return nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("containerd: stop pid %d: %w", p.pid, err)
	}
	if !p.waitGone(ctx, stopGracePeriod) {
		klog.InfoS("Killing containerd: still running after SIGTERM", "pid", p.pid, "gracePeriod", stopGracePeriod)
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("containerd: kill pid %d: %w", p.pid, err)
		}
		if !p.waitGone(context.WithoutCancel(ctx), 5*time.Second) {
			return fmt.Errorf("containerd: pid %d still there after SIGKILL", p.pid)
		}
	}
	p.removePidFile()
	klog.InfoS("Stopped containerd", "pid", p.pid)
	return nil
}

func (p *Process) removePidFile() {
	if pid, _ := readPid(p.opts.pidPath()); pid == p.pid {
		_ = os.Remove(p.opts.pidPath())
	}
}

func (p *Process) alive() bool {
	if p.exited != nil {
		select {
		case <-p.exited:
			return false
		default:
			return true
		}
	}
	return isContainerdOf(p.pid, p.opts)
}

// waitGone reports whether the process ended within timeout.
func (p *Process) waitGone(ctx context.Context, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !p.alive() {
			return true
		}
		select {
		case <-p.exited: // nil channel when not ours: never ready
			return true
		case <-tick.C:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// runningPid is the pid of the containerd this data dir's pid file names,
// if that process still runs and is that containerd; else 0.
func runningPid(o Options) int {
	pid, err := readPid(o.pidPath())
	if err != nil || pid <= 0 {
		return 0
	}
	if !isContainerdOf(pid, o) {
		return 0
	}
	return pid
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// isContainerdOf tells whether pid is a live (not zombie) containerd run
// with o's config, so a recycled pid is never mistaken for it.
func isContainerdOf(pid int, o Options) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != filepath.Base(o.Binary) {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if (args[i] == "--config" || args[i] == "-c") && args[i+1] == o.configPath() {
			return true
		}
	}
	return false
}

// criVersion asks o's containerd for its CRI version through cri-client.
func criVersion(ctx context.Context, o Options, timeout time.Duration) (*runtimeapi.VersionResponse, error) {
	if _, err := os.Stat(o.socketPath()); err != nil {
		return nil, fmt.Errorf("no socket yet: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	svc, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(o.endpoint()).
		WithConnectionTimeout(timeout).
		WithTracerProvider(nil).
		Build(ctx)
	if err != nil {
		return nil, err
	}
	defer svc.Close(ctx)
	return svc.Version(ctx, "v1")
}

// lockDataDir keeps two skiffs from starting containerd on one data dir at
// once.
func lockDataDir(o Options) (func(), error) {
	f, err := os.OpenFile(o.lockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("containerd: lock %s: %w", o.lockPath(), err)
	}
	return func() { f.Close() }, nil
}

// logTail is the end of what containerd logged since offset, to say why it
// failed.
func logTail(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return "(no log)"
	}
	data = data[offset:]
	const max = 2000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(bytes.TrimSpace(data))
}
