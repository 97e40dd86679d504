package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/server/stats"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/integration"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// livePods is a PodSource of pods whose status the test sets.
type livePods struct {
	mu   sync.Mutex
	pods []*corev1.Pod
}

func (l *livePods) Pods() []*corev1.Pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*corev1.Pod(nil), l.pods...)
}

// TestOnContainerd: a real busybox pod on a real containerd, the server
// authenticating and authorizing against a real skiff API server: exec
// over SPDY and WebSocket (stdin, stdout, exit codes), run, logs,
// /stats/summary of the pod, 401/403 for unknown and unprivileged
// callers.
func TestOnContainerd(t *testing.T) {
	p := containerdtest.Start(t, containerdtest.Options{Name: "kls", PodCIDR: netip.MustParsePrefix("10.216.9.0/24"), Images: true})
	var dataDir string
	admin := integration.StartAPIServer(t, integration.ServerOptions{Customize: func(o *options.Options) { dataDir = o.DataDir }})
	client := kubernetes.NewForConfigOrDie(admin)

	dir := t.TempDir()
	logsDir := filepath.Join(dir, "logs")
	rt, err := cri.New(cri.Config{Endpoint: p.Endpoint(), NodeName: "node-1", RootDir: filepath.Join(dir, "kubelet"), PodLogsDir: logsDir,
		HostIPs: func() []string { return []string{"127.0.0.1"} }, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shell", Namespace: "default", UID: uuid.NewUUID()},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{
			Name: "c", Image: nodeimages.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command:                  []string{"sh", "-c", "echo hello from the pod; while :; do :; done"},
			TerminationMessagePath:   corev1.TerminationMessagePathDefault,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}}},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = rt.KillPod(ctx, pod, 0)
		if err := rt.RemovePod(ctx, pod.UID); err != nil {
			t.Errorf("RemovePod: %v", err)
		}
	})
	var rs *container.PodStatus
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := rt.SyncPod(context.Background(), pod)
		if err != nil {
			t.Fatalf("SyncPod: %v", err)
		}
		if s := res.Status; len(s.Containers) == 1 && s.Containers[0].State == container.StateRunning {
			rs = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not running: %+v", res.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pod.Status = status.Generate(pod, rs, status.Options{Now: time.Now(), HostIPs: []string{"127.0.0.1"}})
	pods := &livePods{pods: []*corev1.Pod{pod}}

	auth, runAuth, err := WebhookAuth(client, filepath.Join(dataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runAuth(ctx)
	provider, err := stats.New(stats.Config{NodeName: "node-1", Runtime: rt, RootDir: dir, PodLogsDir: logsDir, SampleInterval: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go provider.Run(ctx)
	certFile, keyFile, err := SelfSignedCert(filepath.Join(dir, "pki"), "node-1", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{NodeName: "node-1", Address: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile,
		Auth: auth, Pods: pods, Runtime: rt, Stats: provider})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	base := "https://" + addr.String()

	// The API server's admin: a client certificate of system:masters.
	kubelet := restclient.CopyConfig(admin)
	kubelet.Host = base
	kubelet.TLSClientConfig.CAData, kubelet.TLSClientConfig.CAFile = nil, certFile
	kubelet.TLSClientConfig.ServerName = ""
	httpClient, err := restclient.HTTPClientFor(kubelet)
	if err != nil {
		t.Fatal(err)
	}
	get := func(c *http.Client, path, token string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	t.Run("authn and authz", func(t *testing.T) {
		anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		if code, body := get(anonymous, "/pods", ""); code != 401 || body != "Unauthorized" {
			t.Errorf("anonymous: %d %q", code, body)
		}
		if code, body := get(anonymous, "/pods", "not-a-token"); code != 401 {
			t.Errorf("bad token: %d %q", code, body)
		}
		tokenOf := func(name string) string {
			sa, err := client.CoreV1().ServiceAccounts("default").Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tr, err := client.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return tr.Status.Token
		}
		nobody, token := tokenOf("nobody"), tokenOf("viewer")
		if code, body := get(anonymous, "/pods", nobody); code != 403 || body != "Forbidden (user=system:serviceaccount:default:nobody, verb=get, resource=nodes, subresource(s)=[pods proxy])\n" {
			t.Errorf("unprivileged token: %d %q", code, body)
		}
		// nodes/pods is enough for /pods (not for /stats).
		if _, err := client.RbacV1().ClusterRoles().Create(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "node-pods"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/pods"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer-node-pods"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "node-pods"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: "viewer"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Ask the kubelet only once RBAC has the binding: a denial would be
		// cached for 30 s, as upstream's.
		integration.Eventually(t, 20*time.Second, func() string {
			sar, err := client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:default:viewer",
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "pods", Name: "node-1"},
			}}, metav1.CreateOptions{})
			if err != nil || !sar.Status.Allowed {
				return fmt.Sprintf("RBAC does not allow the viewer yet: %v", err)
			}
			return ""
		})
		if code, body := get(anonymous, "/pods", token); code != 200 {
			t.Errorf("/pods with nodes/pods: %d %q", code, body)
		}
		if code, _ := get(anonymous, "/stats/summary", token); code != 403 {
			t.Errorf("/stats/summary with nodes/pods only: %d, want 403", code)
		}
		if code, body := get(httpClient, "/pods", ""); code != 200 || !strings.Contains(body, `"name":"shell"`) {
			t.Errorf("admin client certificate: %d %.200s", code, body)
		}
	})

	execURL := func(cmd ...string) *url.URL {
		// As the API server sends them (upstream's ExecStdinParam "input"...).
		q := url.Values{"command": cmd, "input": {"1"}, "output": {"1"}, "error": {"1"}}
		u, _ := url.Parse(base + "/exec/default/shell/c?" + q.Encode())
		return u
	}
	run := func(t *testing.T, e remotecommand.Executor, stdin string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		err := e.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr})
		return stdout.String(), stderr.String(), err
	}
	t.Run("exec over SPDY", func(t *testing.T) {
		e, err := remotecommand.NewSPDYExecutor(kubelet, "POST", execURL("sh", "-c", "cat; echo out; echo err >&2"))
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := run(t, e, "from stdin\n")
		if err != nil || stdout != "from stdin\nout\n" || stderr != "err\n" {
			t.Errorf("exec: stdout %q stderr %q err %v", stdout, stderr, err)
		}
		e, _ = remotecommand.NewSPDYExecutor(kubelet, "POST", execURL("sh", "-c", "exit 3"))
		_, _, err = run(t, e, "")
		var exitErr utilexec.CodeExitError
		if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 3 {
			t.Errorf("exit 3: %v", err)
		}
		e, _ = remotecommand.NewSPDYExecutor(kubelet, "POST", mustURL(base+"/exec/default/shell/nope?command=true&output=1"))
		if _, _, err := run(t, e, ""); err == nil || !strings.Contains(err.Error(), "404") && !strings.Contains(err.Error(), "not found") {
			t.Errorf("exec into a missing container: %v", err)
		}
	})
	t.Run("exec over WebSocket v5", func(t *testing.T) {
		e, err := remotecommand.NewWebSocketExecutor(kubelet, "GET", execURL("sh", "-c", "cat; echo out; echo err >&2; exit 4").String())
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := run(t, e, "ws stdin\n")
		var exitErr utilexec.CodeExitError
		if stdout != "ws stdin\nout\n" || stderr != "err\n" || !errors.As(err, &exitErr) || exitErr.ExitStatus() != 4 {
			t.Errorf("websocket exec: stdout %q stderr %q err %v", stdout, stderr, err)
		}
	})
	t.Run("run", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/run/default/shell/c?cmd="+url.QueryEscape("echo ran"), nil)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ran\n" {
			t.Errorf("/run: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("logs", func(t *testing.T) {
		integration.Eventually(t, 10*time.Second, func() string {
			if code, body := get(httpClient, "/containerLogs/default/shell/c", ""); code != 200 || body != "hello from the pod\n" {
				return fmt.Sprintf("logs: %d %q", code, body)
			}
			return ""
		})
	})
	t.Run("stats", func(t *testing.T) {
		// The container spins: after two samples its CPU rate shows.
		var summary string
		integration.Eventually(t, 20*time.Second, func() string {
			code, body := get(httpClient, "/stats/summary", "")
			summary = body
			if code != 200 {
				return fmt.Sprintf("%d %s", code, body)
			}
			for _, ps := range decodeSummary(t, body).Pods {
				if ps.PodRef.UID == string(pod.UID) && ps.CPU != nil && ps.CPU.UsageNanoCores != nil {
					return ""
				}
			}
			return "no CPU rate of the pod yet"
		})
		s := decodeSummary(t, summary)
		var found bool
		for _, ps := range s.Pods {
			if ps.PodRef.UID != string(pod.UID) {
				continue
			}
			found = true
			if ps.PodRef.Name != "shell" || ps.PodRef.Namespace != "default" || len(ps.Containers) != 1 || ps.Containers[0].Name != "c" {
				t.Errorf("pod stats: %+v", ps)
			}
			c := ps.Containers[0]
			if c.CPU == nil || c.CPU.UsageCoreNanoSeconds == nil || *c.CPU.UsageCoreNanoSeconds == 0 || c.Memory == nil || c.Memory.WorkingSetBytes == nil {
				t.Errorf("container stats: %+v", c)
			}
			// A BestEffort pod's spinning container gets what the node's
			// other work leaves (cpu.shares 2): some, not a set amount.
			if ps.CPU == nil || ps.CPU.UsageNanoCores == nil || *ps.CPU.UsageNanoCores == 0 {
				t.Errorf("pod CPU of a spinning container: %s, want a rate", describeCPU(ps.CPU))
			}
			// The pod's cgroup holds the container's.
			if ps.CPU != nil && c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil && *ps.CPU.UsageCoreNanoSeconds < *c.CPU.UsageCoreNanoSeconds*9/10 {
				t.Errorf("pod CPU %s below its container's %s", describeCPU(ps.CPU), describeCPU(c.CPU))
			}
			if ps.Memory == nil || ps.Memory.WorkingSetBytes == nil || *ps.Memory.WorkingSetBytes == 0 {
				t.Errorf("pod memory: %+v", ps.Memory)
			}
			if ps.Network == nil || ps.Network.Name != "eth0" {
				t.Errorf("pod network: %+v", ps.Network)
			}
			if c.Logs == nil || c.Logs.UsedBytes == nil || *c.Logs.UsedBytes == 0 {
				t.Errorf("container logs usage: %+v", c.Logs)
			}
		}
		if !found {
			t.Errorf("pod %s not in the summary: %.500s", pod.UID, summary)
		}
		code, metrics := get(httpClient, "/metrics/resource", "")
		if code != 200 || !strings.Contains(metrics, `container_cpu_usage_seconds_total{container="c",namespace="default",pod="shell"}`) || !strings.Contains(metrics, "node_memory_working_set_bytes ") {
			t.Errorf("/metrics/resource: %d %s", code, metrics)
		}
		code, metrics = get(httpClient, "/metrics", "")
		if code != 200 || !strings.Contains(metrics, "kubelet_running_pods 1\n") || !strings.Contains(metrics, `kubelet_running_containers{container_state="running"} 1`) {
			t.Errorf("/metrics: %d, kubelet_running_* missing", code)
		}
	})
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func describeCPU(c *statsapi.CPUStats) string {
	if c == nil {
		return "none"
	}
	var rate, total uint64
	if c.UsageNanoCores != nil {
		rate = *c.UsageNanoCores
	}
	if c.UsageCoreNanoSeconds != nil {
		total = *c.UsageCoreNanoSeconds
	}
	return fmt.Sprintf("%d nanocores, %d ns in all, at %s", rate, total, c.Time)
}
