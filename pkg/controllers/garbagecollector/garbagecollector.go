// Package garbagecollector is upstream's garbage collector: it deletes
// objects whose owners (metadata.ownerReferences) are all gone, and
// carries out the foreground (foregroundDeletion finalizer: blocking
// dependents first) and orphan (orphan finalizer: dependents lose their
// references) deletions the API server starts.
//
// A metadata-only informer watches every resource discovery serves with
// list, watch and delete (custom resources included; discovery is read
// again every 30 s and soon after a CustomResourceDefinition or an
// APIService changes). One goroutine builds the dependency graph (uid →
// node with owners and dependents) from their events and queues nodes for
// two controller-runtime controllers: garbage_collector_attempt_to_delete
// and garbage_collector_attempt_to_orphan (upstream's queue names), each
// with --concurrent-gc-syncs workers, which check owners with a live GET
// (uid compared) before deleting with a uid precondition.
package garbagecollector

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// SyncPeriod is how often discovery is read again (upstream's 30 s),
// also the longest wait for the monitors' first lists.
const SyncPeriod = 30 * time.Second

// DefaultIgnoredResources are never watched or collected: events.
func DefaultIgnoredResources() map[schema.GroupResource]bool {
	return map[schema.GroupResource]bool{
		{Group: "", Resource: "events"}:                 true,
		{Group: eventsv1.GroupName, Resource: "events"}: true,
	}
}

// Discovery is what the collector reads the served resources with.
type Discovery interface {
	ServerPreferredResources() ([]*metav1.APIResourceList, error)
}

// Config builds a GarbageCollector.
type Config struct {
	// Metadata reads, patches and deletes objects' metadata and feeds the
	// informers.
	Metadata metadata.Interface
	// Mapper maps kinds to resources; Reset when discovery changes.
	Mapper meta.ResettableRESTMapper
	// Discovery lists the served resources (not Mapper's client: its
	// cache must not be reset by the sync).
	Discovery Discovery
	// Recorder gets the OwnerRefInvalidNamespace events.
	Recorder record.EventRecorder
	// Ignored resources; nil: DefaultIgnoredResources.
	Ignored map[schema.GroupResource]bool
	// SyncPeriod; 0: SyncPeriod.
	SyncPeriod time.Duration
}

// GarbageCollector is the graph builder and the two workers' state.
type GarbageCollector struct {
	metadata        metadata.Interface
	mapper          meta.ResettableRESTMapper
	discovery       Discovery
	builder         *graphBuilder
	graph           *graph
	absent          *referenceCache
	attemptToDelete workqueue.TypedRateLimitingInterface[types.UID]
	attemptToOrphan workqueue.TypedRateLimitingInterface[types.UID]
	period          time.Duration
	// resync asks for an early discovery sync.
	resync chan struct{}

	mu       sync.Mutex
	watching map[schema.GroupVersionResource]struct{}
}

// New builds a garbage collector; it runs with Start (a manager Runnable)
// and the workers of SetupWithManager.
func New(c Config) *GarbageCollector {
	if c.Ignored == nil {
		c.Ignored = DefaultIgnoredResources()
	}
	if c.SyncPeriod == 0 {
		c.SyncPeriod = SyncPeriod
	}
	queue := func(name string) workqueue.TypedRateLimitingInterface[types.UID] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: name})
	}
	gc := &GarbageCollector{
		metadata: c.Metadata, mapper: c.Mapper, discovery: c.Discovery, graph: newGraph(), absent: newReferenceCache(500),
		attemptToDelete: queue(deleteQueue), attemptToOrphan: queue(orphanQueue),
		period: c.SyncPeriod, resync: make(chan struct{}, 1),
	}
	gc.builder = &graphBuilder{
		mapper: c.Mapper, metadata: c.Metadata, recorder: c.Recorder, ignored: c.Ignored,
		resourcesChanged: gc.requestResync,
		changes:          workqueue.NewTypedWithConfig[*event](workqueue.TypedQueueConfig[*event]{Name: "garbage_collector_graph_changes"}),
		graph:            gc.graph, attemptToDelete: gc.attemptToDelete, attemptToOrphan: gc.attemptToOrphan, absent: gc.absent,
	}
	return gc
}

// Upstream's queue names, also the controllers'.
const (
	deleteQueue = "garbage_collector_attempt_to_delete"
	orphanQueue = "garbage_collector_attempt_to_orphan"
)

func (gc *GarbageCollector) requestResync() {
	select {
	case gc.resync <- struct{}{}:
	default:
	}
}

// Start runs the graph builder and the discovery sync until ctx ends.
func (gc *GarbageCollector) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting controller", "controller", "garbagecollector")
	defer logger.Info("Shutting down controller", "controller", "garbagecollector")
	var wg sync.WaitGroup
	wg.Go(func() { gc.builder.Run(ctx) })
	wg.Go(func() { gc.syncDiscovery(ctx) })
	wg.Wait()
	return nil
}

// GraphHasUID says whether uid is a node of the graph (tests).
func (gc *GarbageCollector) GraphHasUID(uid types.UID) bool {
	_, ok := gc.graph.read(uid)
	return ok
}

// syncDiscovery reads discovery every period, and every second for 10 s
// after a CustomResourceDefinition or APIService changed, and makes the
// monitors those of what it serves.
func (gc *GarbageCollector) syncDiscovery(ctx context.Context) {
	const burst, burstInterval = 10 * time.Second, time.Second
	var burstUntil time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gc.resync:
			burstUntil = time.Now().Add(burst)
			// Let the CRD become Established and served first.
			timer.Reset(burstInterval)
			continue
		case <-timer.C:
		}
		gc.syncOnce(ctx)
		next := gc.period
		if time.Now().Before(burstUntil) {
			next = burstInterval
		}
		timer.Reset(next)
	}
}

// syncOnce compares what discovery serves with what is watched, and if it
// changed resets the mapper and the monitors, waiting (at most a period)
// for the new ones' lists.
func (gc *GarbageCollector) syncOnce(ctx context.Context) {
	logger := klog.FromContext(ctx)
	resources, err := DeletableResources(logger, gc.discovery)
	if len(resources) == 0 {
		logger.V(2).Info("No resources reported by discovery, skipping garbage collector sync")
		resourcesSyncError.Inc()
		return
	}
	gc.mu.Lock()
	old := gc.watching
	gc.mu.Unlock()
	if failed, ok := discovery.GroupDiscoveryFailedErrorGroups(err); ok {
		// Keep watching the synced resources of groups that failed.
		for r := range old {
			if _, f := failed[r.GroupVersion()]; f && gc.builder.isResourceSynced(r) {
				resources[r] = struct{}{}
			}
		}
	}
	if maps.Equal(old, resources) {
		logger.V(5).Info("No resource updates from discovery, skipping garbage collector sync")
		return
	}
	logger.V(2).Info("Syncing garbage collector with updated resources from discovery", "diff", printDiff(old, resources))
	gc.mapper.Reset()
	if err := gc.builder.syncMonitors(logger, resources); err != nil {
		logger.Error(err, "Failed to sync resource monitors")
		resourcesSyncError.Inc()
		return
	}
	gc.builder.startMonitors(logger)
	gc.mu.Lock()
	gc.watching = resources
	gc.mu.Unlock()
	if gc.waitSynced(ctx, gc.period) {
		logger.V(2).Info("Synced garbage collector")
	} else if ctx.Err() == nil {
		logger.Error(nil, "Timed out waiting for dependency graph builder sync during GC sync")
		resourcesSyncError.Inc()
	}
}

func (gc *GarbageCollector) waitSynced(ctx context.Context, timeout time.Duration) bool {
	logger := klog.FromContext(ctx)
	deadline := time.Now().Add(timeout)
	for !gc.builder.isSynced(logger) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true
}

func printDiff(old, cur map[schema.GroupVersionResource]struct{}) string {
	var added, removed []string
	for r := range cur {
		if _, ok := old[r]; !ok {
			added = append(added, r.String())
		}
	}
	for r := range old {
		if _, ok := cur[r]; !ok {
			removed = append(removed, r.String())
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return fmt.Sprintf("added: %v, removed: %v", added, removed)
}

// DeletableResources are the preferred versions of the resources that
// support delete, list and watch. On a partial discovery failure it
// returns what was found with the error.
func DeletableResources(logger klog.Logger, d Discovery) (map[schema.GroupVersionResource]struct{}, error) {
	lists, err := d.ServerPreferredResources()
	if err != nil {
		if failed, ok := discovery.GroupDiscoveryFailedErrorGroups(err); ok {
			logger.Info("Failed to discover some groups", "groups", fmt.Sprintf("%q", failed))
		} else {
			logger.Info("Failed to discover preferred resources", "error", err)
		}
	}
	ret := map[schema.GroupVersionResource]struct{}{}
	for _, rl := range discovery.FilteredBy(discovery.SupportsAllVerbs{Verbs: []string{"delete", "list", "watch"}}, lists) {
		gv, perr := schema.ParseGroupVersion(rl.GroupVersion)
		if perr != nil {
			logger.Info("Ignoring invalid discovered resource", "groupversion", rl.GroupVersion, "error", perr)
			continue
		}
		for _, r := range rl.APIResources {
			ret[gv.WithResource(r.Name)] = struct{}{}
		}
	}
	return ret, err
}

// syncSource holds a worker back until the monitors have listed (at most
// a sync period, then it goes ahead anyway, as upstream).
type syncSource struct{ gc *GarbageCollector }

func (syncSource) Start(context.Context, workqueue.TypedRateLimitingInterface[types.UID]) error {
	return nil
}

func (s syncSource) WaitForSync(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if s.gc.waitSynced(ctx, s.gc.period) {
		logger.Info("Garbage collector: all resource monitors have synced")
	} else {
		logger.Info("Garbage collector: not all resource monitors could be synced, proceeding anyways")
	}
	return nil
}

func (syncSource) String() string { return "garbage collector monitors" }

// SetupWithManager adds the collector (graph builder, discovery sync) and
// its two controllers of workers each to mgr.
func (gc *GarbageCollector) SetupWithManager(mgr manager.Manager, workers int) error {
	registerMetrics()
	if err := mgr.Add(gc); err != nil {
		return err
	}
	for _, q := range []struct {
		name  string
		queue workqueue.TypedRateLimitingInterface[types.UID]
		do    func(context.Context, types.UID) (reconcile.Result, error)
	}{{deleteQueue, gc.attemptToDelete, gc.reconcileDelete}, {orphanQueue, gc.attemptToOrphan, gc.reconcileOrphan}} {
		log := mgr.GetLogger().WithValues("controller", q.name)
		c, err := controller.NewTyped(q.name, mgr, controller.TypedOptions[types.UID]{
			Reconciler:              reconcile.TypedFunc[types.UID](q.do),
			MaxConcurrentReconciles: workers,
			CacheSyncTimeout:        2 * gc.period,
			NewQueue: func(string, workqueue.TypedRateLimiter[types.UID]) workqueue.TypedRateLimitingInterface[types.UID] {
				return q.queue
			},
			LogConstructor: func(uid *types.UID) logr.Logger {
				if uid == nil {
					return log
				}
				return log.WithValues("uid", *uid)
			},
		})
		if err != nil {
			return err
		}
		if err := c.Watch(syncSource{gc}); err != nil {
			return err
		}
	}
	return nil
}

// NewRecorder is the events' recorder (source garbage-collector-controller)
// and the broadcaster to start and shut down with the collector.
func NewRecorder() (record.EventRecorder, record.EventBroadcaster) {
	b := record.NewBroadcaster()
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "garbage-collector-controller"}), b
}
