// Command bench measures an apiserver with client-go: create throughput and
// latency of ConfigMaps with several client counts. Issue "Measure skiff
// against upstream" extends it to run the same workload against upstream
// kube-apiserver in the same run and report ratios.
//
//	go run ./hack/bench --kubeconfig /var/lib/skiff/admin.kubeconfig --clients 1,16 --duration 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the server to measure")
	clients := flag.String("clients", "1,16", "comma-separated client counts")
	duration := flag.Duration("duration", 10*time.Second, "how long each run creates objects")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	// The load generator, not client-side throttling, must be the limit.
	cfg.QPS, cfg.Burst = 1e6, 1e6
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	fmt.Println("| workload | clients | ops | ops/s | p50 | p99 |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, field := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			fail(fmt.Errorf("bad client count %q", field))
		}
		r := createConfigMaps(client, n, *duration)
		fmt.Printf("| configmap create | %d | %d | %.0f | %s | %s |\n", n, r.ops, float64(r.ops)/r.elapsed.Seconds(),
			r.percentile(50).Round(10*time.Microsecond), r.percentile(99).Round(10*time.Microsecond))
	}
}

type result struct {
	ops       int
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) percentile(p int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[(len(r.latencies)-1)*p/100]
}

// createConfigMaps runs n clients creating ConfigMaps in a fresh namespace
// for d, then deletes the namespace.
func createConfigMaps(client kubernetes.Interface, n int, d time.Duration) result {
	ctx := context.Background()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}, metav1.CreateOptions{})
	if err != nil {
		fail(err)
	}
	defer client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})

	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d-%d", c, i)},
					Data:       map[string]string{"key": "value"},
				}
				t0 := time.Now()
				if _, err := client.CoreV1().ConfigMaps(ns.Name).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					fail(err)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return result{ops: len(all), elapsed: elapsed, latencies: all}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
