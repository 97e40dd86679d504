package scheduler

import (
	"context"
	"errors"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	componentbaseconfigv1alpha1 "k8s.io/component-base/config/v1alpha1"
	"k8s.io/klog/v2"
)

// ErrLeaderElectionLost: the Lease was not renewed in time; scheduling
// has stopped.
var ErrLeaderElectionLost = errors.New("leader election lost")

// RunElected runs run while this process holds the Lease of le
// (kube-system/kube-scheduler by default), campaigning first. It returns
// nil once ctx ends (releasing the Lease), ErrLeaderElectionLost when the
// Lease was lost, or run's error. watchDog, if not nil, lets /healthz
// tell whether the Lease is renewed in time.
func RunElected(ctx context.Context, client kubernetes.Interface, le componentbaseconfigv1alpha1.LeaderElectionConfiguration, identity string, watchDog *leaderelection.HealthzAdaptor, run func(context.Context) error) error {
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
	lease := le.ResourceNamespace + "/" + le.ResourceName
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
				klog.InfoS("Started leading: scheduling", "lease", lease, "identity", identity)
				err := run(leading)
				mu.Lock()
				runErr = err
				mu.Unlock()
				cancel()
			},
			OnStoppedLeading: func() {
				klog.InfoS("Stopped leading", "lease", lease, "identity", identity)
			},
			OnNewLeader: func(holder string) {
				if holder != identity {
					klog.InfoS("New leader elected", "lease", lease, "holder", holder)
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
		<-d
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
