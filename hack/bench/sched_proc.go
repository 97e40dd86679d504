package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/test/harness"
)

// process is the agent or a scheduler, run by the bench.
type process struct {
	cmd     *exec.Cmd
	pid     int
	port    int // its --secure-port
	logPath string
	exited  chan struct{}
	waitErr error // valid once exited is closed
}

// startProcess runs bin with args(port) for a free port, output to logPath.
func startProcess(logPath, bin string, args func(port int) []string) (*process, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	argv := args(port)
	fmt.Fprintf(logf, "==== %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(argv, " "))
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = schedSysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, port: port, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM and kills the process if it has not exited after 30s.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("had exited already: %v", p.waitErr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("killed 30s after SIGTERM")
	}
}

func (p *process) logTail(n int) string { return (&harness.Server{LogPath: p.logPath}).LogTail(n) }

// rssMiB is the process' resident set size, 0 if unknown.
func (p *process) rssMiB() float64 {
	rss, _ := (&harness.Server{PID: p.pid}).RSS()
	return float64(rss) / (1 << 20)
}

// componentClient is an HTTPS client for a component's own server (its
// self-signed certificate is not checked) presenting the admin
// credentials of cfg, which /metrics authorizes through the API server.
func componentClient(cfg *rest.Config) (*http.Client, error) {
	c := rest.CopyConfig(cfg)
	c.TLSClientConfig.Insecure = true
	c.TLSClientConfig.CAData, c.TLSClientConfig.CAFile = nil, ""
	tc, err := rest.TLSConfigFor(c)
	if err != nil {
		return nil, err
	}
	if tc == nil {
		tc = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a loopback component's self-signed certificate
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

// get fetches path from the process' secure port.
func (p *process) get(ctx context.Context, hc *http.Client, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", p.port, path), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitHealthy polls /healthz until it answers 200.
func (p *process) waitHealthy(ctx context.Context, hc *http.Client, within time.Duration) error {
	return poll(ctx, p, 200*time.Millisecond, within, func() (bool, string) {
		code, body, err := p.get(ctx, hc, "/healthz")
		return err == nil && code == http.StatusOK, fmt.Sprintf("/healthz: %d %s %v", code, strings.TrimSpace(body), err)
	})
}

// poll calls check every interval until it reports done. It fails when
// within has passed (naming check's last state), when ctx ends or when p
// (if not nil) has exited (with the tail of its log).
func poll(ctx context.Context, p *process, every, within time.Duration, check func() (done bool, state string)) error {
	var exited <-chan struct{}
	if p != nil {
		exited = p.exited
	}
	deadline := time.Now().Add(within)
	for {
		done, state := check()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			if p != nil {
				return fmt.Errorf("not done within %s: %s; log tail:\n%s", within, state, p.logTail(8))
			}
			return fmt.Errorf("not done within %s: %s", within, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("exited: %v; log tail:\n%s", p.waitErr, p.logTail(8))
		case <-time.After(every):
		}
	}
}

// sleep pauses for d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// schedCPU is the CPU time of the processes involved in a run.
type schedCPU struct {
	at                       time.Time
	busy                     time.Duration // all CPUs, all processes
	self, server, agent, sch time.Duration
}

func sampleSchedCPU(server, agent, scheduler int) schedCPU {
	base := sampleCPU(server)
	return schedCPU{at: base.at, busy: base.busy, self: base.self, server: base.server,
		agent: procCPU(strconv.Itoa(agent)), sch: procCPU(strconv.Itoa(scheduler))}
}

// schedCPUUse is what happened between two samples, in CPU seconds.
type schedCPUUse struct {
	Scheduler float64 `json:"scheduler_cpu_seconds"`
	Server    float64 `json:"server_cpu_seconds"`
	Agent     float64 `json:"agent_cpu_seconds"`
	Bench     float64 `json:"bench_cpu_seconds"`
	// OtherShare is the fraction of all CPUs' time that other processes
	// used: 0.5 on 2 CPUs means one whole CPU went to someone else.
	OtherShare float64 `json:"other_cpu_share"`
}

func (a schedCPU) until(b schedCPU, cpus int) schedCPUUse {
	u := schedCPUUse{Scheduler: (b.sch - a.sch).Seconds(), Server: (b.server - a.server).Seconds(),
		Agent: (b.agent - a.agent).Seconds(), Bench: (b.self - a.self).Seconds()}
	capacity := b.at.Sub(a.at).Seconds() * float64(cpus)
	if capacity > 0 {
		other := (b.busy - a.busy).Seconds() - u.Scheduler - u.Server - u.Agent - u.Bench
		u.OtherShare = max(other, 0) / capacity
	}
	return u
}
