package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestGoneAPIServerLeases: every skiff server holds upstream's identity
// Lease; the Leases of API servers that are gone are deleted (identity
// Leases by the collector at start and hourly, endpoint Leases by the
// kubernetes Service reconciler), and the kubernetes Endpoints drop them.
func TestGoneAPIServerLeases(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	ctx := context.Background()
	leases := admin.CoordinationV1().Leases("kube-system")
	hostname, _ := os.Hostname()

	// Its own identity Lease.
	eventually(t, 30*time.Second, func() string {
		list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: "apiserver.kubernetes.io/identity=kube-apiserver"})
		if err != nil || len(list.Items) != 1 {
			return fmt.Sprintf("identity Leases: %v (%v)", list, err)
		}
		l := list.Items[0]
		if !strings.HasPrefix(l.Name, "apiserver-") || !strings.HasPrefix(ptr.Deref(l.Spec.HolderIdentity, ""), l.Name+"_") ||
			ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 3600 || l.Labels["kubernetes.io/hostname"] != hostname {
			return fmt.Sprintf("identity Lease %s: holder %v duration %v labels %v", l.Name, l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Labels)
		}
		return ""
	})

	// A gone API server's identity Lease, expired an hour ago.
	long := time.Now().Add(-2 * time.Hour)
	createLease(t, leases, "apiserver-gone", map[string]string{"apiserver.kubernetes.io/identity": "kube-apiserver"}, "apiserver-gone_x", long, 3600)
	// Another apiserver announces its endpoint for 15 s (the reconciler
	// runs every 10 s), then goes.
	createLease(t, leases, "apiserver-endpoint-e2e-gone", map[string]string{"skiff.dev/apiserver-endpoint": "true"}, "10.9.9.9:6443", time.Now(), 15)
	endpointListed := func() bool {
		ep, err := admin.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ep.Subsets {
			for _, a := range s.Addresses {
				if a.IP == "10.9.9.9" {
					return true
				}
			}
		}
		return false
	}
	eventually(t, 20*time.Second, func() string {
		if !endpointListed() {
			return "the kubernetes Endpoints do not list the live 10.9.9.9"
		}
		return ""
	})
	eventually(t, 40*time.Second, func() string {
		if endpointListed() {
			return "the kubernetes Endpoints still list the gone 10.9.9.9"
		}
		if _, err := leases.Get(ctx, "apiserver-endpoint-e2e-gone", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("the gone apiserver's endpoint Lease is still there (%v)", err)
		}
		return ""
	})

	// The identity collector runs at start: restart the server.
	if err := stopServer(srv); err != nil {
		t.Fatal(err)
	}
	srv2, err := startServer(srv.Dir, srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv2)
	leases = adminClient(t, srv2).CoordinationV1().Leases("kube-system")
	eventually(t, 30*time.Second, func() string {
		if _, err := leases.Get(ctx, "apiserver-gone", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("the gone apiserver's identity Lease is still there (%v)", err)
		}
		return ""
	})
	// Its own Lease stays: it is renewed.
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: "apiserver.kubernetes.io/identity=kube-apiserver"})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("identity Leases after the restart: %v (%v)", list, err)
	}
}

func createLease(t *testing.T, leases interface {
	Create(context.Context, *coordinationv1.Lease, metav1.CreateOptions) (*coordinationv1.Lease, error)
}, name string, labels map[string]string, holder string, renewed time.Time, seconds int32) {
	t.Helper()
	at := metav1.NewMicroTime(renewed)
	_, err := leases.Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), RenewTime: &at, AcquireTime: &at,
			LeaseDurationSeconds: ptr.To(seconds)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}
