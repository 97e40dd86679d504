// Package scheduler is skiff's kube-scheduler, after upstream's
// pkg/scheduler: informers feed a cache of nodes and assigned pods and a
// scheduling queue of the unassigned pods of its profiles; scheduleOne
// takes one pod at a time through a profile's plugins (pkg/scheduler/
// runtime) against a snapshot of the cache, assumes it onto the chosen
// node and binds it in the background while the next pod is scheduled.
package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	schedcache "github.com/skiff-dev/skiff/pkg/scheduler/cache"
	"github.com/skiff-dev/skiff/pkg/scheduler/config"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/metrics"
	"github.com/skiff-dev/skiff/pkg/scheduler/queue"
	"github.com/skiff-dev/skiff/pkg/scheduler/runtime"
)

// Scheduler schedules the pods of its profiles.
type Scheduler struct {
	client    kubernetes.Interface
	informers informers.SharedInformerFactory
	cache     *schedcache.Cache
	queue     *queue.PriorityQueue
	profiles  map[string]*runtime.Framework
	events    events.EventBroadcaster

	// snapshot is read by the plugins through Handle; only the
	// scheduling loop replaces its contents.
	snapshot *schedcache.Snapshot
	// nextStartNodeIndex: where the next Filter pass starts, so every
	// node gets its turn when percentageOfNodesToScore cuts it short.
	nextStartNodeIndex int
	rand               *rand.Rand

	// bindings are the binding cycles still running (Run waits for them).
	bindings sync.WaitGroup
}

// New builds a scheduler for cfg (defaulted and validated) with the
// plugins of registry. Nothing runs until Run.
func New(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, registry framework.Registry, cfg *configv1.KubeSchedulerConfiguration) (*Scheduler, error) {
	metrics.Register()
	s := &Scheduler{
		client:    client,
		informers: factory,
		cache:     schedcache.New(0, nil),
		profiles:  map[string]*runtime.Framework{},
		events:    events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()}),
		snapshot:  schedcache.NewEmptySnapshot(),
		rand:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)),
	}
	nominator := &lateNominator{}
	queueProfiles := map[string]*queue.Profile{}
	var less func(a, b *framework.QueuedPodInfo) bool
	for i := range cfg.Profiles {
		p := &cfg.Profiles[i]
		name := *p.SchedulerName
		fw, err := runtime.New(ctx, registry, p, runtime.Options{
			ClientSet:       client,
			InformerFactory: factory,
			// reportingController is the profile's schedulerName, as
			// upstream's (default-scheduler).
			EventRecorder:            s.events.NewRecorder(scheme.Scheme, name),
			Snapshot:                 func() framework.SharedLister { return s.snapshot },
			Nominator:                nominator,
			Parallelism:              int(*cfg.Parallelism),
			PercentageOfNodesToScore: *cfg.PercentageOfNodesToScore,
		})
		if err != nil {
			return nil, err
		}
		hints, err := fw.EventsToRegister(ctx)
		if err != nil {
			return nil, err
		}
		s.profiles[name] = fw
		queueProfiles[name] = &queue.Profile{PreEnqueue: fw.PreEnqueuePlugins(), Hints: hints}
		if less == nil {
			less = fw.QueueSortLess()
		}
	}
	initial, maxBackoff := config.BackoffDurations(cfg)
	s.queue = queue.New(queue.Options{
		Less: less, InitialBackoff: initial, MaxBackoff: maxBackoff, Profiles: queueProfiles,
		OnChange: func(c queue.Counts) { metrics.PendingPods(c.Active, c.Backoff, c.Unschedulable, c.Gated) },
	})
	nominator.q = s.queue
	metrics.PendingPods(0, 0, 0, 0)
	if err := s.addEventHandlers(queueProfiles); err != nil {
		return nil, err
	}
	return s, nil
}

// lateNominator lets the frameworks, built before the queue, reach its
// nominator.
type lateNominator struct{ q *queue.PriorityQueue }

func (n *lateNominator) NominatedPodsForNode(node string) []*framework.PodInfo {
	if n.q == nil {
		return nil
	}
	return n.q.Nominator().NominatedPodsForNode(node)
}

// Profiles are the scheduler's profiles by schedulerName.
func (s *Scheduler) Profiles() map[string]*runtime.Framework { return s.profiles }

// Queue is the scheduling queue (tests).
func (s *Scheduler) Queue() *queue.PriorityQueue { return s.queue }

// Run starts the informers, waits for them and schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	s.events.StartRecordingToSink(ctx.Done())
	defer s.events.Shutdown()
	s.informers.Start(ctx.Done())
	for typ, ok := range s.informers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	logger.Info("Scheduler started", "profiles", sets.List(sets.KeySet(s.profiles)))
	go s.queue.Run(ctx)
	go s.cache.Run(ctx)
	for ctx.Err() == nil {
		s.scheduleOne(ctx)
	}
	s.queue.Close()
	s.bindings.Wait()
	logger.Info("Scheduler stopped")
	return nil
}

func (s *Scheduler) responsibleFor(pod *v1.Pod) bool {
	_, ok := s.profiles[pod.Spec.SchedulerName]
	return ok
}

func assigned(pod *v1.Pod) bool { return pod.Spec.NodeName != "" }

func terminal(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
}

func asPod(obj any) (*v1.Pod, bool) {
	switch t := obj.(type) {
	case *v1.Pod:
		return t, true
	case cache.DeletedFinalStateUnknown:
		p, ok := t.Obj.(*v1.Pod)
		return p, ok
	}
	return nil, false
}

func asNode(obj any) (*v1.Node, bool) {
	switch t := obj.(type) {
	case *v1.Node:
		return t, true
	case cache.DeletedFinalStateUnknown:
		n, ok := t.Obj.(*v1.Node)
		return n, ok
	}
	return nil, false
}

// addEventHandlers: assigned, non-terminal pods into the cache; our
// profiles' unassigned ones into the queue; nodes into the cache; every
// change that may help a pod as a cluster event to the queue; and the
// other resources plugins registered events for.
func (s *Scheduler) addEventHandlers(profiles map[string]*queue.Profile) error {
	logger := klog.Background()
	pods := s.informers.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			p, ok := asPod(obj)
			return ok && assigned(p) && !terminal(p)
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				p, _ := asPod(obj)
				s.cache.AddPod(logger, p)
				s.queue.Nominator().DeleteNominatedPodIfExists(p)
				s.queue.MoveAllToActiveOrBackoffQueue(logger, framework.EventAssignedPodAdd, nil, p)
			},
			UpdateFunc: func(oldObj, newObj any) {
				o, _ := asPod(oldObj)
				n, _ := asPod(newObj)
				s.cache.UpdatePod(logger, o, n)
				for _, e := range framework.PodUpdateEvents(o, n) {
					s.queue.MoveAllToActiveOrBackoffQueue(logger, e, o, n)
				}
			},
			DeleteFunc: func(obj any) {
				p, ok := asPod(obj)
				if !ok {
					return
				}
				s.cache.RemovePod(logger, p)
				s.queue.MoveAllToActiveOrBackoffQueue(logger, framework.EventAssignedPodDelete, p, nil)
			},
		},
	}); err != nil {
		return err
	}
	if _, err := pods.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			p, ok := asPod(obj)
			return ok && !assigned(p) && !terminal(p) && s.responsibleFor(p)
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				p, _ := asPod(obj)
				s.queue.Add(logger, p)
			},
			UpdateFunc: func(oldObj, newObj any) {
				o, _ := asPod(oldObj)
				n, _ := asPod(newObj)
				// An assumed pod's update is the scheduler's own
				// bind on its way; scheduling it again would double it.
				if o.ResourceVersion == n.ResourceVersion || s.cache.IsAssumedPod(n) {
					return
				}
				s.queue.Update(logger, o, n)
			},
			DeleteFunc: func(obj any) {
				p, ok := asPod(obj)
				if !ok {
					return
				}
				s.queue.Delete(p)
				if fw := s.profiles[p.Spec.SchedulerName]; fw != nil {
					if wp := fw.GetWaitingPod(p.UID); wp != nil {
						wp.Reject("", "removed")
					}
				}
			},
		},
	}); err != nil {
		return err
	}
	if _, err := s.informers.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			n, _ := asNode(obj)
			s.cache.AddNode(logger, n)
			s.queue.MoveAllToActiveOrBackoffQueue(logger, framework.EventNodeAdd, nil, n)
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, _ := asNode(oldObj)
			n, _ := asNode(newObj)
			s.cache.UpdateNode(logger, o, n)
			for _, e := range framework.NodeUpdateEvents(o, n) {
				s.queue.MoveAllToActiveOrBackoffQueue(logger, e, o, n)
			}
		},
		DeleteFunc: func(obj any) {
			if n, ok := asNode(obj); ok {
				s.cache.RemoveNode(logger, n)
			}
		},
	}); err != nil {
		return err
	}
	return s.addOtherHandlers(logger, profiles)
}

// addOtherHandlers watches the storage resources only if a plugin
// registered events for them (or for everything).
func (s *Scheduler) addOtherHandlers(logger klog.Logger, profiles map[string]*queue.Profile) error {
	wanted := sets.New[framework.EventResource]()
	for _, p := range profiles {
		for _, regs := range p.Hints {
			for _, r := range regs {
				wanted.Insert(r.Event.Resource)
			}
		}
	}
	others := map[framework.EventResource]func() cache.SharedIndexInformer{
		framework.PersistentVolume:      func() cache.SharedIndexInformer { return s.informers.Core().V1().PersistentVolumes().Informer() },
		framework.PersistentVolumeClaim: func() cache.SharedIndexInformer { return s.informers.Core().V1().PersistentVolumeClaims().Informer() },
		framework.StorageClass:          func() cache.SharedIndexInformer { return s.informers.Storage().V1().StorageClasses().Informer() },
		framework.CSINode:               func() cache.SharedIndexInformer { return s.informers.Storage().V1().CSINodes().Informer() },
	}
	for res, informer := range others {
		if !wanted.Has(res) && !wanted.Has(framework.WildCard) {
			continue
		}
		move := func(a framework.ActionType, o, n any) {
			s.queue.MoveAllToActiveOrBackoffQueue(logger, framework.ClusterEvent{Resource: res, ActionType: a}, o, n)
		}
		if _, err := informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { move(framework.Add, nil, obj) },
			UpdateFunc: func(o, n any) { move(framework.Update, o, n) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				move(framework.Delete, obj, nil)
			},
		}); err != nil {
			return err
		}
	}
	return nil
}
