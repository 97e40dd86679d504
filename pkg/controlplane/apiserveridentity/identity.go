// Package apiserveridentity gives each API server upstream's identity Lease
// in kube-system (named by the server's APIServerID, labeled
// apiserver.kubernetes.io/identity=kube-apiserver, renewed every 10s, held
// for an hour) and collects the identity Leases of API servers that are
// gone, as kube-apiserver's identity lease controller and garbage collector
// do.
package apiserveridentity

import (
	"context"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// LabelKey marks identity Leases with the component owning them.
	LabelKey = "apiserver.kubernetes.io/identity"
	// component is the identity of every skiff API server, as upstream's.
	component = "kube-apiserver"

	leaseDurationSeconds = 3600
	renewInterval        = 10 * time.Second
	gcPeriod             = time.Hour
)

// Install adds upstream's two post-start hooks to server.
func Install(server *genericapiserver.GenericAPIServer) {
	server.AddPostStartHookOrDie("start-kube-apiserver-identity-lease-controller", func(ctx genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(ctx.LoopbackClientConfig)
		if err != nil {
			return err
		}
		holder := server.APIServerID + "_" + string(uuid.NewUUID())
		go lease.NewController(clock.RealClock{}, client, holder, leaseDurationSeconds, nil, renewInterval,
			server.APIServerID, metav1.NamespaceSystem, labelLease).Run(ctx)
		return nil
	})
	server.AddPostStartHookOrDie("start-kube-apiserver-identity-lease-garbage-collector", func(ctx genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(ctx.LoopbackClientConfig)
		if err != nil {
			return err
		}
		// Right away at start, then every gcPeriod.
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			if err := Collect(ctx, client, time.Now()); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "Collecting the identity Leases of gone API servers")
			}
		}, gcPeriod)
		return nil
	})
}

// labelLease labels the Lease as kube-apiserver's, and with the host name.
func labelLease(l *coordinationv1.Lease) error {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[LabelKey] = component
	hostname, err := os.Hostname()
	if err != nil {
		return err
	}
	l.Labels[corev1.LabelHostname] = hostname
	return nil
}

// Collect deletes the identity Leases that expired before now: their API
// servers are gone. A Lease renewed meanwhile is kept (the delete is
// conditional on the version read).
func Collect(ctx context.Context, client kubernetes.Interface, now time.Time) error {
	leases := client.CoordinationV1().Leases(metav1.NamespaceSystem)
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: LabelKey + "=" + component})
	if err != nil {
		return err
	}
	for _, l := range list.Items {
		if !Expired(&l, now) {
			continue
		}
		err := leases.Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion}})
		switch {
		case err == nil:
			klog.InfoS("Deleted the identity Lease of a gone API server", "lease", l.Name, "holder", deref(l.Spec.HolderIdentity))
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		default:
			return err
		}
	}
	return nil
}

// Expired: the Lease was not renewed within its duration before now. A
// Lease missing renew time or duration counts as expired.
func Expired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second).Before(now)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
