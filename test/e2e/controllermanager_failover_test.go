package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/test/harness"
)

// TestControllerManagerFailover: `skiff apiserver`, two `skiff
// controller-manager`s, `skiff scheduler` and two simulated nodes. A
// Deployment of 10 replicas runs; the leading controller manager (the
// Lease's holder) is killed with SIGKILL, so it never releases the Lease;
// the other takes over once the Lease expires (within the lease duration
// and the retry periods), and a scale to 20 after the takeover ends with
// exactly 20 pods. A watch counts pods and ReplicaSets all along: no pod is
// created twice or deleted, never more live pods than the desired replicas
// (+ maxSurge), one ReplicaSet.
func TestControllerManagerFailover(t *testing.T) {
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Command: "apiserver"})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	ctx := context.Background()

	const (
		leaseDuration = 4 * time.Second
		retryPeriod   = 500 * time.Millisecond
	)
	flags := []string{"--leader-elect-lease-duration=" + leaseDuration.String(), "--leader-elect-renew-deadline=3s",
		"--leader-elect-retry-period=" + retryPeriod.String(),
		"--use-service-account-credentials", "--service-account-private-key-file", filepath.Join(srv.Dir, "pki", "sa.key")}
	managers := []*component{startControllerManager(t, srv, flags...), startControllerManager(t, srv, flags...)}
	startScheduler(t, srv)
	startAgent(t, srv, "--simulate", "2")
	k := newKctl(t, firstKubectl(t), srv)
	eventually(t, 40*time.Second, func() string {
		for _, cm := range managers {
			if !cm.running() {
				t.Fatalf("controller-manager exited: %v\n%s", cm.waitErr, cm.log())
			}
		}
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 2 {
			return "nodes:\n" + out
		}
		return ""
	})
	leader, follower := leaseHolder(t, admin, managers)

	w := watchWorkload(t, admin, k.ns, "app=web")
	assertContains(t, k.ok(t, "create", "deployment", "web", "--image=nginx", "--replicas=10"), "deployment.apps/web created")
	k.ok(t, "rollout", "status", "deployment/web", "--timeout=60s")
	waitDeploy(t, k, "web", "10/10", "10", "10")

	// SIGKILL: the Lease stays held until it expires.
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-leader.exited
	leases := admin.CoordinationV1().Leases("kube-system")
	lease, err := leases.Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != leader.leading() {
		t.Fatalf("Lease held by %q right after the kill, want the killed leader %q", h, leader.leading())
	}
	lastRenew, transitions := lease.Spec.RenewTime.Time, ptr.Deref(lease.Spec.LeaseTransitions, 0)
	eventually(t, 3*leaseDuration, func() string {
		if lease, err = leases.Get(ctx, "kube-controller-manager", metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != follower.leading() || h == "" {
			return fmt.Sprintf("Lease held by %q, the follower (%q) has not taken over", h, follower.leading())
		}
		return ""
	})
	took := time.Since(killed)
	if got := ptr.Deref(lease.Spec.LeaseTransitions, 0); got != transitions+1 {
		t.Errorf("leaseTransitions %d after the takeover, want %d", got, transitions+1)
	}
	// As client-go's leader election: the follower waits a lease duration
	// from when it saw the last renewal, which it sees at its next try;
	// it tries every retry period, jittered by up to 1.2 times. Half a
	// second more for requests on a busy machine.
	expired := lease.Spec.AcquireTime.Sub(lastRenew)
	limit := leaseDuration + 2*time.Duration(2.2*float64(retryPeriod)) + 500*time.Millisecond
	t.Logf("the follower took the Lease over %s after the leader's last renewal, %s after the kill (limit %s)",
		expired.Round(time.Millisecond), took.Round(time.Millisecond), limit)
	// The follower counts the lease duration from the last change it saw,
	// and the leader may have renewed once more between two of its tries.
	if earliest := leaseDuration - time.Duration(2.2*float64(retryPeriod)); expired < earliest {
		t.Errorf("the follower took the Lease %s after its last renewal, before it could have seen it expire (%s)", expired, earliest)
	}
	if expired > limit {
		t.Errorf("takeover %s after the last renewal, more than the lease duration %s and retry periods (%s)", expired.Round(time.Millisecond), leaseDuration, limit)
	}

	// The new leader's controllers scale the Deployment.
	w.setDesired(20)
	k.ok(t, "scale", "deployment", "web", "--replicas=20")
	k.ok(t, "rollout", "status", "deployment/web", "--timeout=60s")
	waitDeploy(t, k, "web", "20/20", "20", "20")
	time.Sleep(2 * time.Second) // anything created late would show now
	s := w.stop()
	t.Logf("pods: %d created, %d deleted, at most %d live (at most %d while 10 were desired); ReplicaSets: %d",
		s.created, s.deleted, s.mostLive, s.mostLiveAt10, s.replicaSets)
	if s.created != 20 || s.deleted != 0 {
		t.Errorf("%d pods created and %d deleted, want 20 created (10, then 10 more) and none deleted: something was created twice", s.created, s.deleted)
	}
	if s.live != 20 {
		t.Errorf("%d pods at the end, want 20", s.live)
	}
	// 25% maxSurge of 10 is 3.
	if s.mostLiveAt10 > 10+3 || s.mostLive > 20+5 {
		t.Errorf("up to %d live pods while 10 were desired (10 + maxSurge 3 allowed), up to %d in all (20 + 5)", s.mostLiveAt10, s.mostLive)
	}
	if s.replicaSets != 1 {
		t.Errorf("%d ReplicaSets, want 1", s.replicaSets)
	}
	if n := len(strings.Fields(k.ok(t, "get", "pods", "-l", "app=web", "-o", "name"))); n != 20 {
		t.Errorf("kubectl get pods lists %d, want 20", n)
	}
	if follower.leading() == "" || !follower.running() {
		t.Errorf("the new leader no longer leads")
	}
}

// leaseHolder waits for one of managers to hold the controllers' Lease
// and returns it and the other.
func leaseHolder(t *testing.T, admin kubernetes.Interface, managers []*component) (leader, follower *component) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		l, err := admin.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-controller-manager", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		h := ptr.Deref(l.Spec.HolderIdentity, "")
		for i, cm := range managers {
			if h != "" && cm.leading() == h {
				leader, follower = cm, managers[1-i]
				return ""
			}
		}
		return fmt.Sprintf("Lease held by %q, neither controller-manager leads", h)
	})
	if follower.leading() != "" {
		t.Fatalf("both controller-managers lead")
	}
	return leader, follower
}

// workloadWatch follows a selector's pods and the namespace's ReplicaSets
// with an informer from before anything exists.
type workloadWatch struct {
	stopCh chan struct{}
	pods   cache.SharedIndexInformer

	mu      sync.Mutex
	desired int
	stats   workloadStats
	podUIDs map[types.UID]bool
	rsUIDs  map[types.UID]bool
}

type workloadStats struct {
	created, deleted, live, mostLive, mostLiveAt10, replicaSets int
}

func watchWorkload(t *testing.T, client kubernetes.Interface, ns, selector string) *workloadWatch {
	t.Helper()
	w := &workloadWatch{stopCh: make(chan struct{}), desired: 10, podUIDs: map[types.UID]bool{}, rsUIDs: map[types.UID]bool{}}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	w.pods = f.Core().V1().Pods().Informer()
	rs := f.Apps().V1().ReplicaSets().Informer()
	if _, err := w.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			w.mu.Lock()
			w.podUIDs[o.(*corev1.Pod).UID] = true
			w.mu.Unlock()
			w.count()
		},
		UpdateFunc: func(any, any) { w.count() },
		DeleteFunc: func(any) {
			w.mu.Lock()
			w.stats.deleted++
			w.mu.Unlock()
			w.count()
		},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) {
		w.mu.Lock()
		w.rsUIDs[o.(*appsv1.ReplicaSet).UID] = true
		w.mu.Unlock()
	}}); err != nil {
		t.Fatal(err)
	}
	f.Start(w.stopCh)
	if !cache.WaitForCacheSync(w.stopCh, w.pods.HasSynced, rs.HasSynced) {
		t.Fatal("informers did not sync")
	}
	t.Cleanup(func() {
		select {
		case <-w.stopCh:
		default:
			close(w.stopCh)
		}
	})
	return w
}

// count: pods neither being deleted nor finished.
func (w *workloadWatch) count() {
	live := 0
	for _, o := range w.pods.GetStore().List() {
		p := o.(*corev1.Pod)
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			live++
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.live = live
	w.stats.mostLive = max(w.stats.mostLive, live)
	if w.desired == 10 {
		w.stats.mostLiveAt10 = max(w.stats.mostLiveAt10, live)
	}
}

func (w *workloadWatch) setDesired(n int) {
	w.mu.Lock()
	w.desired = n
	w.mu.Unlock()
}

func (w *workloadWatch) stop() workloadStats {
	close(w.stopCh)
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.created, s.replicaSets = len(w.podUIDs), len(w.rsUIDs)
	return s
}
