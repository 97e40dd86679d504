// Package component is how `skiff server` composes the parts it runs in one
// process: the API server first and, once it serves, every other component
// (the controller manager; the scheduler, the node agent and DNS to come)
// with the API server's loopback client config. Adding a part to `skiff
// server` is adding a Component to its list.
package component

import (
	"context"
	"sync"
	"time"

	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// APIServer serves the API until ctx ends; it calls ready once it serves,
// with its privileged loopback client config.
type APIServer interface {
	Run(ctx context.Context, ready func(loopback *restclient.Config)) error
}

// APIServerFunc is a function as an APIServer.
type APIServerFunc func(ctx context.Context, ready func(loopback *restclient.Config)) error

// Run calls f.
func (f APIServerFunc) Run(ctx context.Context, ready func(*restclient.Config)) error {
	return f(ctx, ready)
}

// Component is a part that runs against the API server until ctx ends.
type Component interface {
	// Name names it in logs.
	Name() string
	// Run runs it; loopback is the API server's loopback client config.
	Run(ctx context.Context, loopback *restclient.Config) error
}

// Run runs api until it returns (ctx ended or it failed) and returns its
// error. Once api serves, each component starts in a goroutine of its own,
// then ready (if not nil) is called. A component that ends with an error is
// logged and the API server goes on serving: components that must not stop
// retry on their own, as the controller manager campaigns again for its
// Lease.
//
// Once api returned at the end of ctx, Run waits up to ShutdownTimeout for
// the components that are WaitedAtExit to return: what they stop on the way
// out (the local node's containerd) is stopped before the process exits.
// A failed api returns at once.
func Run(ctx context.Context, api APIServer, ready func(), components ...Component) error {
	var running sync.WaitGroup
	err := api.Run(ctx, func(loopback *restclient.Config) {
		for _, c := range components {
			_, wait := c.(WaitedAtExit)
			if wait {
				running.Add(1)
			}
			go func() {
				if wait {
					defer running.Done()
				}
				klog.InfoS("Starting component", "component", c.Name())
				if err := c.Run(ctx, restclient.CopyConfig(loopback)); err != nil && ctx.Err() == nil {
					klog.ErrorS(err, "Component stopped", "component", c.Name())
				}
			}()
		}
		if ready != nil {
			ready()
		}
	})
	if err != nil && ctx.Err() == nil {
		// The API server failed (its etcd went): exit at once, as a crash
		// would; what the components leave (the node's containerd) is
		// reused at the next start.
		return err
	}
	done := make(chan struct{})
	go func() {
		running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(ShutdownTimeout):
		klog.InfoS("Components still stopping; exiting anyway", "after", ShutdownTimeout)
	}
	return err
}

// WaitedAtExit is a Component that stops something of its own on the way
// out, which Run waits for at a graceful exit.
type WaitedAtExit interface {
	Component
	WaitedAtExit()
}

// ShutdownTimeout bounds the wait for the components at exit.
var ShutdownTimeout = 20 * time.Second
