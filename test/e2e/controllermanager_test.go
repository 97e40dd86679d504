package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/test/harness"
)

// component is one process of a skiff component (controller-manager,
// agent) serving HTTPS on port.
type component struct {
	name    string
	cmd     *exec.Cmd
	port    int
	logPath string
	exited  chan struct{}
	waitErr error
}

func startControllerManager(t *testing.T, srv *harness.Server, extra ...string) *component {
	t.Helper()
	return startComponent(t, "controller-manager", func(port int) []string {
		return append([]string{"--kubeconfig", srv.Kubeconfig,
			"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
			"--cluster-signing-cert-file", filepath.Join(srv.Dir, "pki", "ca.crt"),
			"--cluster-signing-key-file", filepath.Join(srv.Dir, "pki", "ca.key")}, extra...)
	})
}

// startComponent runs `skiff <name> <args(port)>` on a free port, logging to
// a file that is printed if the test fails; cleanup kills it.
func startComponent(t *testing.T, name string, args func(port int) []string) *component {
	t.Helper()
	bin, err := harness.SkiffBinary()
	if err != nil {
		t.Fatal(err)
	}
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cm := &component{name: name, port: port, logPath: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(cm.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cm.cmd = exec.Command(bin, append([]string{name}, args(port)...)...)
	cm.cmd.Stdout, cm.cmd.Stderr = logf, logf
	cm.cmd.WaitDelay = 5 * time.Second
	if err := cm.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cm.waitErr = cm.cmd.Wait()
		logf.Close()
		close(cm.exited)
	}()
	t.Cleanup(func() {
		if cm.running() {
			_ = cm.cmd.Process.Kill()
			<-cm.exited
		}
		if t.Failed() {
			t.Logf("%s on port %d log:\n%s", cm.name, cm.port, cm.log())
		}
	})
	return cm
}

func (cm *component) running() bool {
	select {
	case <-cm.exited:
		return false
	default:
		return true
	}
}

func (cm *component) log() string {
	data, _ := os.ReadFile(cm.logPath)
	return string(data)
}

var leadingRE = regexp.MustCompile(`"Started leading: running the controllers".* identity="([^"]+)"`)

// leading is the identity with which the process leads, "" if it does not.
func (cm *component) leading() string {
	if m := leadingRE.FindStringSubmatch(cm.log()); m != nil {
		return m[1]
	}
	return ""
}

// stop sends SIGTERM and wants a clean exit within 30s.
func (cm *component) stop(t *testing.T) {
	t.Helper()
	_ = cm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cm.exited:
		if cm.waitErr != nil {
			t.Errorf("%s exited with %v after SIGTERM", cm.name, cm.waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s still running 30s after SIGTERM", cm.name)
	}
}

// get fetches path from the component's HTTPS port (a
// self-signed certificate), without credentials.
func (cm *component) get(path string) (int, string, error) {
	return cm.getAs(&tls.Config{}, "", path)
}

// getAs fetches path with the client certificates of tlsConfig and, unless
// empty, the bearer token.
func (cm *component) getAs(tlsConfig *tls.Config, token, path string) (int, string, error) {
	tlsConfig = tlsConfig.Clone()
	tlsConfig.InsecureSkipVerify, tlsConfig.RootCAs = true, nil
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", cm.port, path), nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// clientTLS is the TLS configuration, client certificate included, of a
// kubeconfig.
func clientTLS(t *testing.T, kubeconfig string) *tls.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tlsConfig
}

// testMetricsAuth: the controller-manager's /metrics is authenticated and
// authorized through the API server, as kube-controller-manager's: without
// credentials it is forbidden to system:anonymous, a bad token is 401, a
// user without the system:monitoring rights 403, and with them (or in
// system:masters) the metrics are served; the health endpoints stay open.
func testMetricsAuth(t *testing.T, srv *harness.Server, cm *component) {
	code, body, err := cm.get("/metrics")
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, `forbidden: User \"system:anonymous\" cannot get path \"/metrics\"`) {
		t.Errorf("/metrics without credentials: %d %q %v, want 403 for system:anonymous", code, abbreviate(body), err)
	}
	if code, body, err := cm.getAs(&tls.Config{}, "not-a-token", "/metrics"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("/metrics with a bad token: %d %q %v, want 401", code, abbreviate(body), err)
	}
	if code, body, err := cm.getAs(&tls.Config{}, "not-a-token", "/healthz"); err != nil || code != http.StatusUnauthorized {
		// As upstream: bad credentials fail before the path is looked at.
		t.Errorf("/healthz with a bad token: %d %q %v, want 401", code, abbreviate(body), err)
	}
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		if code, body, err := cm.get(path); err != nil || code != http.StatusOK {
			t.Errorf("%s without credentials: %d %q %v, want 200", path, code, body, err)
		}
	}
	nobody := clientTLS(t, userKubeconfig(t, srv, "metrics-nobody"))
	if code, body, err := cm.getAs(nobody, "", "/metrics"); err != nil || code != http.StatusForbidden ||
		!strings.Contains(body, `User \"metrics-nobody\" cannot get path \"/metrics\"`) {
		t.Errorf("/metrics as an unbound user: %d %q %v, want 403", code, abbreviate(body), err)
	}
	monitor := clientTLS(t, userKubeconfig(t, srv, "metrics-reader", "system:monitoring"))
	if code, body, err := cm.getAs(monitor, "", "/metrics"); err != nil || code != http.StatusOK || !strings.Contains(body, "# TYPE") {
		t.Errorf("/metrics as a system:monitoring user: %d %q %v, want 200", code, abbreviate(body), err)
	}
}

// waitDefaultServiceAccount creates a namespace and waits for its default
// ServiceAccount.
func waitDefaultServiceAccount(t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() string {
		if _, err := admin.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return "namespace " + ns + " has no default ServiceAccount: " + err.Error()
		}
		return ""
	})
}

// TestControllerManager runs `skiff apiserver` (no controllers) and two
// `skiff controller-manager`s against it: one holds the Lease
// kube-system/kube-controller-manager and runs the controllers; when it
// stops (SIGTERM, releasing the Lease) the other takes over. Both serve
// /healthz, /livez, /readyz and /metrics over HTTPS.
func TestControllerManager(t *testing.T) {
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Command: "apiserver"})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	ctx := context.Background()

	// The API server alone runs no controllers.
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := admin.CoreV1().ServiceAccounts("before").Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Fatalf("skiff apiserver created a default ServiceAccount: it runs controllers")
	}

	// With their own ServiceAccounts, as kube-controller-manager in kubeadm
	// clusters.
	leaseFlags := []string{"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms",
		"--use-service-account-credentials", "--service-account-private-key-file", filepath.Join(srv.Dir, "pki", "sa.key")}
	a := startControllerManager(t, srv, leaseFlags...)
	b := startControllerManager(t, srv, leaseFlags...)
	for _, cm := range []*component{a, b} {
		eventually(t, 30*time.Second, func() string {
			if !cm.running() {
				t.Fatalf("controller-manager exited: %v\n%s", cm.waitErr, cm.log())
			}
			code, body, err := cm.get("/healthz")
			if err != nil || code != http.StatusOK || body != "ok" {
				return fmt.Sprintf("/healthz: %d %q %v", code, body, err)
			}
			return ""
		})
		for _, path := range []string{"/livez", "/readyz"} {
			if code, body, err := cm.get(path); err != nil || code != http.StatusOK || body != "ok" {
				t.Errorf("%s: %d %q %v", path, code, body, err)
			}
		}
		if code, body, err := cm.get("/healthz?verbose"); err != nil || code != http.StatusOK || !strings.Contains(body, "[+]leaderElection ok") {
			t.Errorf("/healthz?verbose: %d %q %v", code, body, err)
		}
	}

	// Exactly one leads, and holds the Lease.
	var leader, follower *component
	eventually(t, 20*time.Second, func() string {
		switch {
		case a.leading() != "" && b.leading() == "":
			leader, follower = a, b
		case b.leading() != "" && a.leading() == "":
			leader, follower = b, a
		case a.leading() != "" && b.leading() != "":
			t.Fatalf("both controller-managers lead: %s and %s", a.leading(), b.leading())
		default:
			return "no controller-manager leads"
		}
		return ""
	})
	lease, err := admin.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != leader.leading() {
		t.Errorf("Lease holder %v, want %s", lease.Spec.HolderIdentity, leader.leading())
	}
	// The client CA comes from extension-apiserver-authentication, which
	// the delegated authentication loads soon after the start (as upstream).
	masters := clientTLS(t, srv.Kubeconfig)
	eventually(t, 10*time.Second, func() string {
		if code, body, err := leader.getAs(masters, "", "/metrics"); err != nil || !strings.Contains(body, `leader_election_master_status{name="kube-controller-manager"} 1`) {
			return fmt.Sprintf("leader /metrics as system:masters: %d (%v), no leader_election_master_status 1:\n%s", code, err, abbreviate(body))
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		if code, body, err := follower.getAs(masters, "", "/metrics"); err != nil || code != http.StatusOK {
			return fmt.Sprintf("follower /metrics as system:masters: %d %q %v", code, abbreviate(body), err)
		}
		return ""
	})
	t.Run("MetricsAuth", func(t *testing.T) { testMetricsAuth(t, srv, follower) })

	// The leader's controllers run: new and earlier namespaces get their
	// default ServiceAccount.
	waitDefaultServiceAccount(t, admin, "after")
	eventually(t, 10*time.Second, func() string {
		if _, err := admin.CoreV1().ServiceAccounts("before").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return "namespace before has no default ServiceAccount"
		}
		return ""
	})
	// With --service-account-private-key-file the tokens controller fills
	// service-account-token Secrets in, with the manager's own credentials
	// (no system:controller role grants it Secrets).
	secret, err := admin.CoreV1().Secrets("after").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "default-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		if secret, err = admin.CoreV1().Secrets("after").Get(ctx, "default-token", metav1.GetOptions{}); err != nil || len(secret.Data["token"]) == 0 {
			return fmt.Sprintf("the token Secret was not filled in (%v)", err)
		}
		return ""
	})
	if c := jwtClaims(t, string(secret.Data["token"])); c["iss"] != "kubernetes/serviceaccount" || string(secret.Data["namespace"]) != "after" {
		t.Errorf("token claims %v, namespace %q", c, secret.Data["namespace"])
	}
	time.Sleep(2 * time.Second)
	if follower.leading() != "" {
		t.Fatalf("the follower leads too")
	}

	// The leader stops cleanly, giving the Lease up: the other takes over.
	leader.stop(t)
	eventually(t, 20*time.Second, func() string {
		if follower.leading() == "" {
			return "the other controller-manager did not take over"
		}
		return ""
	})
	lease, err = admin.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != follower.leading() {
		t.Errorf("Lease holder after the takeover %v (%v), want %s", lease.Spec.HolderIdentity, err, follower.leading())
	}
	waitDefaultServiceAccount(t, admin, "takeover")
	follower.stop(t)
}
