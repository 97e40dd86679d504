package controllers

import (
	"context"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/garbagecollector"
)

func init() {
	register(Descriptor{Name: "garbage-collector-controller", Identity: "generic-garbage-collector",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-gc-syncs", Default: 20,
			Usage: "The number of garbage collector workers that are allowed to sync concurrently."},
		Setup: setupGarbageCollector})
}

func setupGarbageCollector(mgr manager.Manager, c *Clients, opts Options) error {
	// As upstream: each deletion takes two requests, so the metadata
	// client gets twice the QPS.
	cfg := rest.CopyConfig(c.Config)
	if cfg.QPS > 0 {
		cfg.QPS *= 2
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// The mapper's discovery client is its own: the sync's must not reset
	// the mapper's cache.
	mapperDisco, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return err
	}
	syncDisco, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return err
	}
	recorder, broadcaster := garbagecollector.NewRecorder()
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		broadcaster.StartStructuredLogging(3)
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.Core.CoreV1().Events("")})
		<-ctx.Done()
		broadcaster.Shutdown()
		return nil
	})); err != nil {
		return err
	}
	gc := garbagecollector.New(garbagecollector.Config{
		Metadata:  meta,
		Mapper:    restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(mapperDisco)),
		Discovery: syncDisco,
		Recorder:  recorder,
	})
	return gc.SetupWithManager(mgr, opts.Workers("garbage-collector-controller", 20))
}
