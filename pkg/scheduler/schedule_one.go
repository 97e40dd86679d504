package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/metrics"
	"github.com/skiff-dev/skiff/pkg/scheduler/runtime"
)

// Upstream's bounds on how many feasible nodes one cycle looks for.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// noteLengthLimit is the longest event note the API takes.
const noteLengthLimit = 1024

// scheduleOne schedules the next pod: the scheduling cycle here, the
// binding cycle in a goroutine.
func (s *Scheduler) scheduleOne(ctx context.Context) {
	logger := klog.FromContext(ctx)
	pInfo, err := s.queue.Pop(logger)
	if err != nil {
		return
	}
	pod := pInfo.Pod
	fw := s.profiles[pod.Spec.SchedulerName]
	if fw == nil || pod.DeletionTimestamp != nil || s.cache.IsAssumedPod(pod) {
		s.queue.Done(pod.UID)
		return
	}
	logger = klog.LoggerWithValues(logger, "pod", klog.KObj(pod))
	ctx = klog.NewContext(ctx, logger)
	logger.V(3).Info("Attempting to schedule pod")
	start := time.Now()
	state := framework.NewCycleState()

	host, nominated, status := s.schedulingCycle(ctx, fw, state, pInfo)
	if !status.IsSuccess() {
		s.handleFailure(ctx, fw, pInfo, status, nominated, start)
		return
	}
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = host
	s.bindings.Add(1)
	go func() {
		defer s.bindings.Done()
		s.bindingCycle(ctx, fw, state, pInfo, assumed, start)
	}()
}

// schedulingCycle finds a node, assumes the pod there and runs Reserve and
// Permit. On failure the nominated result is PostFilter's (nil: leave
// status.nominatedNodeName alone).
func (s *Scheduler) schedulingCycle(ctx context.Context, fw *runtime.Framework, state *framework.CycleState, pInfo *framework.QueuedPodInfo) (string, *framework.PostFilterResult, *framework.Status) {
	logger := klog.FromContext(ctx)
	pod := pInfo.Pod
	s.cache.UpdateSnapshot(s.snapshot)
	host, err := s.schedulePod(ctx, fw, state, pod)
	if err != nil {
		var fitErr *FitError
		if !errors.As(err, &fitErr) {
			return "", nil, framework.AsStatus(err)
		}
		var result *framework.PostFilterResult
		if fw.HasPostFilterPlugins() {
			metrics.PreemptionAttempts.Inc()
			r, st := fw.RunPostFilterPlugins(ctx, state, pod, fitErr.Diagnosis.NodeToStatus)
			fitErr.Diagnosis.PostFilterMsg = st.Message()
			if st.Code() == framework.Error {
				logger.Error(st.AsError(), "PostFilter failed")
			}
			result = r
			if result == nil && st.IsSuccess() {
				result = &framework.PostFilterResult{}
			}
		}
		return "", result, framework.NewStatus(framework.Unschedulable).WithError(fitErr)
	}

	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = host
	if err := s.cache.AssumePod(logger, assumed); err != nil {
		return "", nil, framework.AsStatus(err)
	}
	s.queue.Nominator().DeleteNominatedPodIfExists(pod)
	if st := fw.RunReservePluginsReserve(ctx, state, assumed, host); !st.IsSuccess() {
		s.unreserveAndForget(ctx, fw, state, assumed, host)
		return "", nil, rejection(st, pod, s.snapshot.NumNodes(), host)
	}
	if st := fw.RunPermitPlugins(ctx, state, assumed, host); !st.IsWait() && !st.IsSuccess() {
		s.unreserveAndForget(ctx, fw, state, assumed, host)
		return "", nil, rejection(st, pod, s.snapshot.NumNodes(), host)
	}
	return host, nil, nil
}

// rejection turns a Reserve or Permit rejection into a FitError on host,
// so the pod waits for its plugin's events; errors stay errors.
func rejection(st *framework.Status, pod *v1.Pod, numNodes int, host string) *framework.Status {
	if !st.IsRejected() {
		return st
	}
	d := newDiagnosis()
	d.NodeToStatus.Set(host, st)
	d.AddPluginStatus(st)
	fe := &FitError{Pod: pod, NumAllNodes: numNodes, Diagnosis: d}
	return framework.NewStatus(framework.Unschedulable).WithError(fe)
}

func (s *Scheduler) unreserveAndForget(ctx context.Context, fw *runtime.Framework, state *framework.CycleState, assumed *v1.Pod, host string) {
	logger := klog.FromContext(ctx)
	fw.RunReservePluginsUnreserve(ctx, state, assumed, host)
	if err := s.cache.ForgetPod(logger, assumed); err != nil {
		logger.Error(err, "Forgetting the assumed pod")
	}
}

// bindingCycle asks the PreBind plugins whether they have work, waits on
// Permit, then PreBind, Bind, PostBind. While Permit or PreBind hold the
// pod (e.g. VolumeBinding waiting for its claims), its
// status.nominatedNodeName names the node (upstream's
// NominatedNodeNameForExpectation, on by default; the binding clears it).
func (s *Scheduler) bindingCycle(ctx context.Context, fw *runtime.Framework, state *framework.CycleState, pInfo *framework.QueuedPodInfo, assumed *v1.Pod, start time.Time) {
	logger := klog.FromContext(ctx)
	host := assumed.Spec.NodeName
	preFlight := fw.RunPreBindPreFlights(ctx, state, assumed, host)
	preFlightFailed := !preFlight.IsSuccess() && !preFlight.IsSkip()
	waiting := fw.GetWaitingPod(assumed.UID)
	if preFlight.IsSuccess() || (!preFlightFailed && waiting != nil) {
		if err := s.updatePodStatus(ctx, assumed, nil, &framework.PostFilterResult{NominatedNodeName: host}); err != nil {
			logger.Error(err, "Failed to update the nominated node name in the binding cycle", "nominatedNodeName", host)
		}
	}
	if preFlightFailed && waiting != nil {
		waiting.Reject("", preFlight.Message())
	}
	st := fw.WaitOnPermit(ctx, assumed)
	if preFlightFailed {
		st = preFlight
	}
	if st.IsSuccess() {
		st = fw.RunPreBindPlugins(ctx, state, assumed, host)
	}
	if st.IsSuccess() {
		st = fw.RunBindPlugins(ctx, state, assumed, host)
		if st.IsSkip() {
			st = framework.AsStatus(fmt.Errorf("no Bind plugin bound pod %s/%s", assumed.Namespace, assumed.Name))
		}
	}
	if !st.IsSuccess() {
		s.unreserveAndForget(ctx, fw, state, assumed, host)
		// The room it held is free again.
		s.queue.MoveAllToActiveOrBackoffQueue(logger, framework.EventAssignedPodDelete, assumed, nil)
		if st.IsRejected() {
			st = rejection(st, pInfo.Pod, s.snapshot.NumNodes(), host)
		}
		s.handleFailure(ctx, fw, pInfo, st, nil, start)
		return
	}
	if err := s.cache.FinishBinding(logger, assumed); err != nil {
		logger.Error(err, "Finishing the binding")
	}
	logger.V(2).Info("Successfully bound pod to node", "node", host, "evaluatedNodes", s.snapshot.NumNodes())
	metrics.Attempt(metrics.Scheduled, fw.ProfileName(), time.Since(start))
	if pInfo.InitialAttemptTimestamp != nil {
		metrics.PodScheduled(pInfo.Attempts, time.Since(*pInfo.InitialAttemptTimestamp))
	}
	fw.EventRecorder().Eventf(assumed, nil, v1.EventTypeNormal, "Scheduled", "Binding", "Successfully assigned %v/%v to %v", assumed.Namespace, assumed.Name, host)
	fw.RunPostBindPlugins(ctx, state, assumed, host)
	s.queue.Done(assumed.UID)
}

// schedulePod: PreFilter and Filter, then (with more than one feasible
// node) PreScore and Score, then the host.
func (s *Scheduler) schedulePod(ctx context.Context, fw *runtime.Framework, state *framework.CycleState, pod *v1.Pod) (string, error) {
	if s.snapshot.NumNodes() == 0 {
		return "", ErrNoNodesAvailable
	}
	feasible, diagnosis, err := s.findNodesThatFitPod(ctx, fw, state, pod)
	if err != nil {
		return "", err
	}
	if len(feasible) == 0 {
		return "", &FitError{Pod: pod, NumAllNodes: s.snapshot.NumNodes(), Diagnosis: diagnosis}
	}
	if len(feasible) == 1 {
		return feasible[0].Node().Name, nil
	}
	scores, err := s.prioritizeNodes(ctx, fw, state, pod, feasible)
	if err != nil {
		return "", err
	}
	return s.selectHost(scores), nil
}

func (s *Scheduler) findNodesThatFitPod(ctx context.Context, fw *runtime.Framework, state *framework.CycleState, pod *v1.Pod) ([]*framework.NodeInfo, Diagnosis, error) {
	diagnosis := newDiagnosis()
	all, err := s.snapshot.NodeInfos().List()
	if err != nil {
		return nil, diagnosis, err
	}
	pre, st, narrowing := fw.RunPreFilterPlugins(ctx, state, pod, all)
	diagnosis.UnschedulablePlugins = narrowing
	if !st.IsSuccess() {
		if !st.IsRejected() {
			return nil, diagnosis, st.AsError()
		}
		// Every node has the PreFilter's status, for preemption.
		diagnosis.NodeToStatus.SetAbsentNodesStatus(st)
		diagnosis.PreFilterMsg = st.Message()
		diagnosis.AddPluginStatus(st)
		return nil, diagnosis, nil
	}
	// A nominated node (from an earlier preemption) is tried first.
	if nnn := pod.Status.NominatedNodeName; nnn != "" {
		if ni, err := s.snapshot.Get(nnn); err == nil {
			feasible, err := s.findNodesThatPassFilters(ctx, fw, state, pod, &diagnosis, []*framework.NodeInfo{ni}, false)
			if err != nil {
				return nil, diagnosis, err
			}
			if len(feasible) > 0 {
				return feasible, diagnosis, nil
			}
		}
	}
	nodes := all
	if !pre.AllNodes() {
		nodes = make([]*framework.NodeInfo, 0, pre.NodeNames.Len())
		for name := range pre.NodeNames {
			if ni, err := s.snapshot.Get(name); err == nil {
				nodes = append(nodes, ni)
			}
		}
		diagnosis.NodeToStatus.SetAbsentNodesStatus(framework.NewStatus(framework.UnschedulableAndUnresolvable,
			fmt.Sprintf("node(s) didn't satisfy plugin(s) %v", sets.List(narrowing))))
	}
	feasible, err := s.findNodesThatPassFilters(ctx, fw, state, pod, &diagnosis, nodes, true)
	return feasible, diagnosis, err
}

// findNodesThatPassFilters filters nodes in parallel from where the last
// pass stopped, stopping once numFeasibleNodesToFind nodes fit.
func (s *Scheduler) findNodesThatPassFilters(ctx context.Context, fw *runtime.Framework, state *framework.CycleState, pod *v1.Pod, diagnosis *Diagnosis, nodes []*framework.NodeInfo, advance bool) ([]*framework.NodeInfo, error) {
	n := len(nodes)
	if n == 0 {
		return nil, nil
	}
	start := 0
	if advance {
		start = s.nextStartNodeIndex % n
	}
	toFind := NumFeasibleNodesToFind(fw.PercentageOfNodesToScore(), n)
	if !fw.HasScorePlugins() {
		toFind = 1
	}
	if !fw.HasFilterPlugins() {
		out := make([]*framework.NodeInfo, 0, toFind)
		for i := 0; i < toFind; i++ {
			out = append(out, nodes[(start+i)%n])
		}
		if advance {
			s.nextStartNodeIndex = (start + toFind) % n
		}
		return out, nil
	}
	feasible := make([]*framework.NodeInfo, toFind)
	statuses := make([]*framework.Status, n)
	var found atomic.Int32
	var failed atomic.Pointer[framework.Status]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fw.Parallelizer().Until(ctx, n, func(i int) {
		ni := nodes[(start+i)%n]
		st := fw.RunFilterPluginsWithNominatedPods(ctx, state, pod, ni)
		switch {
		case st.Code() == framework.Error:
			failed.CompareAndSwap(nil, st)
			cancel()
		case st.IsSuccess():
			if k := found.Add(1); k > int32(toFind) {
				found.Add(-1)
				cancel()
			} else {
				feasible[k-1] = ni
			}
		default:
			statuses[i] = st
		}
	}, "Filter")
	processed := int(found.Load())
	for i, st := range statuses {
		if st != nil {
			diagnosis.NodeToStatus.Set(nodes[(start+i)%n].Node().Name, st)
			diagnosis.AddPluginStatus(st)
			processed++
		}
	}
	if advance {
		s.nextStartNodeIndex = (start + processed) % n
	}
	if st := failed.Load(); st != nil {
		return nil, st.AsError()
	}
	return feasible[:found.Load()], nil
}

// NumFeasibleNodesToFind is upstream's: all of fewer than 100 nodes;
// otherwise percentage% of them (0: 50% minus 1% per 125 nodes, at least
// 5%), and never fewer than 100.
func NumFeasibleNodesToFind(percentage int32, numAllNodes int) int {
	if numAllNodes < minFeasibleNodesToFind {
		return numAllNodes
	}
	if percentage == 0 {
		percentage = int32(50 - numAllNodes/125)
		if percentage < minFeasibleNodesPercentageToFind {
			percentage = minFeasibleNodesPercentageToFind
		}
	}
	num := numAllNodes * int(percentage) / 100
	if num < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return num
}

// prioritizeNodes: PreScore and Score; without Score plugins every node
// scores 1.
func (s *Scheduler) prioritizeNodes(ctx context.Context, fw *runtime.Framework, state *framework.CycleState, pod *v1.Pod, nodes []*framework.NodeInfo) ([]runtime.NodePluginScores, error) {
	if !fw.HasScorePlugins() {
		out := make([]runtime.NodePluginScores, len(nodes))
		for i, n := range nodes {
			out[i] = runtime.NodePluginScores{Name: n.Node().Name, TotalScore: 1}
		}
		return out, nil
	}
	if st := fw.RunPreScorePlugins(ctx, state, pod, nodes); !st.IsSuccess() {
		return nil, st.AsError()
	}
	scores, st := fw.RunScorePlugins(ctx, state, pod, nodes)
	if !st.IsSuccess() {
		return nil, st.AsError()
	}
	if logger := klog.FromContext(ctx); logger.V(10).Enabled() {
		for _, n := range scores {
			logger.Info("Node score", "node", n.Name, "scores", n.Scores, "total", n.TotalScore)
		}
	}
	return scores, nil
}

// selectHost: the highest total, ties broken uniformly at random
// (reservoir sampling).
func (s *Scheduler) selectHost(scores []runtime.NodePluginScores) string {
	best, ties := scores[0], 1
	for _, n := range scores[1:] {
		switch {
		case n.TotalScore > best.TotalScore:
			best, ties = n, 1
		case n.TotalScore == best.TotalScore:
			ties++
			if s.rand.IntN(ties) == 0 {
				best = n
			}
		}
	}
	return best.Name
}

// handleFailure puts the pod back in the queue (the informer's latest
// version), records a FailedScheduling event and sets PodScheduled=False
// (Unschedulable or SchedulerError) and the nomination if they changed.
func (s *Scheduler) handleFailure(ctx context.Context, fw *runtime.Framework, pInfo *framework.QueuedPodInfo, st *framework.Status, nominated *framework.PostFilterResult, start time.Time) {
	logger := klog.FromContext(ctx)
	defer s.queue.Done(pInfo.Pod.UID)
	reason := v1.PodReasonSchedulerError
	result := metrics.Error
	if st.IsRejected() {
		reason, result = v1.PodReasonUnschedulable, metrics.Unschedulable
	}
	metrics.Attempt(result, fw.ProfileName(), time.Since(start))
	msg := st.Message()
	var fe *FitError
	if errors.As(st.AsError(), &fe) {
		pInfo.UnschedulablePlugins = fe.Diagnosis.UnschedulablePlugins.Union(sets.New[string]())
		pInfo.PendingPlugins = fe.Diagnosis.PendingPlugins.Union(sets.New[string]())
		logger.V(2).Info("Unable to schedule pod; no fit; waiting", "err", msg)
	} else if errors.Is(st.AsError(), ErrNoNodesAvailable) {
		logger.V(2).Info("Unable to schedule pod; no nodes are registered to the cluster; waiting")
	} else {
		logger.Error(st.AsError(), "Error scheduling pod; retrying")
	}

	cached, err := s.informers.Core().V1().Pods().Lister().Pods(pInfo.Pod.Namespace).Get(pInfo.Pod.Name)
	if err != nil {
		logger.V(2).Info("Pod doesn't exist in informer cache", "err", err)
		return
	}
	if cached.UID != pInfo.Pod.UID {
		logger.V(2).Info("Pod was recreated while handling scheduling failure; not requeueing it")
		return
	}
	if cached.Spec.NodeName != "" {
		logger.Info("Pod has been assigned to node. Abort adding it back to queue.", "node", cached.Spec.NodeName)
		return
	}
	pInfo.PodInfo = framework.NewPodInfo(cached.DeepCopy())
	pod := pInfo.Pod
	if err := s.queue.AddUnschedulableIfNotPresent(logger, pInfo); err != nil {
		logger.Error(err, "Requeueing the pod")
	}
	if nominated != nil && nominated.NominatedNodeName != "" {
		s.queue.Nominator().AddNominatedPod(pInfo.PodInfo, nominated.NominatedNodeName)
	}
	fw.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedScheduling", "Scheduling", truncate(msg))
	cond := &v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: pod.Generation}
	if err := s.updatePodStatus(ctx, pod, cond, nominated); err != nil {
		logger.Error(err, "Error updating pod")
	}
}

func truncate(msg string) string {
	if len(msg) <= noteLengthLimit {
		return msg
	}
	const suffix = " ..."
	return msg[:noteLengthLimit-len(suffix)] + suffix
}

// updatePodStatus patches the PodScheduled condition (unless nil) and
// status.nominatedNodeName, only if either changes.
func (s *Scheduler) updatePodStatus(ctx context.Context, pod *v1.Pod, cond *v1.PodCondition, nominated *framework.PostFilterResult) error {
	newStatus := pod.Status.DeepCopy()
	nnnChanged := nominated != nil && pod.Status.NominatedNodeName != nominated.NominatedNodeName
	condChanged := cond != nil && setPodCondition(newStatus, cond)
	if !condChanged && !nnnChanged {
		return nil
	}
	if nnnChanged {
		newStatus.NominatedNodeName = nominated.NominatedNodeName
	}
	oldData, err := json.Marshal(v1.Pod{Status: pod.Status})
	if err != nil {
		return err
	}
	newData, err := json.Marshal(v1.Pod{Status: *newStatus})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, &v1.Pod{})
	if err != nil {
		return err
	}
	if string(patch) == "{}" {
		return nil
	}
	return retry.OnError(retry.DefaultBackoff, func(err error) bool {
		return apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err)
	}, func() error {
		_, err := s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		return err
	})
}

// setPodCondition sets cond in status as upstream's UpdatePodCondition:
// the transition time moves only with the status; it tells whether
// anything changed.
func setPodCondition(status *v1.PodStatus, cond *v1.PodCondition) bool {
	now := metav1.Now()
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != cond.Type {
			continue
		}
		c := *cond
		if c.Status == old.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		if c.Status == old.Status && c.Reason == old.Reason && c.Message == old.Message &&
			c.LastProbeTime.Equal(&old.LastProbeTime) && c.ObservedGeneration == old.ObservedGeneration {
			return false
		}
		*old = c
		return true
	}
	c := *cond
	c.LastTransitionTime = now
	status.Conditions = append(status.Conditions, c)
	return true
}
