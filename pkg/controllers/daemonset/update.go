package daemonset

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/pkg/controllers/deployment"
	"github.com/skiff-dev/skiff/pkg/controllers/history"
)

// rollingUpdate replaces old pods: without surge, deleting at most
// maxUnavailable available ones at a time (unavailable old pods at once);
// with surge, creating the new pod beside the old one on at most maxSurge
// nodes, the old pod going once the new one is available (manage).
func (r *Reconciler) rollingUpdate(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, hash string) error {
	logger := klog.FromContext(ctx)
	nodeToPods, err := r.nodesToPods(ctx, ds, false)
	if err != nil {
		return fmt.Errorf("couldn't get node to daemon pod mapping for daemon set %q: %v", ds.Name, err)
	}
	maxSurge, maxUnavailable, desired, err := r.updatedDesiredNodeCounts(ctx, ds, nodes, nodeToPods)
	if err != nil {
		return fmt.Errorf("couldn't get unavailable numbers: %v", err)
	}
	now := r.Clock.Now()
	available := func(p *corev1.Pod) bool { return isPodAvailable(p, ds.Spec.MinReadySeconds, now) }
	// Nodes in a stable order, so that the candidates do not change at
	// every sync (upstream ranges over a map).
	names := make([]string, 0, len(nodeToPods))
	for n := range nodeToPods {
		names = append(names, n)
	}
	slices.Sort(names)

	if maxSurge == 0 {
		numUnavailable := 0
		var allowed, candidates []string
		for _, nodeName := range names {
			newPod, oldPod, ok := findUpdatedPodsOnNode(ds, nodeToPods[nodeName], hash)
			if !ok {
				logger.V(3).Info("DaemonSet has excess pods on node, skipping to allow the core loop to process", "daemonset", klog.KObj(ds), "node", klog.KRef("", nodeName))
				numUnavailable++
				continue
			}
			switch {
			case oldPod == nil && newPod == nil, oldPod != nil && newPod != nil:
				numUnavailable++
			case newPod != nil:
				if !available(newPod) {
					numUnavailable++
				}
			default:
				switch {
				case !available(oldPod):
					logger.V(5).Info("DaemonSet pod on node is out of date and not available, allowing replacement", "daemonset", klog.KObj(ds), "pod", klog.KObj(oldPod), "node", klog.KRef("", nodeName))
					allowed = append(allowed, oldPod.Name)
					numUnavailable++
				case numUnavailable >= maxUnavailable:
				default:
					logger.V(5).Info("DaemonSet pod on node is out of date, this is a candidate to replace", "daemonset", klog.KObj(ds), "pod", klog.KObj(oldPod), "node", klog.KRef("", nodeName))
					candidates = append(candidates, oldPod.Name)
				}
			}
		}
		logger.V(5).Info("DaemonSet allowing replacements", "daemonset", klog.KObj(ds), "replacements", len(allowed), "maxUnavailable", maxUnavailable, "numUnavailable", numUnavailable, "candidates", len(candidates))
		remaining := min(max(maxUnavailable-numUnavailable, 0), len(candidates))
		return r.syncNodes(ctx, ds, append(allowed, candidates[:remaining]...), nil, hash)
	}

	var oldToDelete, shouldNotRunToDelete, candidateNew, allowedNew []string
	numSurge, numAvailable := 0, 0
	p := newPlacement(ds)
	nodeByName := make(map[string]*corev1.Node, len(nodes))
	for _, n := range nodes {
		nodeByName[n.Name] = n
	}
	shouldRun := func(name string) (bool, error) {
		n := nodeByName[name]
		if n == nil {
			return false, fmt.Errorf("couldn't get node for nodeName %q: node %q not found", name, name)
		}
		run, _ := p.shouldRun(logger, n)
		return run, nil
	}
	for _, nodeName := range names {
		newPod, oldPod, ok := findUpdatedPodsOnNode(ds, nodeToPods[nodeName], hash)
		if !ok {
			logger.V(3).Info("DaemonSet has excess pods on node, skipping to allow the core loop to process", "daemonset", klog.KObj(ds), "node", klog.KRef("", nodeName))
			numSurge++
			continue
		}
		if oldPod != nil {
			if available(oldPod) {
				numAvailable++
			}
		} else if newPod != nil && available(newPod) {
			numAvailable++
		}
		switch {
		case oldPod == nil:
		case newPod == nil:
			run, err := shouldRun(nodeName)
			if err != nil {
				return err
			}
			switch {
			case !available(oldPod):
				if !run {
					logger.V(5).Info("DaemonSet pod on node is not available and does not match scheduling constraints, remove old pod", "daemonset", klog.KObj(ds), "node", nodeName, "oldPod", klog.KObj(oldPod))
					oldToDelete = append(oldToDelete, oldPod.Name)
					continue
				}
				logger.V(5).Info("Pod on node is out of date and not available, allowing replacement", "daemonset", klog.KObj(ds), "pod", klog.KObj(oldPod), "node", klog.KRef("", nodeName))
				allowedNew = append(allowedNew, nodeName)
			default:
				if !run {
					shouldNotRunToDelete = append(shouldNotRunToDelete, oldPod.Name)
					continue
				}
				if numSurge >= maxSurge {
					continue
				}
				logger.V(5).Info("DaemonSet pod on node is out of date, this is a surge candidate", "daemonset", klog.KObj(ds), "pod", klog.KObj(oldPod), "node", klog.KRef("", nodeName))
				candidateNew = append(candidateNew, nodeName)
			}
		default:
			if !available(newPod) {
				numSurge++
				continue
			}
			logger.V(5).Info("DaemonSet pod on node is available, remove old pod", "daemonset", klog.KObj(ds), "newPod", klog.KObj(newPod), "node", nodeName, "oldPod", klog.KObj(oldPod))
			oldToDelete = append(oldToDelete, oldPod.Name)
		}
	}
	logger.V(5).Info("DaemonSet allowing replacements", "daemonset", klog.KObj(ds), "replacements", len(allowedNew), "maxSurge", maxSurge, "numSurge", numSurge, "candidates", len(candidateNew))
	// Old pods on nodes that should not run them go while enough pods are
	// available beyond the desired number.
	if deletable := min(numAvailable-desired, len(shouldNotRunToDelete)); deletable > 0 {
		oldToDelete = append(oldToDelete, shouldNotRunToDelete[:deletable]...)
	}
	remaining := min(max(maxSurge-numSurge, 0), len(candidateNew))
	return r.syncNodes(ctx, ds, oldToDelete, append(allowedNew, candidateNew[:remaining]...), hash)
}

// findUpdatedPodsOnNode is the node's new and old pod; false if it has
// more than one of either.
func findUpdatedPodsOnNode(ds *appsv1.DaemonSet, pods []*corev1.Pod, hash string) (newPod, oldPod *corev1.Pod, ok bool) {
	generation := templateGeneration(ds)
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if isPodUpdated(pod, hash, generation) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = pod
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = pod
		}
	}
	return newPod, oldPod, true
}

// updatedDesiredNodeCounts are maxSurge and maxUnavailable for the number
// of nodes that should run the pod (that number too); such nodes without
// pods are added to nodeToPods. Neither set: maxUnavailable 1.
func (r *Reconciler) updatedDesiredNodeCounts(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, nodeToPods map[string][]*corev1.Pod) (int, int, int, error) {
	logger := klog.FromContext(ctx)
	p := newPlacement(ds)
	desired := 0
	for _, node := range nodes {
		if run, _ := p.shouldRun(logger, node); !run {
			continue
		}
		desired++
		if _, ok := nodeToPods[node.Name]; !ok {
			nodeToPods[node.Name] = nil
		}
	}
	maxUnavailable, err := unavailableCount(ds, desired)
	if err != nil {
		return -1, -1, -1, fmt.Errorf("invalid value for MaxUnavailable: %v", err)
	}
	maxSurge, err := surgeCount(ds, desired)
	if err != nil {
		return -1, -1, -1, fmt.Errorf("invalid value for MaxSurge: %v", err)
	}
	if desired > 0 && maxUnavailable == 0 && maxSurge == 0 {
		logger.Info("DaemonSet is not configured for surge or unavailability, defaulting to accepting unavailability", "daemonset", klog.KObj(ds))
		maxUnavailable = 1
	}
	logger.V(5).Info("DaemonSet with maxSurge and maxUnavailable", "daemonset", klog.KObj(ds), "maxSurge", maxSurge, "maxUnavailable", maxUnavailable)
	return maxSurge, maxUnavailable, desired, nil
}

// History.

// match says whether the revision holds the DaemonSet's template.
func match(ds *appsv1.DaemonSet, rev *appsv1.ControllerRevision) (bool, error) {
	patch, err := history.TemplatePatch(ds)
	if err != nil {
		return false, err
	}
	return bytes.Equal(patch, rev.Data.Raw), nil
}

// constructHistory is the DaemonSet's current revision (created, or
// renumbered to be the newest, as needed) and its old ones.
func (r *Reconciler) constructHistory(ctx context.Context, ds *appsv1.DaemonSet) (cur *appsv1.ControllerRevision, old []*appsv1.ControllerRevision, err error) {
	histories, err := r.controlledHistories(ctx, ds)
	if err != nil {
		return nil, nil, err
	}
	var current []*appsv1.ControllerRevision
	for _, h := range histories {
		if _, ok := h.Labels[HashLabel]; !ok {
			toUpdate := h.DeepCopy()
			if toUpdate.Labels == nil {
				toUpdate.Labels = map[string]string{}
			}
			toUpdate.Labels[HashLabel] = toUpdate.Name
			if h, err = r.Core.AppsV1().ControllerRevisions(ds.Namespace).Update(ctx, toUpdate, metav1.UpdateOptions{}); err != nil {
				return nil, nil, err
			}
		}
		found, err := match(ds, h)
		if err != nil {
			return nil, nil, err
		}
		if found {
			current = append(current, h)
		} else {
			old = append(old, h)
		}
	}
	next := maxRevision(old) + 1
	if len(current) == 0 {
		cur, err = r.snapshot(ctx, ds, next)
		return cur, old, err
	}
	if cur, err = r.dedupCurHistories(ctx, ds, current); err != nil {
		return nil, nil, err
	}
	if cur.Revision < next {
		toUpdate := cur.DeepCopy()
		toUpdate.Revision = next
		if _, err = r.Core.AppsV1().ControllerRevisions(ds.Namespace).Update(ctx, toUpdate, metav1.UpdateOptions{}); err != nil {
			return nil, nil, err
		}
	}
	return cur, old, nil
}

func maxRevision(revs []*appsv1.ControllerRevision) int64 {
	var m int64
	for _, r := range revs {
		m = max(m, r.Revision)
	}
	return m
}

// cleanupHistory deletes the oldest old revisions no pod uses beyond
// revisionHistoryLimit.
func (r *Reconciler) cleanupHistory(ctx context.Context, ds *appsv1.DaemonSet, old []*appsv1.ControllerRevision) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	toKill := len(old) - limit
	if toKill <= 0 {
		return nil
	}
	nodeToPods, err := r.nodesToPods(ctx, ds, true)
	if err != nil {
		return fmt.Errorf("couldn't get node to daemon pod mapping for daemon set %q: %v", ds.Name, err)
	}
	live := map[string]bool{}
	for _, pods := range nodeToPods {
		for _, pod := range pods {
			if h := pod.Labels[HashLabel]; h != "" {
				live[h] = true
			}
		}
	}
	old = slices.Clone(old)
	slices.SortStableFunc(old, func(a, b *appsv1.ControllerRevision) int { return int(a.Revision - b.Revision) })
	for _, h := range old {
		if toKill <= 0 {
			break
		}
		if live[h.Labels[HashLabel]] {
			continue
		}
		if err := r.Core.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, h.Name, metav1.DeleteOptions{}); err != nil {
			return err
		}
		toKill--
	}
	return nil
}

// dedupCurHistories keeps the newest of several revisions holding the
// current template, relabelling the pods of the others.
func (r *Reconciler) dedupCurHistories(ctx context.Context, ds *appsv1.DaemonSet, cur []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	if len(cur) == 1 {
		return cur[0], nil
	}
	var keep *appsv1.ControllerRevision
	var maxRev int64
	for _, c := range cur {
		if c.Revision >= maxRev {
			keep, maxRev = c, c.Revision
		}
	}
	pods, err := r.daemonPods(ctx, ds)
	if err != nil {
		return nil, err
	}
	for _, pod := range pods {
		if pod.Labels[HashLabel] != keep.Labels[HashLabel] {
			patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, HashLabel, keep.Labels[HashLabel])
			if _, err := r.Core.CoreV1().Pods(ds.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range cur {
		if c.Name != keep.Name {
			if err := r.Core.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil {
				return nil, err
			}
		}
	}
	return keep, nil
}

// controlledHistories are the DaemonSet's revisions, adopting matching
// orphans and releasing those it controls that no longer match.
func (r *Reconciler) controlledHistories(ctx context.Context, ds *appsv1.DaemonSet) ([]*appsv1.ControllerRevision, error) {
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var list appsv1.ControllerRevisionList
	if err := r.Client.List(ctx, &list, client.InNamespace(ds.Namespace)); err != nil {
		return nil, err
	}
	revs := make([]*appsv1.ControllerRevision, len(list.Items))
	for i := range list.Items {
		revs[i] = &list.Items[i]
	}
	patch := func(ctx context.Context, obj client.Object, patch []byte) error {
		_, err := r.Core.AppsV1().ControllerRevisions(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	}
	return history.Claim(ctx, r.claimer(ds, selector, patch), revs, nil)
}

// snapshot creates the revision of the DaemonSet's template,
// <ds>-<pod-template hash>; a different revision of that name bumps the
// DaemonSet's collisionCount (and the sync is retried).
func (r *Reconciler) snapshot(ctx context.Context, ds *appsv1.DaemonSet, revision int64) (*appsv1.ControllerRevision, error) {
	patch, err := history.TemplatePatch(ds)
	if err != nil {
		return nil, err
	}
	hash := deployment.ComputeHash(&ds.Spec.Template, ds.Status.CollisionCount)
	name := ds.Name + "-" + hash
	lbls := make(map[string]string, len(ds.Spec.Template.Labels)+1)
	for k, v := range ds.Spec.Template.Labels {
		lbls[k] = v
	}
	lbls[HashLabel] = hash
	h := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       ds.Namespace,
			Labels:          lbls,
			Annotations:     ds.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Data:     runtime.RawExtension{Raw: patch},
		Revision: revision,
	}
	created, err := r.Core.AppsV1().ControllerRevisions(ds.Namespace).Create(ctx, h, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return created, err
	}
	outer := err
	existing, err := r.Core.AppsV1().ControllerRevisions(ds.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if ok, err := match(ds, existing); err != nil {
		return nil, err
	} else if ok {
		return existing, nil
	}
	// A collision: another template with this hash.
	fresh, err := r.Core.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(fresh.Status.CollisionCount, ds.Status.CollisionCount) {
		return nil, fmt.Errorf("found a stale collision count (%d, expected %d) of DaemonSet %q while processing; will retry until it is updated", ds.Status.CollisionCount, fresh.Status.CollisionCount, ds.Name)
	}
	if fresh.Status.CollisionCount == nil {
		fresh.Status.CollisionCount = new(int32)
	}
	*fresh.Status.CollisionCount++
	if _, err := r.Core.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Found a hash collision for DaemonSet - bumping collisionCount to resolve it", "daemonset", klog.KObj(ds), "collisionCount", *fresh.Status.CollisionCount)
	return nil, outer
}
