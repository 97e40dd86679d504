package e2e

// The harness: starting and stopping skiff servers (through test/harness),
// finding and running kubectl binaries, and small text helpers. The tests
// themselves live in the other *_test.go files.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/test/harness"
)

const (
	processTimeout = 90 * time.Second // any single kubectl or skiff CLI call
	eventTimeout   = 30 * time.Second // waiting for one line of `kubectl get -w`
)

// ---------------------------------------------------------------------------
// skiff server processes, run by test/harness

// startServer starts `skiff server` on dir (test/harness.StartSkiff; port 0
// picks a free one) and checks what every start must give: the announced
// kubeconfig is dir/admin.kubeconfig, and /readyz answers 200 to anonymous
// requests too.
func startServer(dir string, port int) (*harness.Server, error) {
	s, err := harness.StartSkiff(context.Background(), harness.Options{Dir: dir, Port: port})
	if err != nil {
		return nil, err
	}
	want := filepath.Join(dir, "admin.kubeconfig")
	switch _, statErr := os.Stat(s.Kubeconfig); {
	case s.Kubeconfig != want:
		err = fmt.Errorf("skiff server announced KUBECONFIG=%s, want %s", s.Kubeconfig, want)
	case statErr != nil:
		err = fmt.Errorf("announced kubeconfig: %w", statErr)
	default:
		err = checkReady(s, 30*time.Second)
	}
	if err != nil {
		_ = s.Kill()
		return nil, fmt.Errorf("%w; log tail:\n%s", err, s.LogTail(40))
	}
	return s, nil
}

// checkReady waits up to timeout for s to be ready, then checks that
// /readyz answers 200 without credentials as well.
func checkReady(s *harness.Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		return err
	}
	client, err := anonymousClient(s)
	if err != nil {
		return err
	}
	if code, body, err := httpGet(client, s.URL+"/readyz"); err != nil || code != http.StatusOK {
		return fmt.Errorf("anonymous /readyz: code=%d err=%v body=%q", code, err, body)
	}
	return nil
}

// anonymousClient returns an HTTPS client that trusts the server's CA and
// presents no client certificate.
func anonymousClient(s *harness.Server) (*http.Client, error) {
	caFile := filepath.Join(s.Dir, "pki", "ca.crt")
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
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
func running(s *harness.Server) bool {
	select {
	case <-s.Exited():
		return false
	default:
		return true
	}
}

// stopServer stops s with SIGTERM; it is an error if s had already exited,
// or if it does not exit with status 0 in time (harness.Server.Stop then
// kills it).
func stopServer(s *harness.Server) error {
	if !running(s) {
		return fmt.Errorf("skiff server had already exited: %v", s.ExitErr())
	}
	if err := s.Stop(); err != nil {
		return fmt.Errorf("skiff server did not exit cleanly on SIGTERM: %v", err)
	}
	return nil
}

// stopOnCleanup stops s, if it still runs, when t ends (failing t if it
// does not stop cleanly) and prints the tail of its log if t failed.
func stopOnCleanup(t *testing.T, s *harness.Server) {
	t.Cleanup(func() {
		if running(s) {
			if err := stopServer(s); err != nil {
				t.Errorf("stopping skiff server (data dir %s): %v", s.Dir, err)
			}
		}
		if t.Failed() {
			t.Logf("skiff server log %s (tail):\n%s", s.LogPath, s.LogTail(60))
		}
	})
}

// The shared server is started by the first test that needs it and stopped
// by TestMain after all tests ran.
var shared struct {
	once sync.Once
	dir  string
	srv  *harness.Server
	err  error
}

func sharedServer(t *testing.T) *harness.Server {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "skiff-e2e-shared-"); shared.err != nil {
			return
		}
		shared.srv, shared.err = startServer(shared.dir, 0)
	})
	if shared.err != nil {
		t.Fatalf("starting the shared skiff server: %v", shared.err)
	}
	if !running(shared.srv) {
		t.Fatalf("the shared skiff server has exited: %v; log tail:\n%s", shared.srv.ExitErr(), shared.srv.LogTail(40))
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
	if shared.srv == nil {
		return nil // the start error, log tail included, failed the test
	}
	err := stopServer(shared.srv)
	if printLog || err != nil {
		fmt.Fprintf(os.Stderr, "e2e: shared skiff server log (tail):\n%s\n", shared.srv.LogTail(80))
	}
	return err
}

// userKubeconfig writes a kubeconfig for user (and groups), made by
// `skiff kubeconfig`, and returns its path.
func userKubeconfig(t *testing.T, s *harness.Server, user string, groups ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	out, err := s.UserKubeconfig(ctx, user, groups...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "client-certificate-data") && !strings.Contains(string(out), "client-certificate") {
		t.Fatalf("skiff kubeconfig printed no client certificate:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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
	srv        *harness.Server
	ns         string
	home       string
	kubeconfig string
}

var nsSeq atomic.Int64

// newKctl creates a namespace for this kubectl and makes it the default.
func newKctl(t *testing.T, bin kubectlBinary, srv *harness.Server) *kctl {
	t.Helper()
	home := t.TempDir()
	data, err := os.ReadFile(srv.Kubeconfig)
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

// forEachKubectl runs fn, in parallel, once per kubectl found (subtests named
// by kubectl version), each with its own namespace on the shared server.
func forEachKubectl(t *testing.T, fn func(t *testing.T, k *kctl)) {
	paths := findKubectls()
	if len(paths) == 0 {
		t.Skip("no kubectl found: pass -kubectl=PATH or KUBECTL=PATH, install the Google Cloud SDK kubectls, or run hack/build-kubectl.sh")
	}
	srv := sharedServer(t)
	for _, p := range paths {
		bin := resolveKubectl(t, p)
		t.Run(bin.version, func(t *testing.T) {
			t.Parallel()
			fn(t, newKctl(t, bin, srv))
		})
	}
}
