package metrics_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/skiff-dev/skiff/pkg/apiserver"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/pkg/registry/metrics/scraper"
	"github.com/skiff-dev/skiff/test/integration"
)

// fakeKubelet serves /metrics/resource as a kubelet on 127.0.0.1: a
// serving certificate of the cluster CA, client certificates required.
// The node uses 500m, its container default/web/app 100m; CPU counters
// grow with the clock, so any two scrapes rate to exactly that.
type fakeKubelet struct {
	port  int
	start time.Time

	mu       sync.Mutex
	clientCN string
}

func startFakeKubelet(t *testing.T, ca *pki.CA) *fakeKubelet {
	t.Helper()
	serving, err := ca.EnsureServingCert(t.TempDir(), "kubelet", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(serving.CertFile, serving.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	k := &fakeKubelet{start: time.Now().Add(-time.Hour)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(k.serve))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return k
}

func (k *fakeKubelet) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/metrics/resource" {
		http.NotFound(w, req)
		return
	}
	k.mu.Lock()
	if len(req.TLS.PeerCertificates) > 0 {
		k.clientCN = req.TLS.PeerCertificates[0].Subject.CommonName
	}
	k.mu.Unlock()
	ms := time.Now().UnixMilli()
	up := float64(ms-k.start.UnixMilli()) / 1000
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	labels := `{container="app",namespace="default",pod="web"}`
	fmt.Fprintf(w, `# HELP node_cpu_usage_seconds_total Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total %g %d
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes %d %d
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total%s %g %d
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes%s %d %d
# TYPE container_start_time_seconds gauge
container_start_time_seconds%s %d
# TYPE resource_scrape_error gauge
resource_scrape_error 0
`, 0.5*up, ms, 512<<20, ms, labels, 0.1*up, ms, labels, 16<<20, ms, labels, k.start.Unix())
}

func (k *fakeKubelet) lastClient() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clientCN
}

// TestMetricsAPI: a real API server scrapes a fake kubelet registered as
// a Ready node and serves metrics.k8s.io nodes and pods: lists, gets,
// selectors, discovery, the table, RBAC through the aggregated view role,
// and stock kubectl top when installed.
func TestMetricsAPI(t *testing.T) {
	defer func(r time.Duration) { scraper.Resolution = r }(scraper.Resolution)
	scraper.Resolution = 300 * time.Millisecond
	var opts *options.Options
	cfg := integration.StartAPIServer(t, integration.ServerOptions{Customize: func(o *options.Options) { opts = o }})
	integration.RunControllers(t, cfg, controllers.Options{Controllers: []string{"clusterrole-aggregation-controller"}})
	ctx := context.Background()
	client := kubernetes.NewForConfigOrDie(cfg)
	mc := metricsclient.NewForConfigOrDie(cfg)
	ca, err := pki.LoadCA(opts.PKIDir())
	if err != nil {
		t.Fatal(err)
	}
	kubelet := startFakeKubelet(t, ca)

	addNode := func(name string, ready corev1.ConditionStatus) {
		n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"role": name}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(kubelet.port)
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
		n.Status.NodeInfo.ContainerRuntimeVersion = "containerd://1.6.20"
		n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi")}
		n.Status.Allocatable = n.Status.Capacity
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	addNode("n1", corev1.ConditionTrue)
	// Same kubelet, but NotReady: not scraped, so no metrics.
	addNode("down", corev1.ConditionFalse)
	// No serviceaccount controller here: the pods' account by hand.
	if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "idle"} {
		p, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var nodes *metricsv1beta1.NodeMetricsList
	integration.Eventually(t, 30*time.Second, func() string {
		nodes, err = mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) == 0 {
			return fmt.Sprintf("node metrics: %v %v", nodes, err)
		}
		return ""
	})
	if len(nodes.Items) != 1 || nodes.Items[0].Name != "n1" || nodes.Items[0].Labels["role"] != "n1" {
		t.Fatalf("node metrics of the Ready node only: %+v", nodes.Items)
	}
	n := nodes.Items[0]
	cpu, mem := n.Usage[corev1.ResourceCPU], n.Usage[corev1.ResourceMemory]
	if c := cpu.MilliValue(); c < 495 || c > 505 || mem.Value() != 512<<20 || n.Window.Duration <= 0 || n.Window.Duration > 2*time.Second ||
		time.Since(n.Timestamp.Time) > 10*time.Second {
		t.Errorf("node usage cpu %s memory %s window %s at %s", cpu.String(), mem.String(), n.Window.Duration, n.Timestamp)
	}
	if cn := kubelet.lastClient(); cn != apiserver.KubeletClientUser {
		t.Errorf("the kubelet saw client %q", cn)
	}
	if _, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, "down", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of the NotReady node: %v", err)
	}
	if l, err := mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{LabelSelector: "role=down"}); err != nil || len(l.Items) != 0 {
		t.Errorf("label selector: %+v %v", l, err)
	}

	pods, err := mc.MetricsV1beta1().PodMetricses("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// idle: the kubelet reports nothing of it.
	if len(pods.Items) != 1 || pods.Items[0].Name != "web" || len(pods.Items[0].Containers) != 1 || pods.Items[0].Containers[0].Name != "app" {
		t.Fatalf("pod metrics: %+v", pods.Items)
	}
	pcpu := pods.Items[0].Containers[0].Usage[corev1.ResourceCPU]
	if c := pcpu.MilliValue(); c < 98 || c > 102 {
		t.Errorf("container cpu %s", pcpu.String())
	}
	if l, err := mc.MetricsV1beta1().PodMetricses("default").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=idle"}); err != nil || len(l.Items) != 0 {
		t.Errorf("field selector: %+v %v", l, err)
	}
	if _, err := mc.MetricsV1beta1().PodMetricses("default").Get(ctx, "idle", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of a pod without metrics: %v", err)
	}

	// Discovery: get and list of both.
	res, err := client.Discovery().ServerResourcesForGroupVersion("metrics.k8s.io/v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.APIResources {
		if !slices.Equal(r.Verbs, []string{"get", "list"}) {
			t.Errorf("%s verbs %v", r.Name, r.Verbs)
		}
	}
	// Singular names as metrics-server's: "node", and none for pods.
	if len(res.APIResources) != 2 || res.APIResources[0].Kind != "NodeMetrics" || res.APIResources[1].Kind != "PodMetrics" || !res.APIResources[1].Namespaced ||
		res.APIResources[0].SingularName != "node" || res.APIResources[1].SingularName != "" {
		t.Errorf("discovery: %+v", res.APIResources)
	}

	// The table: Name, cpu, memory, Window.
	table := &metav1.Table{}
	err = client.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Into(table)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if !slices.Equal(cols, []string{"Name", "cpu", "memory", "Window"}) || len(table.Rows) != 1 || table.Rows[0].Cells[0] != "web" {
		t.Errorf("table %v %+v", cols, table.Rows)
	}

	// RBAC: view (aggregating system:aggregated-metrics-reader) in a
	// namespace lets read its pods' metrics, not the nodes'.
	if _, err := client.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	aliceCfg := restclient.CopyConfig(cfg)
	aliceCfg.Impersonate = restclient.ImpersonationConfig{UserName: "alice"}
	alice := metricsclient.NewForConfigOrDie(aliceCfg)
	integration.Eventually(t, 20*time.Second, func() string {
		if _, err := alice.MetricsV1beta1().PodMetricses("default").List(ctx, metav1.ListOptions{}); err != nil {
			return fmt.Sprintf("alice lists pod metrics: %v", err)
		}
		return ""
	})
	if _, err := alice.MetricsV1beta1().PodMetricses("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice in kube-system: %v", err)
	}
	if _, err := alice.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice lists node metrics: %v", err)
	}

	kubectlTop(t, opts.AdminKubeconfig())
}

// kubectlTop runs stock kubectl's top node and top pod -A.
func kubectlTop(t *testing.T, kubeconfig string) {
	for _, v := range []string{"1.27", "1.33"} {
		bin := "/usr/lib/google-cloud-sdk/bin/kubectl." + v
		if _, err := os.Stat(bin); err != nil {
			t.Logf("no kubectl %s at %s: kubectl top not run with it", v, bin)
			continue
		}
		for _, args := range [][]string{{"top", "node"}, {"top", "pod", "-A"}, {"get", "podmetrics", "-A"}} {
			out, err := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
			text := string(out)
			t.Logf("kubectl %s %s:\n%s", v, strings.Join(args, " "), text)
			if err != nil {
				t.Errorf("kubectl %s %v: %v\n%s", v, args, err, text)
				continue
			}
			// Memory: kubectl prints Mi.
			want := []string{"n1", "500m", "25%", "512Mi"}
			switch args[1] {
			case "pod":
				want = []string{"default", "web", "100m", "16Mi"}
			case "podmetrics":
				// The server's table: the containers' usage summed, window.
				want = []string{"NAMESPACE", "NAME", "CPU", "MEMORY", "WINDOW", "web", "16Mi"}
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("kubectl %s %v lacks %q:\n%s", v, args, w, text)
				}
			}
		}
	}
}
