package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/test/harness"
)

// target is one running server and the clients driving it.
type target struct {
	name string
	srv  *harness.Server
	cfg  *rest.Config
	pool []kubernetes.Interface
}

// clients returns n clientsets, each with its own connection, as n separate
// client processes would have (client-go otherwise shares one HTTP/2
// connection between all clientsets made from equal configs).
func (t *target) clients(n int) ([]kubernetes.Interface, error) {
	for len(t.pool) < n {
		cfg := rest.CopyConfig(t.cfg)
		// A Proxy func makes client-go's transport cache skip this config.
		cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		t.pool = append(t.pool, cs)
	}
	return t.pool[:n], nil
}

// admin is the first client, for set-up calls.
func (t *target) admin() kubernetes.Interface {
	cs, err := t.clients(1)
	if err != nil {
		panic(err) // clients(1) only fails on a config that start already used
	}
	return cs[0]
}

// closeIdle drops the clients' connections before the server stops.
func (t *target) closeIdle() {
	for _, cs := range t.pool {
		if c, ok := cs.(*kubernetes.Clientset); ok {
			if hc := c.CoreV1().RESTClient().(*rest.RESTClient).Client; hc != nil {
				hc.CloseIdleConnections()
			}
		}
	}
	t.pool = nil
}

// newNamespace creates a fresh namespace named bench-<prefix>-xxxxx. With
// serviceAccount it also creates ServiceAccount "default": no controller
// manager runs next to upstream, and its ServiceAccount admission rejects
// pods without one (created on both servers so the workload is the same).
func newNamespace(ctx context.Context, cs kubernetes.Interface, prefix string, serviceAccount bool) (string, error) {
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-" + prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace: %w", err)
	}
	if serviceAccount {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create service account: %w", err)
		}
	}
	return ns.Name, nil
}

// serverOrder returns the servers in the order of round i: skiff first in
// even rounds, upstream first in odd ones, so neither always goes first.
func (b *bench) serverOrder(i int) []string {
	if b.cfg.skipUpstream {
		return []string{"skiff"}
	}
	if i%2 == 0 {
		return []string{"skiff", "upstream"}
	}
	return []string{"upstream", "skiff"}
}

// start runs a fresh server with its data under the log directory.
func (b *bench) start(ctx context.Context, name, label string) (*target, error) {
	runtime.GC() // the previous run's garbage should not be collected during this one
	b.seq++
	opts := harness.Options{Dir: filepath.Join(b.logDir, fmt.Sprintf("%02d-%s-%s", b.seq, name, label))}
	var srv *harness.Server
	var err error
	if name == "skiff" {
		srv, err = harness.StartSkiff(ctx, opts)
	} else {
		b.quietStderr(func() { srv, err = harness.StartUpstream(ctx, opts) })
	}
	if err != nil {
		pruneDir(opts.Dir)
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cfg, err := srv.RESTConfig()
	if err != nil {
		b.stop(&target{name: name, srv: srv})
		return nil, err
	}
	return &target{name: name, srv: srv, cfg: cfg}, nil
}

// stop stops the server and removes its data, keeping its log. It notes a
// server that had exited on its own or did not exit cleanly.
func (b *bench) stop(t *target) {
	t.closeIdle()
	select {
	case <-t.srv.Exited():
		b.res.note("%s exited during the run; log: %s; tail:\n%s", t.name, t.srv.LogPath, t.srv.LogTail(20))
	default:
	}
	t0 := time.Now()
	var err error
	b.quietStderr(func() { err = t.srv.Stop() })
	if err != nil {
		b.res.note("%s did not stop cleanly: %v (log %s)", t.name, err, t.srv.LogPath)
	}
	took := time.Since(t0).Seconds()
	b.stops[t.name] = append(b.stops[t.name], took)
	b.res.set(t.name, "server", "SIGTERM → exited, median over all stops", "s", median(b.stops[t.name]))
	pruneDir(t.srv.Dir)
}

// pruneDir removes a server's directory but for its log.
func pruneDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// measureStartup starts and stops each server cfg.starts times, alternating
// which goes first, and records the median time from process start to the
// first 200 from /readyz.
func (b *bench) measureStartup(ctx context.Context) error {
	samples := map[string][]float64{}
	for i := range b.cfg.starts {
		for _, name := range b.serverOrder(i) {
			load := loadAvg()
			t, err := b.start(ctx, name, "startup")
			if err != nil {
				return err
			}
			ready := t.srv.ReadyAt.Sub(t.srv.StartedAt)
			samples[name] = append(samples[name], ready.Seconds())
			b.res.Runs = append(b.res.Runs, run{Server: name, Workload: "startup", Started: t.srv.StartedAt,
				ReadySeconds: ready.Seconds(), Load1Before: load, Load1After: loadAvg(), LogPath: t.srv.LogPath})
			logf("%s: start %d/%d: ready after %s", name, i+1, b.cfg.starts, ready.Round(time.Millisecond))
			b.res.set(name, "server", fmt.Sprintf("process start → /readyz ok, median of %d", b.cfg.starts), "s", median(samples[name]))
			b.stop(t)
		}
	}
	return nil
}

// quietStderr runs fn with os.Stderr pointing to the bench's own log file
// (progress lines keep the real stderr): harness.StartUpstream runs etcd in
// this process, and etcd's logger, which keeps the os.Stderr it saw when
// created, and klog would interleave their lines with the progress.
func (b *bench) quietStderr(fn func()) {
	if b.stray == nil {
		fn()
		return
	}
	saved := os.Stderr
	os.Stderr = b.stray
	defer func() { os.Stderr = saved }()
	fn()
}

// rssMiB is the server's resident set size in MiB.
func rssMiB(t *target) float64 {
	rss, err := t.srv.RSS()
	if err != nil {
		return math.NaN()
	}
	return float64(rss) / (1 << 20)
}

// loadAvg is the 1-minute load average, 0 if unknown.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	return f
}
