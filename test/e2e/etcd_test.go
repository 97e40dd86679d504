package e2e

// The embedded etcd of a real `skiff server` process: no port but the
// secure port gives etcd data without etcd's client certificate, data of
// the plain-HTTP layout of earlier releases is read after the upgrade, and
// etcd failing underneath the server ends the process.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/etcd"
	"github.com/skiff-dev/skiff/test/harness"
)

// TestEtcdPortsNeedClientCert lists every TCP port the `skiff server`
// process listens on and tries each but the secure port as a local process
// without etcd's client certificate would: etcd gRPC plain and over TLS,
// and HTTP(S) GETs and gateway POSTs. None may give a key or a value. As a
// control, etcd's client certificate from <data-dir>/pki reads the key on
// one of them: the probes did reach etcd.
func TestEtcdPortsNeedClientCert(t *testing.T) {
	s, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, s)
	marker := "etcd-probe-" + randomHex(t)
	_, err = clientFor(t, s).CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-probe"},
		Data:       map[string]string{"secret": marker},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const key = "/registry/configmaps/default/etcd-probe"

	sockets, err := listeningSockets(s.PID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pid %d listens on %v (secure port %d)", s.PID, sockets, s.Port)
	var others []listener
	for _, l := range sockets {
		if l.port != s.Port {
			others = append(others, l)
		}
	}
	if len(others) == 0 {
		t.Fatal("no port besides the secure port: the embedded etcd listens somewhere this test does not see")
	}
	leaks := []string{marker, base64.StdEncoding.EncodeToString([]byte(key)), `"kvs"`}
	var wg sync.WaitGroup
	for _, l := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := l.dialAddr()
			for name, cfg := range map[string]*tls.Config{
				"plain":              nil,
				"TLS without a cert": {InsecureSkipVerify: true},
			} {
				if kvs, err := etcdGet(addr, cfg, key); err == nil {
					t.Errorf("%s: etcd gRPC %s read %s (%d keys)", addr, name, key, kvs)
				}
			}
			for _, probe := range httpProbes(key) {
				for _, scheme := range []string{"http", "https"} {
					code, body, err := probe(scheme, addr)
					for _, leak := range leaks {
						if err == nil && strings.Contains(body, leak) {
							t.Errorf("%s: %s answered %d with %q in it", addr, scheme, code, leak)
						}
					}
				}
			}
		}()
	}
	wg.Wait()

	certs := etcdClientTLS(t, s.Dir)
	reached := false
	for _, l := range others {
		if n, err := etcdGet(l.dialAddr(), certs, key); err == nil && n == 1 {
			reached = true
			t.Logf("%s: etcd gRPC with the apiserver's client certificate reads the key (the control)", l.dialAddr())
		}
	}
	if !reached {
		t.Error("no port gives the key to etcd's client certificate either: the probes above did not reach etcd")
	}
}

// TestEtcdUpgradeFromPlainLayout writes objects with the layout of earlier
// releases (<data-dir>/etcd served plain, no <data-dir>/pki/etcd), then
// starts `skiff server` with its mutual-TLS etcd on the same data dir and
// reads them back.
func TestEtcdUpgradeFromPlainLayout(t *testing.T) {
	dir := t.TempDir()
	plain, err := etcd.Start(filepath.Join(dir, "etcd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	closePlain := sync.OnceFunc(plain.Close)
	t.Cleanup(closePlain)
	old, err := harness.StartSkiff(context.Background(), harness.Options{Dir: dir, Args: []string{"--etcd-servers", plain.ClientURL}})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, old)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "from-plain-layout"}, Data: map[string]string{"k": "v"}}
	if _, err := clientFor(t, old).CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "from-plain-layout"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	svc, err = clientFor(t, old).CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := stopServer(old); err != nil {
		t.Fatal(err)
	}
	closePlain()
	if _, err := os.Stat(filepath.Join(dir, "pki", "etcd")); err == nil {
		t.Fatal("the plain layout already has pki/etcd")
	}

	s, err := startServer(dir, old.Port)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, s)
	client := clientFor(t, s)
	got, err := client.CoreV1().ConfigMaps("default").Get(context.Background(), cm.Name, metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("ConfigMap written with the plain layout: %v, data %v", err, got.Data)
	}
	gotSvc, err := client.CoreV1().Services("default").Get(context.Background(), svc.Name, metav1.GetOptions{})
	if err != nil || gotSvc.Spec.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("Service written with the plain layout: %v, ClusterIP %q, want %q", err, gotSvc.Spec.ClusterIP, svc.Spec.ClusterIP)
	}
	if _, err := os.Stat(filepath.Join(dir, "pki", "etcd", "ca.crt")); err != nil {
		t.Errorf("the upgraded server has no etcd CA: %v", err)
	}
}

// TestEmbeddedEtcdFailureEndsServer makes the embedded etcd's client
// listener fail underneath a running `skiff server`, from outside, as a
// kernel or resource failure would: a duplicate of the listening socket
// (pidfd_getfd, root) is shut down, so etcd's accept fails. The server must
// exit non-zero within 10 s and say why.
func TestEmbeddedEtcdFailureEndsServer(t *testing.T) {
	s, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, s)
	sockets, err := listeningSockets(s.PID)
	if err != nil {
		t.Fatal(err)
	}
	// etcd's client port: the one that answers etcd gRPC (with etcd's
	// client certificate when the data dir has one, else plain).
	var cfg *tls.Config
	if _, err := os.Stat(filepath.Join(s.Dir, "pki", "apiserver-etcd-client.crt")); err == nil {
		cfg = etcdClientTLS(t, s.Dir)
	}
	var client *listener
	for _, l := range sockets {
		if l.port == s.Port {
			continue
		}
		if _, err := etcdGet(l.dialAddr(), cfg, "/registry/namespaces/default"); err == nil {
			client = &l
			break
		}
	}
	if client == nil {
		t.Fatalf("no listener of pid %d answers etcd gRPC: %v", s.PID, sockets)
	}
	pidfd, err := unix.PidfdOpen(s.PID, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v (needs Linux 5.6)", err)
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, client.fd, 0)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOSYS) {
		t.Skipf("pidfd_getfd: %v (needs ptrace rights over the server, Linux 5.6)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	start := time.Now()
	if err := unix.Shutdown(dup, unix.SHUT_RDWR); err != nil {
		t.Fatalf("shutting down etcd's listener %s: %v", client, err)
	}
	select {
	case <-s.Exited():
		t.Logf("exited %s after etcd's listener failed: %v", time.Since(start).Round(time.Millisecond), s.ExitErr())
	case <-time.After(10 * time.Second):
		t.Fatalf("skiff server still runs 10s after etcd's client listener %s failed", client)
	}
	var exit *exec.ExitError
	if err := s.ExitErr(); !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("exit: %v, want a non-zero status", err)
	}
	if log := s.LogTail(200); !strings.Contains(log, "Embedded etcd stopped underneath the API server; exiting") {
		t.Errorf("no log line tells that etcd stopped; log tail:\n%s", s.LogTail(20))
	}
}

// listener is a listening TCP socket of a process.
type listener struct {
	ip   net.IP
	port int
	fd   int
}

func (l listener) String() string {
	return fmt.Sprintf("%s (fd %d)", net.JoinHostPort(l.ip.String(), strconv.Itoa(l.port)), l.fd)
}

// dialAddr reaches the socket from this machine.
func (l listener) dialAddr() string {
	ip := l.ip
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(l.port))
}

// listeningSockets is what `ss -ltnp` shows for pid: the LISTEN sockets of
// /proc/<pid>/net/tcp{,6} whose inodes are among the process's fds.
func listeningSockets(pid int) ([]listener, error) {
	fds := map[string]int{} // socket inode -> fd
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			fd, _ := strconv.Atoi(e.Name())
			fds[strings.TrimSuffix(inode, "]")] = fd
		}
	}
	var out []listener
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			fd, ok := fds[fields[9]]
			if !ok {
				continue
			}
			ip, port, err := parseProcAddr(fields[1])
			if err != nil {
				f.Close()
				return nil, err
			}
			out = append(out, listener{ip: ip, port: port, fd: fd})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseProcAddr reads /proc/net/tcp's "0100007F:1F90": the address as
// 32-bit words in host (little-endian) order, the port in hex.
func parseProcAddr(s string) (net.IP, int, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, fmt.Errorf("address %q", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	return ip, int(port), err
}

// etcdGet reads key over etcd gRPC at addr (cfg nil: plain) and returns
// how many keys it got.
func etcdGet(addr string, cfg *tls.Config, key string) (int, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 2 * time.Second, TLS: cfg, Logger: zap.NewNop()})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	return len(resp.Kvs), nil
}

// httpProbes are the HTTP requests etcd answers on some listener: health,
// version, metrics, debug, v2 and members, and the v3 JSON gateway.
func httpProbes(key string) []func(scheme, addr string) (int, string, error) {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
	}}
	do := func(req *http.Request, err error) (int, string, error) {
		if err != nil {
			return 0, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		return resp.StatusCode, string(body), err
	}
	var probes []func(scheme, addr string) (int, string, error)
	for _, path := range []string{"/version", "/health", "/metrics", "/debug/vars", "/members", "/v2/keys/?recursive=true", "/"} {
		probes = append(probes, func(scheme, addr string) (int, string, error) {
			return do(http.NewRequest(http.MethodGet, scheme+"://"+addr+path, nil))
		})
	}
	rangeAll := fmt.Sprintf(`{"key":%q,"range_end":%q}`, base64.StdEncoding.EncodeToString([]byte("/")), base64.StdEncoding.EncodeToString([]byte("0")))
	exact := fmt.Sprintf(`{"key":%q}`, base64.StdEncoding.EncodeToString([]byte(key)))
	for _, path := range []string{"/v3/kv/range", "/v3beta/kv/range"} {
		for _, body := range []string{rangeAll, exact} {
			probes = append(probes, func(scheme, addr string) (int, string, error) {
				return do(http.NewRequest(http.MethodPost, scheme+"://"+addr+path, strings.NewReader(body)))
			})
		}
	}
	return probes
}

// etcdClientTLS is the apiserver's etcd client certificate from dir/pki.
func etcdClientTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki", "apiserver-etcd-client.crt"), filepath.Join(dir, "pki", "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatalf("etcd client certificate: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "pki", "etcd", "ca.crt"))
	if err != nil {
		t.Fatalf("etcd CA: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
