// Package allocation proves that Service ClusterIPs and NodePorts are handed
// out once: under concurrent creates, across a restart, and across two
// `skiff server` processes sharing one etcd.
package allocation

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/pkg/etcd"
	"github.com/skiff-dev/skiff/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// allocations records who got which ClusterIP and NodePort.
type allocations struct {
	mu    sync.Mutex
	ips   map[string]string
	ports map[int32]string
}

func (a *allocations) add(t *testing.T, svc *corev1.Service) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if owner, dup := a.ips[svc.Spec.ClusterIP]; dup {
		t.Errorf("ClusterIP %s given to both %s and %s", svc.Spec.ClusterIP, owner, svc.Name)
	}
	a.ips[svc.Spec.ClusterIP] = svc.Name
	for _, p := range svc.Spec.Ports {
		if owner, dup := a.ports[p.NodePort]; dup {
			t.Errorf("NodePort %d given to both %s and %s", p.NodePort, owner, svc.Name)
		}
		a.ports[p.NodePort] = svc.Name
	}
}

// createServices makes n NodePort Services, spread over the clients with
// eight concurrent writers, and records their allocations.
func createServices(t *testing.T, clients []kubernetes.Interface, prefix string, n int, got *allocations) {
	t.Helper()
	const writers = 8
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := clients[w%len(clients)]
			for i := w; i < n; i += writers {
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i)},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "x"},
						Ports: []corev1.ServicePort{{Port: 80}}},
				}
				created, err := client.CoreV1().Services(metav1.NamespaceDefault).Create(context.Background(), svc, metav1.CreateOptions{})
				if err != nil {
					t.Errorf("creating %s: %v", svc.Name, err)
					continue
				}
				if created.Spec.ClusterIP == "" || created.Spec.Ports[0].NodePort == 0 {
					t.Errorf("%s got no ClusterIP or NodePort: %+v", svc.Name, created.Spec)
					continue
				}
				got.add(t, created)
			}
		}(w)
	}
	wg.Wait()
}

func clientFor(t *testing.T, s *harness.Server) kubernetes.Interface {
	t.Helper()
	cfg, err := s.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func TestAllocationsAreUnique(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three skiff servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	store, err := etcd.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	shared := []string{"--etcd-servers", store.ClientURL}

	firstDir := t.TempDir()
	first, err := harness.StartSkiff(ctx, harness.Options{Dir: firstDir, Args: shared})
	if err != nil {
		t.Fatal(err)
	}
	second, err := harness.StartSkiff(ctx, harness.Options{Args: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()

	got := &allocations{ips: map[string]string{}, ports: map[int32]string{}}
	// The kubernetes Service holds the first IP of the range.
	got.ips["10.96.0.1"] = "kubernetes"

	createServices(t, []kubernetes.Interface{clientFor(t, first), clientFor(t, second)}, "before", 200, got)
	if len(got.ips) != 201 {
		t.Fatalf("%d distinct ClusterIPs for 200 Services (+ kubernetes)", len(got.ips)-1)
	}

	// Restart one server on the same data: what it hands out next is new too.
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	first, err = harness.StartSkiff(ctx, harness.Options{Dir: firstDir, Args: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()
	createServices(t, []kubernetes.Interface{clientFor(t, first), clientFor(t, second)}, "after", 200, got)
	if len(got.ips) != 401 || len(got.ports) != 400 {
		t.Fatalf("after the restart: %d ClusterIPs and %d NodePorts for 400 Services", len(got.ips)-1, len(got.ports))
	}

	// Deleting releases: the freed address can be asked for explicitly.
	client := clientFor(t, second)
	victim, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "before-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Services(metav1.NamespaceDefault).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	reuse := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reuse"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: victim.Spec.ClusterIP,
		Ports: []corev1.ServicePort{{Port: 80, NodePort: victim.Spec.Ports[0].NodePort}}}}
	if _, err := clientFor(t, first).CoreV1().Services(metav1.NamespaceDefault).Create(ctx, reuse, metav1.CreateOptions{}); err != nil {
		t.Errorf("re-using the released IP %s and port %d: %v", victim.Spec.ClusterIP, victim.Spec.Ports[0].NodePort, err)
	}
}
