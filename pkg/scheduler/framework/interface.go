package framework

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
)

// Plugin is any plugin; its name is the one configuration uses.
type Plugin interface {
	Name() string
}

// PluginFactory builds a plugin from its arguments (the plugin's
// k8s.io/kube-scheduler/config/v1 *Args, defaulted; nil when it has none)
// and the scheduler's Handle.
type PluginFactory func(ctx context.Context, args runtime.Object, h Handle) (Plugin, error)

// Registry maps plugin names to factories.
type Registry map[string]PluginFactory

// QueuedPodInfo is a pod in the scheduling queue.
type QueuedPodInfo struct {
	*PodInfo
	// Timestamp: when the pod was added to the queue (or last moved back).
	Timestamp time.Time
	// Attempts: scheduling attempts so far.
	Attempts int
	// InitialAttemptTimestamp: the first attempt; nil before it.
	InitialAttemptTimestamp *time.Time
	// UnschedulablePlugins: the plugins that rejected the pod in its last
	// attempt; only events registered by these move it back to activeQ.
	UnschedulablePlugins sets.Set[string]
	// PendingPlugins: PreEnqueue plugins (or Pending statuses) holding it.
	PendingPlugins sets.Set[string]
	// GatingPlugin: the PreEnqueue plugin keeping it out of activeQ.
	GatingPlugin string
}

// PreEnqueuePlugin decides whether a pod may enter activeQ at all (e.g.
// SchedulingGates).
type PreEnqueuePlugin interface {
	Plugin
	PreEnqueue(ctx context.Context, pod *v1.Pod) *Status
}

// QueueSortPlugin orders activeQ.
type QueueSortPlugin interface {
	Plugin
	Less(a, b *QueuedPodInfo) bool
}

// EnqueueExtensions: the cluster events that can make a pod this plugin
// rejected schedulable. A plugin that rejects pods but is not an
// EnqueueExtensions is woken by every event.
type EnqueueExtensions interface {
	Plugin
	EventsToRegister(ctx context.Context) ([]ClusterEventWithHint, error)
}

// PreFilterResult narrows the nodes to consider; nil NodeNames: all.
type PreFilterResult struct {
	NodeNames sets.Set[string]
}

// AllNodes is true when the result does not narrow.
func (r *PreFilterResult) AllNodes() bool { return r == nil || r.NodeNames == nil }

// Merge intersects two results.
func (r *PreFilterResult) Merge(o *PreFilterResult) *PreFilterResult {
	if r.AllNodes() && o.AllNodes() {
		return nil
	}
	if r.AllNodes() {
		return &PreFilterResult{NodeNames: o.NodeNames.Clone()}
	}
	if o.AllNodes() {
		return &PreFilterResult{NodeNames: r.NodeNames.Clone()}
	}
	return &PreFilterResult{NodeNames: r.NodeNames.Intersection(o.NodeNames)}
}

// PreFilterPlugin runs once per cycle before Filter; it may precompute
// into the CycleState, reject the pod outright, narrow the nodes, or
// return Skip so its Filter is not run.
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, pod *v1.Pod, nodes []*NodeInfo) (*PreFilterResult, *Status)
	// PreFilterExtensions: nil if the plugin's state does not depend on
	// other pods; otherwise preemption uses it to simulate adding and
	// removing pods.
	PreFilterExtensions() PreFilterExtensions
}

// PreFilterExtensions update a plugin's PreFilter state when preemption
// adds or removes a pod on a node.
type PreFilterExtensions interface {
	AddPod(ctx context.Context, state *CycleState, podToSchedule *v1.Pod, podInfoToAdd *PodInfo, nodeInfo *NodeInfo) *Status
	RemovePod(ctx context.Context, state *CycleState, podToSchedule *v1.Pod, podInfoToRemove *PodInfo, nodeInfo *NodeInfo) *Status
}

// FilterPlugin: does the pod fit this node? Called in parallel for many
// nodes; Unschedulable or UnschedulableAndUnresolvable with a reason if
// not.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *v1.Pod, nodeInfo *NodeInfo) *Status
}

// NodeToStatus is each filtered-out node's status; nodes not in the map
// (rejected before Filter, e.g. by a PreFilterResult) have AbsentNodes'.
type NodeToStatus struct {
	statuses map[string]*Status
	absent   *Status
}

// NewNodeToStatus starts an empty map whose absent nodes have absent
// (UnschedulableAndUnresolvable if nil).
func NewNodeToStatus(statuses map[string]*Status, absent *Status) *NodeToStatus {
	if statuses == nil {
		statuses = map[string]*Status{}
	}
	if absent == nil {
		absent = NewStatus(UnschedulableAndUnresolvable)
	}
	return &NodeToStatus{statuses: statuses, absent: absent}
}

// Get is a node's status (the absent status for nodes not recorded).
func (m *NodeToStatus) Get(node string) *Status {
	if s, ok := m.statuses[node]; ok {
		return s
	}
	return m.absent
}

// Set records a node's status.
func (m *NodeToStatus) Set(node string, s *Status) { m.statuses[node] = s }

// Len is the number of recorded nodes.
func (m *NodeToStatus) Len() int { return len(m.statuses) }

// AbsentNodesStatus is the status of nodes not recorded.
func (m *NodeToStatus) AbsentNodesStatus() *Status { return m.absent }

// SetAbsentNodesStatus sets it.
func (m *NodeToStatus) SetAbsentNodesStatus(s *Status) { m.absent = s }

// ForEach visits the recorded nodes.
func (m *NodeToStatus) ForEach(fn func(node string, s *Status)) {
	for n, s := range m.statuses {
		fn(n, s)
	}
}

// NodesForStatusCode: the nodes (of all) whose status has code, the
// absent ones included.
func (m *NodeToStatus) NodesForStatusCode(all []*NodeInfo, code Code) []*NodeInfo {
	var out []*NodeInfo
	for _, n := range all {
		if m.Get(n.Node().Name).Code() == code {
			out = append(out, n)
		}
	}
	return out
}

// PostFilterResult: where preemption made room.
type PostFilterResult struct {
	NominatedNodeName string
}

// PostFilterPlugin runs when no node passed Filter (DefaultPreemption).
type PostFilterPlugin interface {
	Plugin
	PostFilter(ctx context.Context, state *CycleState, pod *v1.Pod, filtered *NodeToStatus) (*PostFilterResult, *Status)
}

// PreScorePlugin runs once before Score over the feasible nodes; Skip:
// its Score is not run.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *v1.Pod, nodes []*NodeInfo) *Status
}

// NodeScore is one node's score.
type NodeScore struct {
	Name  string
	Score int64
}

// NodeScoreList is one plugin's scores.
type NodeScoreList []NodeScore

// ScorePlugin ranks a feasible node; called in parallel.
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *v1.Pod, nodeInfo *NodeInfo) (int64, *Status)
	// ScoreExtensions: nil, or NormalizeScore to bring the plugin's raw
	// scores into [MinNodeScore, MaxNodeScore].
	ScoreExtensions() ScoreExtensions
}

// ScoreExtensions normalise a plugin's scores.
type ScoreExtensions interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *v1.Pod, scores NodeScoreList) *Status
}

// ReservePlugin: the pod is assumed onto nodeName; Unreserve undoes it if
// a later step fails (in reverse order).
type ReservePlugin interface {
	Plugin
	Reserve(ctx context.Context, state *CycleState, pod *v1.Pod, nodeName string) *Status
	Unreserve(ctx context.Context, state *CycleState, pod *v1.Pod, nodeName string)
}

// PermitPlugin may approve, deny or hold (Wait, up to the timeout) a pod
// before binding.
type PermitPlugin interface {
	Plugin
	Permit(ctx context.Context, state *CycleState, pod *v1.Pod, nodeName string) (*Status, time.Duration)
}

// PreBindPlugin runs before Bind (e.g. VolumeBinding binds PVCs).
// PreBindPreFlight, at the start of the binding cycle, says whether
// PreBind has work for the pod on nodeName: Success (it has: the
// scheduler then sets the pod's status.nominatedNodeName to nodeName
// while PreBind runs), Skip (nothing to do: PreBind is not called) or
// Error.
type PreBindPlugin interface {
	Plugin
	PreBindPreFlight(ctx context.Context, state *CycleState, pod *v1.Pod, nodeName string) *Status
	PreBind(ctx context.Context, state *CycleState, pod *v1.Pod, nodeName string) *Status
}

// BindPlugin binds; Skip lets the next Bind plugin do it.
type BindPlugin interface {
	Plugin
	Bind(ctx context.Context, state *CycleState, pod *v1.Pod, nodeName string) *Status
}

// PostBindPlugin is told of a successful bind.
type PostBindPlugin interface {
	Plugin
	PostBind(ctx context.Context, state *CycleState, pod *v1.Pod, nodeName string)
}

// NodeInfoLister lists the snapshot's NodeInfos.
type NodeInfoLister interface {
	List() ([]*NodeInfo, error)
	// HavePodsWithAffinityList: nodes with at least one pod with pod
	// (anti-)affinity.
	HavePodsWithAffinityList() ([]*NodeInfo, error)
	// HavePodsWithRequiredAntiAffinityList: nodes with at least one pod
	// with required anti-affinity.
	HavePodsWithRequiredAntiAffinityList() ([]*NodeInfo, error)
	Get(nodeName string) (*NodeInfo, error)
}

// SharedLister is the snapshot one scheduling cycle reads.
type SharedLister interface {
	NodeInfos() NodeInfoLister
}

// PodNominator knows pods nominated to nodes by preemption; Filter runs
// as if they were there (upstream's "nominated pods" pass).
type PodNominator interface {
	NominatedPodsForNode(nodeName string) []*PodInfo
}

// Handle is what plugins get from the scheduler.
type Handle interface {
	// SnapshotSharedLister: the current cycle's snapshot.
	SnapshotSharedLister() SharedLister
	ClientSet() kubernetes.Interface
	SharedInformerFactory() informers.SharedInformerFactory
	EventRecorder() events.EventRecorder
	PodNominator
	// RunFilterPluginsWithNominatedPods runs the profile's Filter plugins
	// for pod on nodeInfo, with higher-or-equal-priority nominated pods
	// counted (preemption's dry runs).
	RunFilterPluginsWithNominatedPods(ctx context.Context, state *CycleState, pod *v1.Pod, nodeInfo *NodeInfo) *Status
	// RunPreFilterExtensionAddPod / RemovePod run every PreFilter
	// plugin's extension.
	RunPreFilterExtensionAddPod(ctx context.Context, state *CycleState, podToSchedule *v1.Pod, podInfoToAdd *PodInfo, nodeInfo *NodeInfo) *Status
	RunPreFilterExtensionRemovePod(ctx context.Context, state *CycleState, podToSchedule *v1.Pod, podInfoToRemove *PodInfo, nodeInfo *NodeInfo) *Status
	// Parallelizer runs work over pieces with the configured parallelism.
	Parallelizer() Parallelizer
}

// Parallelizer runs fn(i) for i in [0, pieces) on a few goroutines.
type Parallelizer interface {
	Until(ctx context.Context, pieces int, fn func(i int), operation string)
}

// Logger is the contextual logger of a plugin call.
func Logger(ctx context.Context) klog.Logger { return klog.FromContext(ctx) }
