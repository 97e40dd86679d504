// Package disruption keeps the status of PodDisruptionBudgets, as
// upstream's disruption-controller: how many of the selected pods are
// healthy (Ready, not being deleted, not just evicted), how many must be
// (minAvailable, or the expected pods less maxUnavailable; percentages and
// maxUnavailable count the scale of the pods' controllers), how many
// disruptions are allowed, the DisruptionAllowed condition, and the pods
// the eviction subresource evicted (disruptedPods), forgotten once deleted
// or after 2 minutes. A second reconciler turns a pod's DisruptionTarget
// condition False when the pod was not deleted within 2 minutes of it.
package disruption

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/record"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// Upstream's constants.
const (
	// Name is upstream's name of the controller.
	Name = "disruption-controller"
	// EventSource is the component of its events, upstream's.
	EventSource = "controllermanager"
	// DeletionTimeout is how long an evicted pod (in disruptedPods) is not
	// counted healthy while it is not yet seen deleted.
	DeletionTimeout = 2 * time.Minute
	// StalePodDisruptionTimeout is how long a pod may keep a True
	// DisruptionTarget condition without being deleted.
	StalePodDisruptionTimeout = 2 * time.Minute
)

// Reconciler computes PodDisruptionBudgets' status.
type Reconciler struct {
	// Client reads through the manager's cache and writes the status.
	Client ctrl.Client
	// Scales reads the scale subresource of the pods' controllers that
	// are none of RC, ReplicaSet, Deployment, StatefulSet; Mapper maps
	// their kinds to resources, Discovery tells whether a resource has
	// /scale at all.
	Scales    scale.ScalesGetter
	Mapper    apimeta.RESTMapper
	Discovery discovery.DiscoveryInterface
	// Recorder gets the events; nil: none.
	Recorder record.EventRecorder
	// Clock is the time (tests); nil: the real one.
	Clock clock.PassiveClock

	once sync.Once
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.Recorder == nil {
			r.Recorder = &record.FakeRecorder{}
		}
	})
}

// Reconcile brings one PDB's status up to date; a failure other than a
// conflict sets disruptionsAllowed to 0 with the SyncFailed condition. It
// comes back when the first of the disruptedPods times out.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	d, err := r.sync(ctx, req.NamespacedName)
	return reconcile.Result{RequeueAfter: d}, err
}

func (r *Reconciler) sync(ctx context.Context, req ctrl.ObjectKey) (time.Duration, error) {
	r.init()
	logger := klog.FromContext(ctx)
	start := r.Clock.Now()
	defer func() {
		logger.V(4).Info("Finished syncing PodDisruptionBudget", "key", req, "duration", r.Clock.Since(start))
	}()
	pdb := &policyv1.PodDisruptionBudget{}
	if err := r.Client.Get(ctx, req, pdb); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("podDisruptionBudget has been deleted", "key", req)
			return 0, nil
		}
		return 0, err
	}
	recheck, err := r.trySync(ctx, pdb)
	if apierrors.IsConflict(err) {
		return 0, err
	}
	if err != nil {
		logger.Error(err, "Failed to sync PDB", "podDisruptionBudget", klog.KObj(pdb))
		return 0, r.failSafe(ctx, pdb, err)
	}
	return recheck, nil
}

func (r *Reconciler) trySync(ctx context.Context, pdb *policyv1.PodDisruptionBudget) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	pods, err := r.podsForPDB(ctx, pdb)
	if err != nil {
		r.Recorder.Eventf(pdb, corev1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return 0, err
	}
	if len(pods) == 0 {
		r.Recorder.Eventf(pdb, corev1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	expected, desired, unmanaged, err := r.expectedPodCount(ctx, pdb, pods)
	if err != nil {
		r.Recorder.Eventf(pdb, corev1.EventTypeWarning, "CalculateExpectedPodCountFailed", "Failed to calculate the number of expected pods: %v", err)
		return 0, err
	}
	if len(unmanaged) > 0 {
		logger.V(4).Info("Found unmanaged pods associated with this PDB", "pods", unmanaged)
		r.Recorder.Eventf(pdb, corev1.EventTypeWarning, "UnmanagedPods", "Pods selected by this PodDisruptionBudget (selector: %v) were found "+
			"to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. "+
			"To account for these pods please set \".spec.minAvailable\" "+
			"field of the PDB to an integer value.", pdb.Spec.Selector)
	}
	now := r.Clock.Now()
	disrupted, recheckAt := r.disruptedPods(logger, pods, pdb, now)
	healthy := countHealthy(pods, disrupted, now)
	if err := r.updateStatus(ctx, pdb, healthy, desired, expected, disrupted); err != nil {
		return 0, err
	}
	if recheckAt != nil {
		return recheckAt.Sub(now), nil
	}
	return 0, nil
}

// podsForPDB are the cache's pods the PDB selects (not to be modified).
func (r *Reconciler) podsForPDB(ctx context.Context, pdb *policyv1.PodDisruptionBudget) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, ctrl.InNamespace(pdb.Namespace), ctrl.MatchingLabelsSelector{Selector: sel}, ctrl.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// expectedPodCount is upstream's: maxUnavailable and a percentage
// minAvailable count the scale of the pods' controllers, an integer
// minAvailable the pods.
func (r *Reconciler) expectedPodCount(ctx context.Context, pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desired int32, unmanaged []string, err error) {
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		expected, unmanaged, err = r.expectedScale(ctx, pods)
		if err != nil {
			return 0, 0, nil, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return 0, 0, nil, err
		}
		desired = max(expected-int32(maxUnavailable), 0)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		desired = pdb.Spec.MinAvailable.IntVal
		expected = int32(len(pods))
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.String:
		expected, unmanaged, err = r.expectedScale(ctx, pods)
		if err != nil {
			return 0, 0, nil, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return 0, 0, nil, err
		}
		desired = int32(minAvailable)
	}
	return expected, desired, unmanaged, nil
}

// expectedScale sums the scale of the controllers of the pods; pods
// without a controller are returned by name.
func (r *Reconciler) expectedScale(ctx context.Context, pods []*corev1.Pod) (int32, []string, error) {
	scales := map[types.UID]int32{}
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if _, ok := scales[ref.UID]; ok {
			continue
		}
		found := false
		for _, finder := range r.finders() {
			c, err := finder(ctx, ref, pod.Namespace)
			if err != nil {
				return 0, nil, err
			}
			if c != nil {
				scales[c.uid] = c.scale
				found = true
				break
			}
		}
		if !found {
			return 0, nil, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
	}
	var sum int32
	for _, n := range scales {
		sum += n
	}
	return sum, unmanaged, nil
}

// countHealthy counts the Ready pods neither being deleted nor evicted
// less than DeletionTimeout ago.
func countHealthy(pods []*corev1.Pod, disrupted map[string]metav1.Time, now time.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if at, ok := disrupted[pod.Name]; ok && at.Add(DeletionTimeout).After(now) {
			continue
		}
		if podutil.IsPodReady(pod) {
			n++
		}
	}
	return n
}

// disruptedPods keeps the entries of status.disruptedPods whose pods
// exist, are not being deleted and were evicted less than DeletionTimeout
// ago; it also says when the first of those times out.
func (r *Reconciler) disruptedPods(logger klog.Logger, pods []*corev1.Pod, pdb *policyv1.PodDisruptionBudget, now time.Time) (map[string]metav1.Time, *time.Time) {
	result := map[string]metav1.Time{}
	var recheck *time.Time
	if pdb.Status.DisruptedPods == nil {
		return result, nil
	}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		at, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok {
			continue
		}
		expected := at.Add(DeletionTimeout)
		if expected.Before(now) {
			logger.V(1).Info("pod was expected to be deleted but it wasn't, updating PDB",
				"pod", klog.KObj(pod), "deletionTime", at, "podDisruptionBudget", klog.KObj(pdb))
			r.Recorder.Eventf(pod, corev1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't",
				pdb.Namespace, pdb.Name)
			continue
		}
		if recheck == nil || expected.Before(*recheck) {
			recheck = &expected
		}
		result[pod.Name] = at
	}
	return result, recheck
}

// failSafe sets disruptionsAllowed to 0 with the SyncFailed condition, so
// that no eviction is approved on a status that may be wrong.
func (r *Reconciler) failSafe(ctx context.Context, pdb *policyv1.PodDisruptionBudget, cause error) error {
	pdb = pdb.DeepCopy()
	pdb.Status.DisruptionsAllowed = 0
	if pdb.Status.Conditions == nil {
		pdb.Status.Conditions = []metav1.Condition{}
	}
	apimeta.SetStatusCondition(&pdb.Status.Conditions, metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.SyncFailedReason,
		Message:            cause.Error(),
		ObservedGeneration: pdb.Status.ObservedGeneration,
	})
	return r.Client.Status().Update(ctx, pdb)
}

func (r *Reconciler) updateStatus(ctx context.Context, pdb *policyv1.PodDisruptionBudget, healthy, desired, expected int32, disrupted map[string]metav1.Time) error {
	// A PDB matching no pods yet allows nothing, so that its first pods
	// are safe before this controller has seen them.
	allowed := healthy - desired
	if expected <= 0 || allowed <= 0 {
		allowed = 0
	}
	s := pdb.Status
	if s.CurrentHealthy == healthy && s.DesiredHealthy == desired && s.ExpectedPods == expected &&
		s.DisruptionsAllowed == allowed && apiequality.Semantic.DeepEqual(s.DisruptedPods, disrupted) &&
		s.ObservedGeneration == pdb.Generation && pdbhelper.ConditionsAreUpToDate(pdb) {
		return nil
	}
	pdb = pdb.DeepCopy()
	pdb.Status = policyv1.PodDisruptionBudgetStatus{
		CurrentHealthy:     healthy,
		DesiredHealthy:     desired,
		ExpectedPods:       expected,
		DisruptionsAllowed: allowed,
		DisruptedPods:      disrupted,
		ObservedGeneration: pdb.Generation,
		Conditions:         pdb.Status.Conditions,
	}
	pdbhelper.UpdateDisruptionAllowedCondition(pdb)
	return r.Client.Status().Update(ctx, pdb)
}

// PDBsForPod are the PDBs of the pod's namespace whose selector matches
// its labels (an invalid selector matches nothing), by name.
func PDBsForPod(pod *corev1.Pod, pdbs []policyv1.PodDisruptionBudget) []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for i := range pdbs {
		pdb := &pdbs[i]
		if pdb.Namespace != pod.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, pdb)
	}
	slices.SortFunc(out, func(a, b *policyv1.PodDisruptionBudget) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// groupOf is the group of an apiVersion ("" if it does not parse).
func groupOf(apiVersion string) (string, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	return gv.Group, err
}
