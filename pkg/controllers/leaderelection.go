package controllers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/klog/v2"
)

// LeaseName is the Lease (in kube-system) that the controllers' leader
// holds: upstream kube-controller-manager's.
const LeaseName = "kube-controller-manager"

// DefaultLeaderElection is upstream kube-controller-manager's: on, with a
// Lease kube-system/kube-controller-manager held for 15s, renewed within
// 10s, retried every 2s.
func DefaultLeaderElection() componentbaseconfig.LeaderElectionConfiguration {
	return componentbaseconfig.LeaderElectionConfiguration{
		LeaderElect:       true,
		LeaseDuration:     metav1.Duration{Duration: 15 * time.Second},
		RenewDeadline:     metav1.Duration{Duration: 10 * time.Second},
		RetryPeriod:       metav1.Duration{Duration: 2 * time.Second},
		ResourceLock:      resourcelock.LeasesResourceLock,
		ResourceName:      LeaseName,
		ResourceNamespace: metav1.NamespaceSystem,
	}
}

// ValidateLeaderElection reports invalid leader election settings.
func ValidateLeaderElection(le componentbaseconfig.LeaderElectionConfiguration) []error {
	if !le.LeaderElect {
		return nil
	}
	var errs []error
	if le.ResourceLock != resourcelock.LeasesResourceLock {
		errs = append(errs, fmt.Errorf("--leader-elect-resource-lock %q: only %q is supported", le.ResourceLock, resourcelock.LeasesResourceLock))
	}
	if le.ResourceName == "" || le.ResourceNamespace == "" {
		errs = append(errs, fmt.Errorf("--leader-elect-resource-name and --leader-elect-resource-namespace must not be empty"))
	}
	if le.LeaseDuration.Duration <= le.RenewDeadline.Duration {
		errs = append(errs, fmt.Errorf("--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline"))
	}
	if le.RetryPeriod.Duration <= 0 || le.RenewDeadline.Duration <= le.RetryPeriod.Duration {
		errs = append(errs, fmt.Errorf("--leader-elect-renew-deadline must be greater than --leader-elect-retry-period, which must be positive"))
	}
	return errs
}

// ErrLeaderElectionLost: the Lease was not renewed in time; the
// controllers have stopped.
var ErrLeaderElectionLost = errors.New("leader election lost")

// LeaderIdentity is upstream's holder identity: the host name, "_", a
// fresh UUID.
func LeaderIdentity() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return host + "_" + string(uuid.NewUUID()), nil
}

// RunElected runs the controllers (Run) while this process holds the Lease
// of le, campaigning for it first. It returns nil once ctx ends (releasing
// the Lease), ErrLeaderElectionLost when the Lease could not be renewed in
// time, and Run's error if the controllers failed. watchDog, if not nil,
// reports on a /healthz whether the Lease is renewed in time.
func RunElected(ctx context.Context, cfg *rest.Config, opts Options, le componentbaseconfig.LeaderElectionConfiguration, identity string, watchDog *leaderelection.HealthzAdaptor) error {
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election"))
	if err != nil {
		return err
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.ResourceNamespace, Name: le.ResourceName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	electionCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu     sync.Mutex
		done   chan struct{}
		runErr error
	)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            le.ResourceName,
		WatchDog:        watchDog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				mu.Lock()
				d := make(chan struct{})
				done = d
				mu.Unlock()
				defer close(d)
				klog.InfoS("Started leading: running the controllers", "lease", le.ResourceNamespace+"/"+le.ResourceName, "identity", identity)
				err := Run(leading, cfg, opts)
				mu.Lock()
				runErr = err
				mu.Unlock()
				// The controllers stopped: give the Lease up.
				cancel()
			},
			OnStoppedLeading: func() {
				klog.InfoS("Stopped leading", "lease", le.ResourceNamespace+"/"+le.ResourceName, "identity", identity)
			},
			OnNewLeader: func(holder string) {
				if holder != identity {
					klog.InfoS("New leader elected", "lease", le.ResourceNamespace+"/"+le.ResourceName, "holder", holder)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	elector.Run(electionCtx)
	mu.Lock()
	d := done
	mu.Unlock()
	if d != nil {
		<-d // the controllers have stopped
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case runErr != nil && ctx.Err() == nil:
		return runErr
	case ctx.Err() != nil:
		return nil
	default:
		return ErrLeaderElectionLost
	}
}
