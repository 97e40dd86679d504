package e2e

// The harness: starting and stopping skiff servers, finding and running
// kubectl binaries, and small text helpers. The tests themselves live in the
// other *_test.go files.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	serverStartTimeout = 2 * time.Minute  // until the "KUBECONFIG=" line
	serverStopTimeout  = 30 * time.Second // from SIGTERM to exit
	processTimeout     = 90 * time.Second // any single kubectl or skiff CLI call
	eventTimeout       = 30 * time.Second // waiting for one line of `kubectl get -w`
)

// ---------------------------------------------------------------------------
// skiff server processes

// server is one running `skiff server` process.
type server struct {
	dataDir    string
	port       int
	logPath    string // stderr (klog) and stdout of the process, appended
	kubeconfig string // admin kubeconfig announced on stdout

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited
	waitErr error         // the process' exit status; valid once exited is closed
}

var errAddrInUse = errors.New("address already in use")

func (s *server) url() string    { return fmt.Sprintf("https://127.0.0.1:%d", s.port) }
func (s *server) caFile() string { return filepath.Join(s.dataDir, "pki", "ca.crt") }

// startServer runs `skiff server` on dataDir and waits until it announces its
// kubeconfig and /readyz answers 200. port 0 picks a free port (and retries
// with another one if the port was taken in the meantime).
func startServer(dataDir, logPath string, port int) (*server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := launchServer(dataDir, logPath, p)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if port != 0 || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, lastErr
}

func launchServer(dataDir, logPath string, port int) (*server, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := []string{"server", "--data-dir", dataDir, "--secure-port", strconv.Itoa(port), "--bind-address", "127.0.0.1"}
	fmt.Fprintf(logf, "==== %s: %s %s\n", time.Now().Format(time.RFC3339), skiffBin, strings.Join(args, " "))

	announced := make(chan string, 1)
	stdout := &lineWriter{fn: func(line string) {
		fmt.Fprintf(logf, "[stdout] %s\n", line)
		if i := strings.Index(line, "KUBECONFIG="); i >= 0 {
			select {
			case announced <- parseKubeconfigValue(line[i+len("KUBECONFIG="):]):
			default:
			}
		}
	}}
	cmd := exec.Command(skiffBin, args...)
	cmd.Stdout = stdout
	cmd.Stderr = logf
	cmd.SysProcAttr = serverSysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{dataDir: dataDir, port: port, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		stdout.flush()
		fmt.Fprintf(logf, "==== %s: skiff server exited: %v\n", time.Now().Format(time.RFC3339), s.waitErr)
		logf.Close()
		close(s.exited)
	}()

	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case s.kubeconfig = <-announced:
	case <-s.exited:
		tail := logTail(logPath, 40)
		if strings.Contains(tail, "address already in use") {
			return nil, fmt.Errorf("port %d: %w", port, errAddrInUse)
		}
		return nil, fmt.Errorf("skiff server exited before announcing readiness (%v); log tail:\n%s", s.waitErr, tail)
	case <-timer.C:
		s.kill()
		return nil, fmt.Errorf("skiff server printed no KUBECONFIG= line within %s; log tail:\n%s",
			serverStartTimeout, logTail(logPath, 40))
	}

	if want := filepath.Join(dataDir, "admin.kubeconfig"); s.kubeconfig != want {
		s.kill()
		return nil, fmt.Errorf("skiff server announced KUBECONFIG=%s, want %s", s.kubeconfig, want)
	}
	if _, err := os.Stat(s.kubeconfig); err != nil {
		s.kill()
		return nil, fmt.Errorf("announced kubeconfig: %w", err)
	}
	if err := s.waitReadyz(30 * time.Second); err != nil {
		s.kill()
		return nil, fmt.Errorf("%w; log tail:\n%s", err, logTail(logPath, 40))
	}
	return s, nil
}

// parseKubeconfigValue extracts the path from the text after "KUBECONFIG=".
func parseKubeconfigValue(v string) string {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return ""
	}
	return strings.Trim(fields[0], `"'`)
}

// waitReadyz polls /readyz (anonymously, trusting only the server's CA) until
// it answers 200.
func (s *server) waitReadyz(timeout time.Duration) error {
	client, err := s.httpClient()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		code, body, err := httpGet(client, s.url()+"/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not 200 within %s after the ready line: code=%d err=%v body=%q", timeout, code, err, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// httpClient returns an HTTPS client that trusts the server's CA and presents
// the given client certificates (none: anonymous).
func (s *server) httpClient(certs ...tls.Certificate) (*http.Client, error) {
	caPEM, err := os.ReadFile(s.caFile())
	if err != nil {
		return nil, fmt.Errorf("reading server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", s.caFile())
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: certs},
			DisableKeepAlives: true,
		},
	}, nil
}

func httpGet(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// running reports whether the process has not exited yet.
func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the process to exit; an exit status other
// than 0, or no exit within serverStopTimeout, is an error.
func (s *server) stop() error {
	if !s.running() {
		return fmt.Errorf("skiff server had already exited: %v", s.waitErr)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("skiff server did not exit cleanly on SIGTERM: %v", s.waitErr)
		}
		return nil
	case <-time.After(serverStopTimeout):
		s.kill()
		return fmt.Errorf("skiff server still running %s after SIGTERM; killed it", serverStopTimeout)
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// cleanupOn stops the server when t ends (failing t if it does not stop
// cleanly) and prints the tail of its log if t failed.
func (s *server) cleanupOn(t *testing.T) {
	t.Cleanup(func() {
		if s.running() {
			if err := s.stop(); err != nil {
				t.Errorf("stopping skiff server (data dir %s): %v", s.dataDir, err)
			}
		}
		if t.Failed() {
			t.Logf("skiff server log %s (tail):\n%s", s.logPath, logTail(s.logPath, 60))
		}
	})
}

// The shared server is started by the first test that needs it and stopped
// by TestMain after all tests ran.
var shared struct {
	once sync.Once
	dir  string
	srv  *server
	err  error
}

func sharedServer(t *testing.T) *server {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "skiff-e2e-shared-"); shared.err != nil {
			return
		}
		shared.srv, shared.err = startServer(filepath.Join(shared.dir, "data"), filepath.Join(shared.dir, "skiff.log"), 0)
	})
	if shared.err != nil {
		t.Fatalf("starting the shared skiff server: %v", shared.err)
	}
	if !shared.srv.running() {
		t.Fatalf("the shared skiff server has exited: %v; log tail:\n%s", shared.srv.waitErr, logTail(shared.srv.logPath, 40))
	}
	return shared.srv
}

// stopSharedServer stops the shared server (if one was started) and removes
// its files. It prints the log tail if printLog or if stopping failed.
func stopSharedServer(printLog bool) error {
	if shared.dir == "" {
		return nil
	}
	defer os.RemoveAll(shared.dir)
	var err error
	if shared.srv != nil {
		if err = shared.srv.stop(); err != nil {
			printLog = true
		}
	}
	if printLog {
		fmt.Fprintf(os.Stderr, "e2e: shared skiff server log (tail):\n%s\n", logTail(filepath.Join(shared.dir, "skiff.log"), 80))
	}
	return err
}

// userKubeconfig runs `skiff kubeconfig` for user (and groups) and returns
// the path of the written kubeconfig.
func (s *server) userKubeconfig(t *testing.T, user string, groups ...string) string {
	t.Helper()
	args := []string{"kubeconfig", "--data-dir", s.dataDir, "--user", user}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	r := runProcess(procOpts{}, skiffBin, args...)
	if r.err != nil {
		t.Fatalf("%s", r)
	}
	if !strings.Contains(r.stdout, "client-certificate-data") && !strings.Contains(r.stdout, "client-certificate") {
		t.Fatalf("skiff kubeconfig printed no client certificate:\n%s", r)
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	portsMu    sync.Mutex
	portsTaken = map[int]bool{}
)

// freePort returns a loopback TCP port that is free now and that this process
// has not handed out before.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 20; i++ {
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

// lineWriter calls fn for every complete line written to it.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}

func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// external processes

type procOpts struct {
	stdin string
	env   []string // full environment; nil inherits ours
	dir   string
}

// result is the outcome of one finished process.
type result struct {
	argv           []string
	stdout, stderr string
	err            error
	took           time.Duration
}

func (r *result) String() string {
	status := "ok"
	if r.err != nil {
		status = r.err.Error()
	}
	return fmt.Sprintf("$ %s\n[%s after %s]\n--- stdout:\n%s\n--- stderr:\n%s",
		shellQuote(r.argv), status, r.took.Round(time.Millisecond), abbreviate(r.stdout), abbreviate(r.stderr))
}

// abbreviate shortens long output (e.g. /metrics, OpenAPI) for messages.
func abbreviate(s string) string {
	const head, tail = 3000, 1000
	if len(s) <= head+tail+100 {
		return s
	}
	return fmt.Sprintf("%s\n[... %d bytes omitted ...]\n%s", s[:head], len(s)-head-tail, s[len(s)-tail:])
}

// combined is stdout and stderr together, for checking error messages.
func (r *result) combined() string { return r.stdout + r.stderr }

// runProcess runs name with args to completion, at most processTimeout.
func runProcess(o procOpts, name string, args ...string) *result {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = o.env, o.dir
	cmd.WaitDelay = 5 * time.Second
	if o.stdin != "" {
		cmd.Stdin = strings.NewReader(o.stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s (%v)", processTimeout, err)
	}
	return &result{
		argv:   append([]string{name}, args...),
		stdout: stdout.String(), stderr: stderr.String(),
		err: err, took: time.Since(start),
	}
}

func shellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`{}[]*?;&|<>()!#") {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// kubectl

// findKubectls returns every kubectl binary to test: the -kubectl flag or the
// KUBECTL environment variable (comma-separated) if set; otherwise the
// versioned kubectls of the Google Cloud SDK plus the one that
// hack/build-kubectl.sh builds.
func findKubectls() []string {
	spec := *kubectlFlag
	if spec == "" {
		spec = os.Getenv("KUBECTL")
	}
	var paths []string
	if spec != "" {
		for _, p := range strings.Split(spec, ",") {
			if p = strings.TrimSpace(p); p != "" {
				paths = append(paths, p)
			}
		}
		return paths
	}
	for minor := 27; minor <= 33; minor++ {
		p := fmt.Sprintf("/usr/lib/google-cloud-sdk/bin/kubectl.1.%d", minor)
		if isExecutable(p) {
			paths = append(paths, p)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, ".cache", "skiff", "kubectl", "v1.37.2", "kubectl"); isExecutable(p) {
			paths = append(paths, p)
		}
	}
	return paths
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// kubectlBinary is one kubectl under test.
type kubectlBinary struct {
	path    string
	version string // client gitVersion, e.g. "v1.33.1"
}

// resolveKubectl asks a kubectl binary for its version.
func resolveKubectl(t *testing.T, path string) kubectlBinary {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	r := runProcess(procOpts{env: kubectlEnv(t.TempDir(), "/dev/null")}, abs, "version", "--client", "-o", "json")
	if r.err != nil {
		t.Fatalf("kubectl %s does not run:\n%s", path, r)
	}
	var v struct {
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.ClientVersion.GitVersion == "" {
		t.Fatalf("cannot read the version of kubectl %s (%v):\n%s", path, err, r)
	}
	return kubectlBinary{path: abs, version: v.ClientVersion.GitVersion}
}

// kubectlEnv is the environment for kubectl: ours, minus anything that would
// make kubectl talk to another cluster or open an editor, with a private
// HOME (so the discovery cache, ~/.kube/cache, is per test).
func kubectlEnv(home, kubeconfig string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "HOME", name == "KUBECONFIG", name == "KUBE_EDITOR", name == "EDITOR",
			strings.HasPrefix(name, "KUBECTL_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "KUBECONFIG="+kubeconfig)
	return append(env, extra...)
}

// kctl runs one kubectl binary against one server, inside one namespace (the
// current context's namespace in a private copy of the admin kubeconfig).
type kctl struct {
	bin        kubectlBinary
	srv        *server
	ns         string
	home       string
	kubeconfig string
}

var nsSeq atomic.Int64

// newKctl creates a namespace for this kubectl and makes it the default.
func newKctl(t *testing.T, bin kubectlBinary, srv *server) *kctl {
	t.Helper()
	home := t.TempDir()
	data, err := os.ReadFile(srv.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(home, "admin.kubeconfig")
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("e2e-%s-%d", strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(bin.version), "-"), "-"), nsSeq.Add(1))
	k := &kctl{bin: bin, srv: srv, ns: ns, home: home, kubeconfig: kubeconfig}
	out := k.ok(t, "create", "namespace", ns)
	assertContains(t, out, "namespace/"+ns+" created")
	k.ok(t, "config", "set-context", "--current", "--namespace="+ns)
	if got := k.ok(t, "config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}"); got != ns {
		t.Fatalf("namespace of the current context is %q, want %q", got, ns)
	}
	return k
}

var nonDNS = regexp.MustCompile(`[^a-z0-9]+`)

// run runs kubectl with args and returns the result, whatever it is.
func (k *kctl) run(args ...string) *result { return k.runWith(procOpts{}, args...) }

func (k *kctl) runWith(o procOpts, args ...string) *result {
	o.env = kubectlEnv(k.home, k.kubeconfig, o.env...)
	return runProcess(o, k.bin.path, args...)
}

// ok runs kubectl, fails t unless it succeeds, and returns its trimmed stdout.
func (k *kctl) ok(t *testing.T, args ...string) string {
	t.Helper()
	return k.okWith(t, procOpts{}, args...)
}

// okStdin is ok with stdin.
func (k *kctl) okStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return k.okWith(t, procOpts{stdin: stdin}, args...)
}

// okWith is ok with options; o.env holds extra variables.
func (k *kctl) okWith(t *testing.T, o procOpts, args ...string) string {
	t.Helper()
	r := k.runWith(o, args...)
	if r.err != nil {
		t.Fatalf("kubectl failed:\n%s", r)
	}
	assertNoCrash(t, r)
	return strings.TrimSpace(r.stdout)
}

// fail runs kubectl, fails t unless it fails (without a server error or a
// crash), and returns stdout+stderr.
func (k *kctl) fail(t *testing.T, args ...string) string {
	t.Helper()
	return k.failWith(t, procOpts{}, args...)
}

func (k *kctl) failStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return k.failWith(t, procOpts{stdin: stdin}, args...)
}

func (k *kctl) failWith(t *testing.T, o procOpts, args ...string) string {
	t.Helper()
	r := k.runWith(o, args...)
	if r.err == nil {
		t.Fatalf("kubectl succeeded, want an error:\n%s", r)
	}
	if strings.Contains(r.err.Error(), "timed out") {
		t.Fatalf("kubectl hung:\n%s", r)
	}
	assertNoCrash(t, r)
	return r.combined()
}

// jsonpath returns `kubectl get <args> -o jsonpath=<expr>`.
func (k *kctl) jsonpath(t *testing.T, expr string, args ...string) string {
	t.Helper()
	return k.ok(t, append(append([]string{"get"}, args...), "-o", "jsonpath="+expr)...)
}

// getJSON decodes `kubectl get <args> -o json` into v.
func (k *kctl) getJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := k.ok(t, append(append([]string{"get"}, args...), "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kubectl get %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// crashSigns in kubectl's stderr mean an internal server error (500) or a
// crashed kubectl.
var crashSigns = regexp.MustCompile(`InternalError|Internal error|\(500\)|code 500|(?m)^panic: |goroutine \d+ \[`)

// assertNoCrash fails t if kubectl's stderr shows a server error or a crash.
func assertNoCrash(t *testing.T, r *result) {
	t.Helper()
	if m := crashSigns.FindString(r.stderr); m != "" {
		t.Errorf("stderr contains %q (server error or crash):\n%s", m, r)
	}
}

// background is a long-running kubectl (e.g. `get -w`) whose stdout lines
// are collected.
type background struct {
	r     *result
	lines chan string
	seen  []string
}

// start runs kubectl in the background until t ends.
func (k *kctl) start(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, k.bin.path, args...)
	cmd.Env = kubectlEnv(k.home, k.kubeconfig)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting kubectl: %v", err)
	}
	b := &background{r: &result{argv: append([]string{k.bin.path}, args...)}, lines: make(chan string, 1000)}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(b.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-scanned
		_ = cmd.Wait()
		b.r.stderr = stderr.String()
		if t.Failed() {
			b.r.stdout = strings.Join(b.seen, "\n")
			t.Logf("background kubectl:\n%s", b.r)
		}
	})
	return b
}

// waitLine waits for a stdout line whose fields satisfy match.
func (b *background) waitLine(t *testing.T, what string, match func(fields []string) bool) {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-b.lines:
			if !ok {
				t.Fatalf("kubectl %s exited before printing %s; it printed:\n%s", shellQuote(b.r.argv[1:]), what, strings.Join(b.seen, "\n"))
			}
			b.seen = append(b.seen, line)
			if match(strings.Fields(line)) {
				return
			}
		case <-timer.C:
			t.Fatalf("kubectl %s printed no %s within %s; it printed:\n%s", shellQuote(b.r.argv[1:]), what, eventTimeout, strings.Join(b.seen, "\n"))
		}
	}
}

// ---------------------------------------------------------------------------
// text helpers

func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// normalize collapses runs of white space into single spaces.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// tableHeaders returns the normalized header lines (those starting with
// NAME, possibly after an EVENT column) of kubectl's table output.
func tableHeaders(out string) []string {
	var headers []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "NAME" || (f[0] == "EVENT" && len(f) > 1 && f[1] == "NAME")) {
			headers = append(headers, normalize(line))
		}
	}
	return headers
}

// tableRow returns the fields of the first output line whose first field is
// name, or nil.
func tableRow(out, name string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}

func assertContains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output does not contain %q:\n%s", w, out)
		}
	}
}

func assertMatches(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Errorf("output does not match /%s/:\n%s", p, out)
		}
	}
}

func assertHeaders(t *testing.T, out string, want ...string) {
	t.Helper()
	headers := tableHeaders(out)
	for _, w := range want {
		found := false
		for _, h := range headers {
			found = found || h == w
		}
		if !found {
			t.Errorf("no table header %q; headers are %q in:\n%s", w, headers, out)
		}
	}
}

func assertEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// configMapYAML renders a ConfigMap manifest.
func configMapYAML(name string, labels, data map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		for k, v := range labels {
			fmt.Fprintf(&b, "    %s: %q\n", k, v)
		}
	}
	if len(data) > 0 {
		b.WriteString("data:\n")
		for k, v := range data {
			fmt.Fprintf(&b, "  %s: %q\n", k, v)
		}
	}
	return b.String()
}
