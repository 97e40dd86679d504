package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/test/harness"
)

// TestServerRegainsControllerLease takes the controllers' Lease away from a
// running `skiff server` and gives it back: the server stops its
// controllers, campaigns again and, once it leads again, runs them again
// (a new namespace gets its default ServiceAccount).
func TestServerRegainsControllerLease(t *testing.T) {
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Args: []string{
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"}})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	terms := func() int {
		data, _ := os.ReadFile(srv.LogPath)
		return strings.Count(string(data), "Started leading: running the controllers")
	}
	eventually(t, 30*time.Second, func() string {
		if terms() != 1 {
			return "the server does not lead"
		}
		return ""
	})
	waitDefaultServiceAccount(t, admin, "first-term")

	// Another holder renews the Lease for longer than the server's renew
	// deadline: the server loses it.
	const thief = "e2e-thief"
	lost := time.Now().Add(20 * time.Second)
	for {
		holdLease(t, admin, thief)
		log, _ := os.ReadFile(srv.LogPath)
		if strings.Contains(string(log), "Lost the controllers' lease; campaigning again") {
			break
		}
		if time.Now().After(lost) {
			t.Fatalf("the server did not lose the Lease to %s; log tail:\n%s", thief, srv.LogTail(30))
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The thief stops renewing: the server takes the Lease back once it
	// expires and runs its controllers again.
	eventually(t, 30*time.Second, func() string {
		if terms() != 2 {
			return "the server did not lead a second time"
		}
		return ""
	})
	lease, err := admin.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h == thief || h == "" {
		t.Fatalf("Lease holder %q after the second term started", h)
	}
	waitDefaultServiceAccount(t, admin, "second-term")
	if log, _ := os.ReadFile(srv.LogPath); strings.Contains(string(log), "already exists") {
		t.Errorf("the second term logged a duplicate controller:\n%s", srv.LogTail(30))
	}
}

// holdLease makes holder the holder of the controllers' Lease, renewed now.
func holdLease(t *testing.T, admin kubernetes.Interface, holder string) {
	t.Helper()
	ctx := context.Background()
	leases := admin.CoordinationV1().Leases("kube-system")
	lease, err := leases.Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewMicroTime(time.Now())
	if ptr.Deref(lease.Spec.HolderIdentity, "") != holder {
		lease.Spec.AcquireTime = &now
		lease.Spec.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
	}
	lease.Spec.HolderIdentity = ptr.To(holder)
	lease.Spec.RenewTime = &now
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](4)
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		// A conflict with the server's own renewal: try again next round.
		t.Logf("taking the Lease: %v", err)
	}
}
