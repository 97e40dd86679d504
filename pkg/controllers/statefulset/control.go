package statefulset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/controllers/history"
)

// maxBatchSize bounds a Parallel set's burst (upstream's).
const maxBatchSize = 500

// syncSet is upstream's UpdateStatefulSet: the set's revisions, its pods
// created, updated and deleted by its policy and strategy, its status,
// and its history truncated to revisionHistoryLimit. The status written.
func (r *Reconciler) syncSet(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, now time.Time) (*appsv1.StatefulSetStatus, error) {
	set = set.DeepCopy()
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, err
	}
	revisions, err := r.history.List(ctx, set, selector)
	if err != nil {
		return nil, err
	}
	history.Sort(revisions)

	current, update, status, err := r.performUpdate(ctx, set, pods, revisions, now)
	if terr := r.truncateHistory(ctx, set, pods, revisions, current, update); terr != nil {
		err = errors.Join(err, terr)
	}
	return status, err
}

func (r *Reconciler) performUpdate(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, revisions []*appsv1.ControllerRevision, now time.Time) (*appsv1.ControllerRevision, *appsv1.ControllerRevision, *appsv1.StatefulSetStatus, error) {
	logger := klog.FromContext(ctx)
	current, update, collisionCount, err := r.revisions(ctx, set, revisions)
	if err != nil {
		return current, update, nil, err
	}
	status, err := r.updateStatefulSet(ctx, set, current, update, collisionCount, pods, now)
	if err != nil && status == nil {
		return current, update, nil, err
	}
	statusErr := r.updateStatus(ctx, set, status)
	if statusErr == nil {
		logger.V(4).Info("Updated status", "statefulSet", klog.KObj(set), "replicas", status.Replicas, "readyReplicas", status.ReadyReplicas,
			"currentReplicas", status.CurrentReplicas, "updatedReplicas", status.UpdatedReplicas)
	}
	switch {
	case err != nil && statusErr != nil:
		logger.Error(statusErr, "Could not update status", "statefulSet", klog.KObj(set))
		return current, update, status, err
	case err != nil:
		return current, update, status, err
	case statusErr != nil:
		return current, update, status, statusErr
	}
	logger.V(4).Info("StatefulSet revisions", "statefulSet", klog.KObj(set), "currentRevision", status.CurrentRevision, "updateRevision", status.UpdateRevision)
	return current, update, status, nil
}

// newRevision is the set's revision of its template (the set's
// annotations on it).
func newRevision(set *appsv1.StatefulSet, revision int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	patch, err := history.TemplatePatch(set)
	if err != nil {
		return nil, err
	}
	cr := history.New(set, controllerKind, set.Spec.Template.Labels, patch, revision, collisionCount)
	if cr.Annotations == nil {
		cr.Annotations = map[string]string{}
	}
	for k, v := range set.Annotations {
		cr.Annotations[k] = v
	}
	return cr, nil
}

// applyRevision is the set with the revision's spec (its template).
func applyRevision(set *appsv1.StatefulSet, revision *appsv1.ControllerRevision) (*appsv1.StatefulSet, error) {
	clone := set.DeepCopy()
	original, err := json.Marshal(clone)
	if err != nil {
		return nil, err
	}
	patched, err := strategicpatch.StrategicMergePatch(original, revision.Data.Raw, clone)
	if err != nil {
		return nil, err
	}
	restored := &appsv1.StatefulSet{}
	if err := json.Unmarshal(patched, restored); err != nil {
		return nil, err
	}
	clone.Spec = restored.Spec
	return clone, nil
}

// sameTemplate: the revision's template is semantically the set's
// (upstream's StatefulSetSemanticRevisionComparison: a revision written
// with another serialization still counts as unchanged).
func sameTemplate(set *appsv1.StatefulSet, revision *appsv1.ControllerRevision) bool {
	restored, err := applyRevision(set, revision)
	if err != nil {
		return false
	}
	return equality.Semantic.DeepEqual(restored.Spec.Template, set.Spec.Template)
}

// revisions are the current and update revisions of the set, creating the
// update revision (or renumbering an equal older one, a rollback) as
// needed, and the collision count.
func (r *Reconciler) revisions(ctx context.Context, set *appsv1.StatefulSet, revisions []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, *appsv1.ControllerRevision, int32, error) {
	var collisionCount int32
	if set.Status.CollisionCount != nil {
		collisionCount = *set.Status.CollisionCount
	}
	next := int64(1)
	if n := len(revisions); n > 0 {
		next = revisions[n-1].Revision + 1
	}
	update, err := newRevision(set, next, &collisionCount)
	if err != nil {
		return nil, nil, collisionCount, err
	}
	equal := history.FindEqual(revisions, update)
	n := len(revisions)
	switch {
	case len(equal) > 0 && history.Equal(revisions[n-1], equal[len(equal)-1]):
		update = revisions[n-1]
	case len(equal) > 0:
		if update, err = r.history.UpdateRevision(ctx, equal[len(equal)-1], update.Revision); err != nil {
			return nil, nil, collisionCount, err
		}
	case n > 0 && sameTemplate(set, revisions[n-1]):
		update = revisions[n-1]
	default:
		if update, err = r.history.Create(ctx, set, update, &collisionCount); err != nil {
			return nil, nil, collisionCount, err
		}
	}
	var current *appsv1.ControllerRevision
	for _, rev := range revisions {
		if rev.Name == set.Status.CurrentRevision {
			current = rev
			break
		}
	}
	if current == nil {
		current = update
	}
	return current, update, collisionCount, nil
}

// truncateHistory deletes the oldest revisions that are neither current,
// update, nor any pod's until revisionHistoryLimit are left.
func (r *Reconciler) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, revisions []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) error {
	live := map[string]bool{}
	if current != nil {
		live[current.Name] = true
	}
	if update != nil {
		live[update.Name] = true
	}
	for _, p := range pods {
		live[getPodRevision(p)] = true
	}
	var old []*appsv1.ControllerRevision
	for _, rev := range revisions {
		if !live[rev.Name] {
			old = append(old, rev)
		}
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	if limit < 0 || len(old) <= limit {
		return nil
	}
	for _, rev := range old[:len(old)-limit] {
		if err := r.history.Delete(ctx, rev); err != nil {
			return err
		}
	}
	return nil
}

// countStatus sets the status' counts from the pods.
func countStatus(status *appsv1.StatefulSetStatus, minReadySeconds int32, current, update *appsv1.ControllerRevision, now time.Time, podLists ...[]*corev1.Pod) {
	status.Replicas, status.ReadyReplicas, status.AvailableReplicas, status.CurrentReplicas, status.UpdatedReplicas = 0, 0, 0, 0, 0
	for _, list := range podLists {
		for _, pod := range list {
			if pod == nil {
				continue
			}
			if isCreated(pod) {
				status.Replicas++
			}
			if isRunningAndReady(pod) {
				status.ReadyReplicas++
				if isPodAvailable(pod, minReadySeconds, now) {
					status.AvailableReplicas++
				}
			}
			if isCreated(pod) && !isTerminating(pod) {
				rev := getPodRevision(pod)
				if rev == current.Name {
					status.CurrentReplicas++
				}
				if rev == update.Name {
					status.UpdatedReplicas++
				}
			}
		}
	}
}

// slowStartBatch runs fn for 0..remaining-1 in batches of 1, 2, 4, ...
// (at most maxBatchSize), stopping after a batch with failures.
func slowStartBatch(remaining int, fn func(int) (bool, error)) (int, error) {
	successes, j := 0, 0
	for batch := min(remaining, 1); batch > 0; batch = min(2*batch, remaining, maxBatchSize) {
		errCh := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			k := j
			j++
			wg.Go(func() {
				if _, err := fn(k); err != nil {
					errCh <- err
				}
			})
		}
		wg.Wait()
		successes += batch - len(errCh)
		close(errCh)
		if len(errCh) > 0 {
			var errs []error
			for err := range errCh {
				errs = append(errs, err)
			}
			return successes, errors.Join(errs...)
		}
		remaining -= batch
	}
	return successes, nil
}

// runForAll runs fn on each pod: in order, stopping at the first that
// says so (monotonic), or in slow-start batches.
func runForAll(pods []*corev1.Pod, fn func(int) (bool, error), monotonic bool) (bool, error) {
	if monotonic {
		for i := range pods {
			if exit, err := fn(i); exit || err != nil {
				return true, err
			}
		}
		return false, nil
	}
	if _, err := slowStartBatch(len(pods), fn); err != nil {
		return true, err
	}
	return false, nil
}

// updateStatefulSet is upstream's: the pods in the ordinal range
// (replicas) created, recreated and fixed up, those outside it
// (condemned) deleted from the highest ordinal, then the rolling update
// from the highest ordinal down to the partition, within maxUnavailable;
// OrderedReady waits at each step for the pods before to be Running,
// Ready and available.
func (r *Reconciler) updateStatefulSet(ctx context.Context, set *appsv1.StatefulSet, current, update *appsv1.ControllerRevision, collisionCount int32, pods []*corev1.Pod, now time.Time) (*appsv1.StatefulSetStatus, error) {
	logger := klog.FromContext(ctx)
	currentSet, err := applyRevision(set, current)
	if err != nil {
		return nil, err
	}
	updateSet, err := applyRevision(set, update)
	if err != nil {
		return nil, err
	}
	if set.Spec.UpdateStrategy.Type == appsv1.RecreateStatefulSetStrategyType {
		err := fmt.Errorf("statefulset %s/%s uses Recreate strategy but feature gate %s is disabled", set.Namespace, set.Name, "StatefulSetRecreateStrategy")
		r.Recorder.Event(set, corev1.EventTypeWarning, "UnknownStrategy", err.Error())
		return nil, err
	}

	status := &appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    current.Name,
		UpdateRevision:     update.Name,
		CollisionCount:     &collisionCount,
		Conditions:         append([]appsv1.StatefulSetCondition(nil), set.Status.Conditions...),
	}
	countStatus(status, set.Spec.MinReadySeconds, current, update, now, pods)

	replicaCount := replicas(set)
	replicasList := make([]*corev1.Pod, replicaCount)
	condemned := make([]*corev1.Pod, 0, len(pods))
	start := startOrdinal(set)
	for _, pod := range pods {
		if podInOrdinalRange(pod, set) {
			replicasList[getOrdinal(pod)-start] = pod
		} else if getOrdinal(pod) >= 0 {
			condemned = append(condemned, pod)
		}
	}
	for ord := start; ord <= endOrdinal(set); ord++ {
		if replicasList[ord-start] == nil {
			replicasList[ord-start] = newVersionedPod(currentSet, updateSet, current.Name, update.Name, ord)
		}
	}
	sort.SliceStable(condemned, func(i, j int) bool { return getOrdinal(condemned[i]) > getOrdinal(condemned[j]) })

	unavailable := 0
	var firstUnavailable *corev1.Pod
	for _, p := range replicasList {
		if isUnavailable(p, set.Spec.MinReadySeconds, now) {
			unavailable++
			if firstUnavailable == nil {
				firstUnavailable = p
			}
		}
	}
	for i := len(condemned) - 1; i >= 0; i-- {
		if isUnavailable(condemned[i], set.Spec.MinReadySeconds, now) {
			unavailable++
			if firstUnavailable == nil {
				firstUnavailable = condemned[i]
			}
		}
	}
	if unavailable > 0 {
		logger.V(4).Info("StatefulSet has unavailable Pods", "statefulSet", klog.KObj(set), "unavailableReplicas", unavailable, "pod", klog.KObj(firstUnavailable))
	}
	if set.DeletionTimestamp != nil {
		return status, nil
	}
	monotonic := !allowsBurst(set)
	done := func(err error) (*appsv1.StatefulSetStatus, error) {
		countStatus(status, set.Spec.MinReadySeconds, current, update, now, replicasList, condemned)
		return status, err
	}

	processReplica := func(i int) (bool, error) {
		return r.processReplica(ctx, set, updateSet, monotonic, replicasList, i, now)
	}
	if exit, err := runForAll(replicasList, processReplica, monotonic); exit || err != nil {
		return done(err)
	}
	fixPodClaim := func(i int) (bool, error) {
		match, err := r.claimsMatchRetentionPolicy(ctx, updateSet, condemned[i])
		if err != nil {
			return true, err
		}
		if !match {
			if err := r.updateClaimsForRetentionPolicy(ctx, updateSet, condemned[i]); err != nil {
				return true, err
			}
		}
		return false, nil
	}
	if exit, err := runForAll(condemned, fixPodClaim, monotonic); exit || err != nil {
		return done(err)
	}
	processCondemned := func(i int) (bool, error) {
		return r.processCondemned(ctx, set, firstUnavailable, monotonic, condemned, i, now)
	}
	if exit, err := runForAll(condemned, processCondemned, monotonic); exit || err != nil {
		return done(err)
	}
	countStatus(status, set.Spec.MinReadySeconds, current, update, now, replicasList, condemned)

	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return status, nil
	}
	return r.rollingUpdate(ctx, set, replicasList, update, status, now)
}

// processReplica creates, recreates or fixes the replica i; true if the
// caller must stop here.
func (r *Reconciler) processReplica(ctx context.Context, set, updateSet *appsv1.StatefulSet, monotonic bool, replicas []*corev1.Pod, i int, now time.Time) (bool, error) {
	logger := klog.FromContext(ctx)
	pod := replicas[i]
	// Failed or Succeeded pods are deleted, and recreated on a later sync.
	if isTerminalPhase(pod) {
		if pod.DeletionTimestamp == nil {
			if err := r.deleteStatefulPod(ctx, set, pod); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	if !isCreated(pod) {
		stale, err := r.podClaimIsStale(ctx, set, pod)
		if err != nil || stale {
			return true, err
		}
		if err := r.createStatefulPod(ctx, set, pod); err != nil {
			return true, err
		}
		if monotonic {
			return true, nil
		}
	}
	if isPending(pod) {
		logger.V(4).Info("StatefulSet is triggering PVC creation for pending Pod", "statefulSet", klog.KObj(set), "pod", klog.KObj(pod))
		if err := r.createMissingClaims(ctx, set, pod); err != nil {
			return true, err
		}
	}
	if isTerminating(pod) && monotonic {
		logger.V(4).Info("StatefulSet is waiting for Pod to Terminate", "statefulSet", klog.KObj(set), "pod", klog.KObj(pod))
		return true, nil
	}
	if !isRunningAndReady(pod) && monotonic {
		logger.V(4).Info("StatefulSet is waiting for Pod to be Running and Ready", "statefulSet", klog.KObj(set), "pod", klog.KObj(pod))
		return true, nil
	}
	if !isPodAvailable(pod, set.Spec.MinReadySeconds, now) && monotonic {
		logger.V(4).Info("StatefulSet is waiting for Pod to be Available", "statefulSet", klog.KObj(set), "pod", klog.KObj(pod))
		return true, nil
	}
	// Not yet created pods (Parallel) are fixed up on a later sync.
	if !isCreated(pod) {
		return false, nil
	}
	match, err := r.claimsMatchRetentionPolicy(ctx, updateSet, pod)
	if err != nil {
		match = true
	}
	if identityMatches(set, pod) && storageMatches(set, pod) && match {
		return false, nil
	}
	if err := r.updateStatefulPod(ctx, updateSet, pod.DeepCopy()); err != nil {
		return true, err
	}
	return false, nil
}

// processCondemned deletes the condemned pod i once the ones before it
// allow (monotonic: all are Running, Ready and available, or it is the
// first unavailable pod).
func (r *Reconciler) processCondemned(ctx context.Context, set *appsv1.StatefulSet, firstUnhealthy *corev1.Pod, monotonic bool, condemned []*corev1.Pod, i int, now time.Time) (bool, error) {
	logger := klog.FromContext(ctx)
	pod := condemned[i]
	if isTerminating(pod) {
		if monotonic {
			logger.V(4).Info("StatefulSet is waiting for Pod to Terminate prior to scale down", "statefulSet", klog.KObj(set), "pod", klog.KObj(pod))
			return true, nil
		}
		return false, nil
	}
	if !isRunningAndReady(pod) && monotonic && pod != firstUnhealthy {
		logger.V(4).Info("StatefulSet is waiting for Pod to be Running and Ready prior to scale down", "statefulSet", klog.KObj(set), "pod", klog.KObj(firstUnhealthy))
		return true, nil
	}
	if !isPodAvailable(pod, set.Spec.MinReadySeconds, now) && monotonic && pod != firstUnhealthy {
		logger.V(4).Info("StatefulSet is waiting for Pod to be Available prior to scale down", "statefulSet", klog.KObj(set), "pod", klog.KObj(firstUnhealthy))
		return true, nil
	}
	logger.V(2).Info("Pod of StatefulSet is terminating for scale down", "statefulSet", klog.KObj(set), "pod", klog.KObj(pod))
	return true, r.deleteStatefulPod(ctx, set, pod)
}

// rollingUpdate deletes the pods not at the update revision from the
// highest ordinal down to the partition, at most maxUnavailable
// unavailable at once (upstream's MaxUnavailableStatefulSet behaviour;
// Parallel sets first replace the old pods already unavailable).
func (r *Reconciler) rollingUpdate(ctx context.Context, set *appsv1.StatefulSet, replicas []*corev1.Pod, update *appsv1.ControllerRevision, status *appsv1.StatefulSetStatus, now time.Time) (*appsv1.StatefulSetStatus, error) {
	logger := klog.FromContext(ctx)
	updateMin := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		updateMin = int(*ru.Partition)
	}
	maxUnavail, err := maxUnavailable(set)
	if err != nil {
		return status, err
	}
	parallel := set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement
	old := func(p *corev1.Pod) bool { return getPodRevision(p) != update.Name }
	unavailablePods, unavailableOld := 0, 0
	for _, p := range replicas {
		if isUnavailable(p, set.Spec.MinReadySeconds, now) {
			unavailablePods++
			if parallel && old(p) && !isTerminating(p) {
				unavailableOld++
			}
		}
	}
	if unavailablePods >= maxUnavail && unavailableOld == 0 {
		if unavailablePods > maxUnavail {
			logger.V(4).Info("StatefulSet found unavailablePods, more than the allowed maxUnavailable", "statefulSet", klog.KObj(set),
				"unavailablePods", unavailablePods, "unavailablePodsNeedingUpdate", unavailableOld, "maxUnavailable", maxUnavail)
		}
		return status, nil
	}
	deletePod := func(p *corev1.Pod, msg string) error {
		logger.V(2).Info(msg, "statefulSet", klog.KObj(set), "pod", klog.KObj(p))
		if err := r.deleteStatefulPod(ctx, set, p); err != nil {
			return err
		}
		status.CurrentReplicas--
		return nil
	}
	if parallel {
		for target := len(replicas) - 1; target >= updateMin; target-- {
			if p := replicas[target]; old(p) && !isPodAvailable(p, set.Spec.MinReadySeconds, now) && !isTerminating(p) {
				if err := deletePod(p, "StatefulSet terminating unavailable Pod for update"); err != nil {
					return status, err
				}
			}
		}
		budget := maxUnavail - unavailablePods
		for target := len(replicas) - 1; target >= updateMin && budget > 0; target-- {
			if p := replicas[target]; old(p) && !isUnavailable(p, set.Spec.MinReadySeconds, now) {
				if err := deletePod(p, "StatefulSet terminating Pod for update"); err != nil {
					return status, err
				}
				budget--
			}
		}
		return status, nil
	}
	toDelete, deleted := maxUnavail-unavailablePods, 0
	for target := len(replicas) - 1; target >= updateMin && deleted < toDelete; target-- {
		if p := replicas[target]; old(p) && !isTerminating(p) {
			if err := deletePod(p, "StatefulSet terminating Pod for update"); err != nil {
				return status, err
			}
			deleted++
		}
	}
	return status, nil
}

// updateStatus completes a finished update (currentRevision becomes the
// update revision) and writes the status if it differs.
func (r *Reconciler) updateStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	want := int32(replicas(set))
	if status.UpdatedReplicas == want && status.ReadyReplicas == want && status.Replicas == want {
		status.CurrentReplicas = status.UpdatedReplicas
		status.CurrentRevision = status.UpdateRevision
	}
	s := set.Status
	if status.ObservedGeneration <= s.ObservedGeneration && status.Replicas == s.Replicas && status.CurrentReplicas == s.CurrentReplicas &&
		status.ReadyReplicas == s.ReadyReplicas && status.UpdatedReplicas == s.UpdatedReplicas && status.CurrentRevision == s.CurrentRevision &&
		status.AvailableReplicas == s.AvailableReplicas && status.UpdateRevision == s.UpdateRevision && reflect.DeepEqual(s.Conditions, status.Conditions) {
		return nil
	}
	cur := set.DeepCopy()
	for i := 0; ; i++ {
		cur.Status = *status
		updated, err := r.Core.AppsV1().StatefulSets(cur.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			r.exp.wroteStatus(updated)
			return nil
		}
		if i >= 4 || !apierrors.IsConflict(err) {
			return err
		}
		fresh, gerr := r.Core.AppsV1().StatefulSets(cur.Namespace).Get(ctx, cur.Name, metav1.GetOptions{})
		if gerr != nil {
			return err
		}
		if fresh.UID != set.UID {
			return err
		}
		cur = fresh
	}
}
