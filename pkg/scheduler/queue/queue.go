// Package queue is the scheduler's scheduling queue, after upstream's
// PriorityQueue: activeQ (ordered by the QueueSort plugin) feeds Pop;
// backoffQ holds pods waiting out their exponential backoff; unschedulable
// pods wait for a cluster event that one of their rejecting plugins
// registered (and its QueueingHintFn) to say they may fit now, or for
// podMaxInUnschedulablePodsDuration. PreEnqueue plugins (scheduling gates)
// keep pods out of activeQ. Events that arrive while a pod is being
// scheduled are kept, so a rejection cannot miss the event that would have
// helped it.
package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// DefaultMaxInUnschedulable is upstream's podMaxInUnschedulablePodsDuration.
const DefaultMaxInUnschedulable = 5 * time.Minute

// Profile is what the queue needs of one scheduling profile.
type Profile struct {
	PreEnqueue []framework.PreEnqueuePlugin
	// Hints: for each plugin that can reject a pod, the events that may
	// make it fit; a plugin missing here is woken by every event.
	Hints map[string][]framework.ClusterEventWithHint
}

// Options configure a queue.
type Options struct {
	// Less orders activeQ (the QueueSort plugin); nil: priority, then
	// age.
	Less                       func(a, b *framework.QueuedPodInfo) bool
	InitialBackoff, MaxBackoff time.Duration
	MaxInUnschedulable         time.Duration
	Profiles                   map[string]*Profile
	Clock                      clock.WithTicker
	// OnChange, if set, is told the queue's sizes after every change
	// (the scheduler_pending_pods gauge).
	OnChange func(Counts)
}

// Counts are the pods in each part of the queue.
type Counts struct{ Active, Backoff, Unschedulable, Gated int }

// ErrClosed is Pop's error once the queue is closed.
var ErrClosed = fmt.Errorf("scheduling queue is closed")

type inFlightEvent struct {
	event    framework.ClusterEvent
	old, new any
}

// PriorityQueue is the scheduling queue.
type PriorityQueue struct {
	opts  Options
	clock clock.WithTicker

	mu     sync.Mutex
	cond   *sync.Cond
	closed bool

	active        *podHeap
	backoff       *podHeap
	unschedulable map[types.UID]*framework.QueuedPodInfo
	// inFlight: popped pods being scheduled, each with the position in
	// events at its Pop; events since then are replayed on rejection.
	inFlight   map[types.UID]int
	events     []inFlightEvent
	eventsBase int

	nominator *nominator
}

// New is an empty queue.
func New(opts Options) *PriorityQueue {
	if opts.Less == nil {
		opts.Less = DefaultLess
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff < opts.InitialBackoff {
		opts.MaxBackoff = 10 * opts.InitialBackoff
	}
	if opts.MaxInUnschedulable <= 0 {
		opts.MaxInUnschedulable = DefaultMaxInUnschedulable
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	q := &PriorityQueue{
		opts:          opts,
		clock:         opts.Clock,
		active:        newPodHeap(opts.Less),
		unschedulable: map[types.UID]*framework.QueuedPodInfo{},
		inFlight:      map[types.UID]int{},
		nominator:     newNominator(),
	}
	q.backoff = newPodHeap(func(a, b *framework.QueuedPodInfo) bool {
		return q.backoffExpiry(a).Before(q.backoffExpiry(b))
	})
	q.cond = sync.NewCond(&q.mu)
	return q
}

// DefaultLess is PrioritySort's order: higher priority first, then the
// earlier timestamp.
func DefaultLess(a, b *framework.QueuedPodInfo) bool {
	pa, pb := podPriority(a.Pod), podPriority(b.Pod)
	return pa > pb || (pa == pb && a.Timestamp.Before(b.Timestamp))
}

func podPriority(p *v1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// Run flushes backoffQ every second and unschedulable pods left too long
// every 30 s, as upstream, until ctx ends; then it closes the queue.
func (q *PriorityQueue) Run(ctx context.Context) {
	backoff := q.clock.NewTicker(time.Second)
	leftover := q.clock.NewTicker(30 * time.Second)
	defer backoff.Stop()
	defer leftover.Stop()
	for {
		select {
		case <-ctx.Done():
			q.Close()
			return
		case <-backoff.C():
			q.FlushBackoffCompleted(klog.FromContext(ctx))
		case <-leftover.C():
			q.FlushUnschedulableLeftover(klog.FromContext(ctx))
		}
	}
}

// Close wakes Pop, which then returns ErrClosed.
func (q *PriorityQueue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *PriorityQueue) newQueuedPodInfo(pod *v1.Pod) *framework.QueuedPodInfo {
	return &framework.QueuedPodInfo{PodInfo: framework.NewPodInfo(pod), Timestamp: q.clock.Now(),
		UnschedulablePlugins: sets.New[string](), PendingPlugins: sets.New[string]()}
}

// Add queues a new unscheduled pod.
func (q *PriorityQueue) Add(logger klog.Logger, pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.has(pod.UID) {
		q.updateLocked(logger, pod, pod)
		return
	}
	q.nominator.addFromStatus(pod)
	q.moveToActive(logger, q.newQueuedPodInfo(pod))
	q.changed()
}

func (q *PriorityQueue) has(uid types.UID) bool {
	_, a := q.active.get(uid)
	_, b := q.backoff.get(uid)
	_, u := q.unschedulable[uid]
	return a || b || u
}

// moveToActive runs the PreEnqueue plugins: a pod they hold is kept
// among the unschedulable ones (gated), others go to activeQ.
func (q *PriorityQueue) moveToActive(logger klog.Logger, p *framework.QueuedPodInfo) {
	if plugin, s := q.runPreEnqueue(logger, p.Pod); !s.IsSuccess() {
		p.GatingPlugin = plugin
		p.PendingPlugins = sets.New(plugin)
		q.unschedulable[p.Pod.UID] = p
		logger.V(5).Info("Pod is gated", "pod", klog.KObj(p.Pod), "plugin", plugin, "status", s)
		return
	}
	p.GatingPlugin = ""
	delete(q.unschedulable, p.Pod.UID)
	q.backoff.delete(p.Pod.UID)
	q.active.add(p)
	q.cond.Broadcast()
}

func (q *PriorityQueue) runPreEnqueue(logger klog.Logger, pod *v1.Pod) (string, *framework.Status) {
	prof := q.opts.Profiles[pod.Spec.SchedulerName]
	if prof == nil {
		return "", nil
	}
	ctx := klog.NewContext(context.Background(), logger)
	for _, pl := range prof.PreEnqueue {
		if s := pl.PreEnqueue(ctx, pod); !s.IsSuccess() {
			return pl.Name(), s
		}
	}
	return "", nil
}

// Pop blocks until a pod is in activeQ and returns it, marked in flight
// until Done.
func (q *PriorityQueue) Pop(logger klog.Logger) (*framework.QueuedPodInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, ErrClosed
	}
	p := q.active.pop()
	p.Attempts++
	if p.InitialAttemptTimestamp == nil {
		t := q.clock.Now()
		p.InitialAttemptTimestamp = &t
	}
	p.UnschedulablePlugins = sets.New[string]()
	p.PendingPlugins = sets.New[string]()
	q.inFlight[p.Pod.UID] = q.eventsBase + len(q.events)
	q.changed()
	return p, nil
}

// Done ends a pod's scheduling attempt (after AddUnschedulableIfNotPresent
// when it failed).
func (q *PriorityQueue) Done(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, uid)
	q.trimEvents()
}

// trimEvents drops the events no pod in flight can still need.
func (q *PriorityQueue) trimEvents() {
	if len(q.inFlight) == 0 {
		q.eventsBase += len(q.events)
		q.events = nil
		return
	}
	oldest := q.eventsBase + len(q.events)
	for _, pos := range q.inFlight {
		oldest = min(oldest, pos)
	}
	if drop := oldest - q.eventsBase; drop > 0 {
		q.events = append([]inFlightEvent(nil), q.events[drop:]...)
		q.eventsBase = oldest
	}
}

// AddUnschedulableIfNotPresent puts back a pod whose attempt failed: to
// backoffQ after an error or if an event since its Pop may have helped
// it, otherwise among the unschedulable pods.
func (q *PriorityQueue) AddUnschedulableIfNotPresent(logger klog.Logger, p *framework.QueuedPodInfo) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.has(p.Pod.UID) {
		return fmt.Errorf("pod %s/%s is already in the scheduling queue", p.Pod.Namespace, p.Pod.Name)
	}
	p.Timestamp = q.clock.Now()
	defer q.changed()
	rejected := p.UnschedulablePlugins.Len()+p.PendingPlugins.Len() > 0
	if !rejected {
		q.backoff.add(p)
		return nil
	}
	if pos, ok := q.inFlight[p.Pod.UID]; ok {
		for _, e := range q.events[max(0, pos-q.eventsBase):] {
			if q.hint(logger, p, e.event, e.old, e.new) {
				q.requeue(logger, p)
				return nil
			}
		}
	}
	q.unschedulable[p.Pod.UID] = p
	return nil
}

// requeue moves a pod to backoffQ while it is backing off, else to
// activeQ.
func (q *PriorityQueue) requeue(logger klog.Logger, p *framework.QueuedPodInfo) {
	delete(q.unschedulable, p.Pod.UID)
	if q.clock.Now().Before(q.backoffExpiry(p)) {
		q.backoff.add(p)
		return
	}
	q.moveToActive(logger, p)
}

// backoffDuration doubles from the initial backoff per attempt, up to
// the maximum.
func (q *PriorityQueue) backoffDuration(p *framework.QueuedPodInfo) time.Duration {
	d := q.opts.InitialBackoff
	for i := 1; i < p.Attempts; i++ {
		d *= 2
		if d >= q.opts.MaxBackoff {
			return q.opts.MaxBackoff
		}
	}
	return d
}

func (q *PriorityQueue) backoffExpiry(p *framework.QueuedPodInfo) time.Time {
	return p.Timestamp.Add(q.backoffDuration(p))
}

// hint: may event make p schedulable, by the hints of the plugins that
// rejected (or hold) it?
func (q *PriorityQueue) hint(logger klog.Logger, p *framework.QueuedPodInfo, event framework.ClusterEvent, oldObj, newObj any) bool {
	if event.Label() == framework.EventUnschedulableTimeout.Label() {
		return true
	}
	plugins := p.UnschedulablePlugins.Union(p.PendingPlugins)
	if p.GatingPlugin != "" {
		plugins = sets.New(p.GatingPlugin)
	}
	if plugins.Len() == 0 {
		return true
	}
	prof := q.opts.Profiles[p.Pod.Spec.SchedulerName]
	for plugin := range plugins {
		regs, ok := prof.hints(plugin)
		if !ok {
			return true
		}
		for _, r := range regs {
			if !r.Event.Match(event) {
				continue
			}
			if r.QueueingHintFn == nil {
				return true
			}
			h, err := r.QueueingHintFn(logger, p.Pod, oldObj, newObj)
			if err != nil {
				logger.Error(err, "Queueing hint failed; queueing the pod", "pod", klog.KObj(p.Pod), "plugin", plugin, "event", event.Label())
				return true
			}
			if h == framework.Queue {
				logger.V(5).Info("Event may make the pod schedulable", "pod", klog.KObj(p.Pod), "plugin", plugin, "event", event.Label())
				return true
			}
		}
	}
	return false
}

func (p *Profile) hints(plugin string) ([]framework.ClusterEventWithHint, bool) {
	if p == nil {
		return nil, false
	}
	regs, ok := p.Hints[plugin]
	return regs, ok
}

// MoveAllToActiveOrBackoffQueue is told of a cluster event: each
// unschedulable pod it may help moves on; pods in flight see it when
// they come back.
func (q *PriorityQueue) MoveAllToActiveOrBackoffQueue(logger klog.Logger, event framework.ClusterEvent, oldObj, newObj any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveLocked(logger, event, oldObj, newObj)
}

func (q *PriorityQueue) moveLocked(logger klog.Logger, event framework.ClusterEvent, oldObj, newObj any) {
	if len(q.inFlight) > 0 {
		q.events = append(q.events, inFlightEvent{event: event, old: oldObj, new: newObj})
	}
	moved := 0
	for _, p := range q.unschedulable {
		if !q.hint(logger, p, event, oldObj, newObj) {
			continue
		}
		moved++
		if p.GatingPlugin != "" {
			q.moveToActive(logger, p)
			continue
		}
		q.requeue(logger, p)
	}
	if moved > 0 {
		logger.V(4).Info("Cluster event moved pods", "event", event.Label(), "pods", moved)
		q.changed()
	}
}

// Update replaces a queued pod in place; an unschedulable one moves on if
// the change may help it (a gated one once its gates pass). A pod in
// flight has the update recorded as an event.
func (q *PriorityQueue) Update(logger klog.Logger, oldPod, newPod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.updateLocked(logger, oldPod, newPod)
}

func (q *PriorityQueue) updateLocked(logger klog.Logger, oldPod, newPod *v1.Pod) {
	defer q.changed()
	q.nominator.update(oldPod, newPod)
	uid := newPod.UID
	if p, ok := q.active.get(uid); ok {
		p.PodInfo = framework.NewPodInfo(newPod)
		q.active.add(p)
		return
	}
	if p, ok := q.backoff.get(uid); ok {
		p.PodInfo = framework.NewPodInfo(newPod)
		q.backoff.add(p)
		return
	}
	if p, ok := q.unschedulable[uid]; ok {
		p.PodInfo = framework.NewPodInfo(newPod)
		if p.GatingPlugin != "" {
			q.moveToActive(logger, p)
			return
		}
		for _, e := range framework.PodUpdateEvents(oldPod, newPod) {
			if q.hint(logger, p, e, oldPod, newPod) {
				q.requeue(logger, p)
				return
			}
		}
		return
	}
	if _, ok := q.inFlight[uid]; ok {
		for _, e := range framework.PodUpdateEvents(oldPod, newPod) {
			q.events = append(q.events, inFlightEvent{event: e, old: oldPod, new: newPod})
		}
		return
	}
	q.moveToActive(logger, q.newQueuedPodInfo(newPod))
}

// Delete forgets a pod.
func (q *PriorityQueue) Delete(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nominator.delete(pod)
	q.active.delete(pod.UID)
	q.backoff.delete(pod.UID)
	delete(q.unschedulable, pod.UID)
	q.changed()
}

// FlushBackoffCompleted moves the pods whose backoff ended to activeQ.
func (q *PriorityQueue) FlushBackoffCompleted(logger klog.Logger) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	moved := false
	for p := q.backoff.peek(); p != nil && !now.Before(q.backoffExpiry(p)); p = q.backoff.peek() {
		q.backoff.pop()
		q.moveToActive(logger, p)
		moved = true
	}
	if moved {
		q.changed()
	}
}

// FlushUnschedulableLeftover moves pods unschedulable for longer than
// MaxInUnschedulable on, as the event UnschedulableTimeout.
func (q *PriorityQueue) FlushUnschedulableLeftover(logger klog.Logger) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	moved := false
	for _, p := range q.unschedulable {
		if p.GatingPlugin == "" && now.Sub(p.Timestamp) > q.opts.MaxInUnschedulable {
			q.requeue(logger, p)
			moved = true
		}
	}
	if moved {
		q.changed()
	}
}

// Counts are the pods in each part now.
func (q *PriorityQueue) Counts() Counts {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.countsLocked()
}

func (q *PriorityQueue) countsLocked() Counts {
	c := Counts{Active: q.active.Len(), Backoff: q.backoff.Len()}
	for _, p := range q.unschedulable {
		if p.GatingPlugin != "" {
			c.Gated++
		} else {
			c.Unschedulable++
		}
	}
	return c
}

func (q *PriorityQueue) changed() {
	if q.opts.OnChange != nil {
		q.opts.OnChange(q.countsLocked())
	}
}

// Where tells which part holds a pod: "active", "backoff",
// "unschedulable", "gated" or "" (tests, debugging).
func (q *PriorityQueue) Where(uid types.UID) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.active.get(uid); ok {
		return "active"
	}
	if _, ok := q.backoff.get(uid); ok {
		return "backoff"
	}
	if p, ok := q.unschedulable[uid]; ok {
		if p.GatingPlugin != "" {
			return "gated"
		}
		return "unschedulable"
	}
	return ""
}

// Nominator is the queue's record of nominated pods.
func (q *PriorityQueue) Nominator() Nominator { return q.nominator }
