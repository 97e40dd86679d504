package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/test/harness"
)

const (
	writers       = 4
	writeDuration = 3 * time.Second
)

// TestKill9Durability starts two servers side by side, writes ConfigMaps to
// one of them from several goroutines, kills it with SIGKILL mid-write,
// restarts it on the same data directory and checks that every write that
// was acknowledged with 201 Created survived.
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers; skipped with -short")
	}

	// Two servers with their own data dirs and ports start concurrently.
	dirA, dirB := t.TempDir(), t.TempDir()
	var a, b *harness.Server
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = startServer(dirA, 0) }()
	go func() { defer wg.Done(); b, errB = startServer(dirB, 0) }()
	wg.Wait()
	for _, s := range []*harness.Server{a, b} {
		if s != nil {
			stopOnCleanup(t, s)
		}
	}
	if errA != nil || errB != nil {
		t.Fatalf("starting two servers side by side: A: %v; B: %v", errA, errB)
	}
	if a.Port == b.Port {
		t.Fatalf("both servers on port %d", a.Port)
	}

	clientA := clientFor(t, a)
	clientB := clientFor(t, b)
	ctx := context.Background()

	// Write until killed.
	var (
		mu      sync.Mutex
		created []string
		failed  int
		stop    = make(chan struct{})
		done    sync.WaitGroup
	)
	for g := 0; g < writers; g++ {
		done.Add(1)
		go func() {
			defer done.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("durable-%d-%d", g, i)
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e": "durability"}},
					Data:       map[string]string{"writer": fmt.Sprint(g), "seq": fmt.Sprint(i)},
				}
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := clientA.CoreV1().ConfigMaps("default").Create(rctx, cm, metav1.CreateOptions{})
				cancel()
				mu.Lock()
				if err == nil { // 201 Created
					created = append(created, name)
				} else {
					failed++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(writeDuration)
	killErr := a.Kill() // SIGKILL while the writers are still running
	close(stop)
	done.Wait()

	if killErr != nil {
		t.Fatal(killErr)
	}
	mu.Lock()
	acked := append([]string(nil), created...)
	mu.Unlock()
	t.Logf("%d ConfigMaps acknowledged before kill -9 (%d requests failed, most at the kill)", len(acked), failed)
	if len(acked) < 10 {
		t.Fatalf("only %d ConfigMaps were created in %s; too few to test anything", len(acked), writeDuration)
	}

	// B is unaffected by A's death and does not share its storage.
	if err := checkReady(b, 5*time.Second); err != nil {
		t.Errorf("server B after A was killed: %v", err)
	}
	if list, err := clientB.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: "e2e=durability"}); err != nil {
		t.Errorf("listing on server B: %v", err)
	} else if len(list.Items) != 0 {
		t.Errorf("server B sees %d of server A's ConfigMaps", len(list.Items))
	}

	// Restart A on the same data dir and port.
	a2, err := startServer(a.Dir, a.Port)
	if err != nil {
		t.Fatalf("restarting server A after kill -9: %v", err)
	}
	stopOnCleanup(t, a2)
	clientA = clientFor(t, a2)

	list, err := clientA.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: "e2e=durability"})
	if err != nil {
		t.Fatalf("listing after restart: %v", err)
	}
	present := map[string]bool{}
	for _, cm := range list.Items {
		present[cm.Name] = true
	}
	var missing []string
	for _, name := range acked {
		if !present[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged ConfigMaps are missing after kill -9 and restart, e.g. %v",
			len(missing), len(acked), missing[:min(len(missing), 10)])
	}
	t.Logf("after restart: %d ConfigMaps present, all %d acknowledged ones among them: %v", len(list.Items), len(acked), len(missing) == 0)

	// Reads of single objects work too, and the restarted server accepts writes.
	if _, err := clientA.CoreV1().ConfigMaps("default").Get(ctx, acked[len(acked)-1], metav1.GetOptions{}); err != nil {
		t.Errorf("get %s after restart: %v", acked[len(acked)-1], err)
	}
	if _, err := clientA.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-restart"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("create after restart: %v", err)
	}
}

// clientFor returns a client-go clientset using the server's admin kubeconfig,
// without client-side rate limiting.
func clientFor(t *testing.T, s *harness.Server) *kubernetes.Clientset {
	t.Helper()
	cfg, err := s.RESTConfig()
	if err != nil {
		t.Fatalf("loading %s: %v", s.Kubeconfig, err)
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
