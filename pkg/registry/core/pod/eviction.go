package pod

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/util/retry"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/registry/policy"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Upstream's eviction constants.
const (
	// MaxDisruptedPodSize: a PDB with more pending evictions than this in
	// status.disruptedPods (not yet seen by the disruption controller)
	// refuses more.
	MaxDisruptedPodSize = 2000
	// msgViolatesBudget is the 429's message.
	msgViolatesBudget = "Cannot evict pod as it would violate the pod's disruption budget."
	// msgMultiplePDBs answers (with a 500, as upstream) a pod several PDBs
	// select.
	msgMultiplePDBs = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)

// EvictionsRetry is upstream's retry of conflicts on the pod and its PDB.
var EvictionsRetry = wait.Backoff{Steps: 20, Duration: 500 * time.Millisecond, Factor: 1.0, Jitter: 0.1}

// PDBStorage is what an eviction reads and writes of PodDisruptionBudgets.
type PDBStorage interface {
	rest.Getter
	rest.Lister
}

// EvictionREST serves pods/eviction as upstream's: a running pod is
// deleted only if the PodDisruptionBudget selecting it allows a
// disruption, which the eviction uses up (status.disruptionsAllowed less
// one, the pod in status.disruptedPods); otherwise 429 TooManyRequests with
// the DisruptionBudget cause. Pending, finished and terminating pods are
// deleted without looking at PDBs. The pod gets the DisruptionTarget
// condition (reason EvictionByEvictionAPI) just before its deletion.
type EvictionREST struct {
	// Store is the pods' storage (reads and the delete); Status their
	// status subresource (the condition).
	Store  *genericregistry.Store
	Status rest.Updater
	// PDBs and PDBStatus are the PodDisruptionBudgets' storage and its
	// status subresource.
	PDBs      PDBStorage
	PDBStatus rest.Updater
	// destroy releases the PDB storage NewEvictionREST made.
	destroy func()
}

var (
	_ rest.NamedCreater             = &EvictionREST{}
	_ rest.GroupVersionKindProvider = &EvictionREST{}
)

// NewEvictionREST serves evictions of the pods of pods and status, with a
// storage of PodDisruptionBudgets of its own from optsGetter.
func NewEvictionREST(pods *genericregistry.Store, status rest.Updater, optsGetter generic.RESTOptionsGetter) (*EvictionREST, error) {
	main, pdbStatus, err := store.New(policy.Resources[0], optsGetter)
	if err != nil {
		return nil, err
	}
	return &EvictionREST{Store: pods, Status: status, PDBs: main, PDBStatus: pdbStatus, destroy: main.Destroy}, nil
}

// GroupVersionKind: the body is a policy/v1 Eviction.
func (r *EvictionREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return policyv1.SchemeGroupVersion.WithKind("Eviction")
}

// New returns an empty Eviction.
func (r *EvictionREST) New() runtime.Object { return &policyv1.Eviction{} }

// Destroy releases the PDB storage; the pod storage owns its store.
func (r *EvictionREST) Destroy() {
	if r.destroy != nil {
		r.destroy()
	}
}

// deleteOptions are the eviction's, with the request's dry-run (which
// must agree with theirs).
func deleteOptions(eviction *policyv1.Eviction, options *metav1.CreateOptions) (*metav1.DeleteOptions, error) {
	var dryRun []string
	if options != nil {
		dryRun = options.DryRun
	}
	if eviction.DeleteOptions == nil {
		return &metav1.DeleteOptions{DryRun: dryRun}, nil
	}
	opts := eviction.DeleteOptions.DeepCopy()
	switch {
	case len(opts.DryRun) == 0:
		opts.DryRun = dryRun
	case len(dryRun) > 0 && !slices.Equal(dryRun, opts.DryRun):
		// Upstream answers this with a 500.
		return nil, apierrors.NewBadRequest(fmt.Sprintf("Non-matching dry-run options in request and content: %v and %v", dryRun, opts.DryRun))
	}
	return opts, nil
}

// Create evicts the named pod.
func (r *EvictionREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	eviction, ok := obj.(*policyv1.Eviction)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not an Eviction object: %T", obj))
	}
	if name != eviction.Name {
		return nil, apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	if ns, ok := genericrequest.NamespaceFrom(ctx); ok && eviction.Namespace != "" && eviction.Namespace != ns {
		return nil, apierrors.NewBadRequest("namespace in URL does not match namespace in Eviction object")
	}
	if eviction.DeleteOptions != nil && ptr.Deref(eviction.DeleteOptions.IgnoreStoreReadErrorWithClusterBreakingPotential, false) {
		return nil, apierrors.NewInvalid(policyv1.SchemeGroupVersion.WithKind("Eviction").GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("deleteOptions").Child("ignoreStoreReadErrorWithClusterBreakingPotential"), true, "can not be set for pod eviction, try after removing the option")})
	}
	original, err := deleteOptions(eviction, options)
	if err != nil {
		return nil, err
	}
	if createValidation != nil {
		if err := createValidation(ctx, eviction.DeepCopyObject()); err != nil {
			return nil, err
		}
	}

	// A pod that is pending, finished or terminating is deleted at once:
	// it is not counted healthy by any budget. Conflicts (it changed
	// between the read and the delete) are retried unless the caller gave
	// a resourceVersion.
	var pod *corev1.Pod
	deleted := false
	shouldRetry := apierrors.IsConflict
	if !resourceVersionUnset(original) {
		shouldRetry = func(error) bool { return false }
	}
	err = retry.OnError(EvictionsRetry, shouldRetry, func() error {
		got, err := r.Store.Get(ctx, name, &metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = got.(*corev1.Pod)
		if !canIgnorePDB(pod) {
			return nil
		}
		opts := original
		if enforceResourceVersion(pod) && resourceVersionUnset(original) {
			// Not racing with the pod turning Ready meanwhile.
			opts = opts.DeepCopy()
			setPreconditionsResourceVersion(opts, pod.ResourceVersion)
		}
		if err := r.addConditionAndDelete(ctx, name, opts); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if deleted {
		return success(), nil
	}

	pdbs, err := r.podPDBs(ctx, pod)
	if err != nil {
		return nil, err
	}
	if len(pdbs) > 1 {
		return &metav1.Status{Status: metav1.StatusFailure, Message: msgMultiplePDBs, Code: 500}, nil
	}
	var pdbName string
	// unready: the pod is not Ready and its deletion needs no budget; it
	// is deleted only if it has not changed since (not turned Ready).
	unready := false
	if len(pdbs) == 1 {
		pdb := &pdbs[0]
		pdbName = pdb.Name
		if !isPodReady(pod) && (pdb.Spec.UnhealthyPodEvictionPolicy != nil && *pdb.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow ||
			pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0) {
			// AlwaysAllow, or IfHealthyBudget (the default) with the
			// guarded application not disrupted now.
			unready = true
		} else if err := r.decrement(ctx, pod, pdb, isDryRun(original)); err != nil {
			return nil, err
		}
	}

	opts := original
	if unready {
		opts = opts.DeepCopy()
		setPreconditionsResourceVersion(opts, pod.ResourceVersion)
	}
	if err := r.addConditionAndDelete(ctx, name, opts); err != nil {
		if apierrors.IsConflict(err) && unready && resourceVersionUnset(original) {
			// The pod changed; the client is to try again.
			return nil, tooManyRequestsStillProcessing(pdbName)
		}
		return nil, err
	}
	return success(), nil
}

func success() *metav1.Status {
	return &metav1.Status{Status: metav1.StatusSuccess, Code: 201}
}

// decrement takes one of the PDB's allowed disruptions and records the pod
// in its disruptedPods (not on a dry run), re-reading it on conflicts.
func (r *EvictionREST) decrement(ctx context.Context, pod *corev1.Pod, pdb *policyv1.PodDisruptionBudget, dryRun bool) error {
	refresh := false
	return retry.RetryOnConflict(EvictionsRetry, func() error {
		if refresh {
			got, err := r.PDBs.Get(ctx, pdb.Name, &metav1.GetOptions{})
			if err != nil {
				return err
			}
			pdb = got.(*policyv1.PodDisruptionBudget)
		}
		refresh = true
		return r.checkAndDecrement(ctx, pod.Name, pdb.DeepCopy(), dryRun)
	})
}

// checkAndDecrement refuses the eviction if the PDB allows no disruption
// now, else writes it with one fewer.
func (r *EvictionREST) checkAndDecrement(ctx context.Context, podName string, pdb *policyv1.PodDisruptionBudget, dryRun bool) error {
	if pdb.Status.ObservedGeneration < pdb.Generation {
		return tooManyRequestsStillProcessing(pdb.Name)
	}
	if pdb.Status.DisruptionsAllowed < 0 {
		return forbiddenByBudget(pdb.Name, "pdb disruptions allowed is negative", "pdb disruptions allowed is negative")
	}
	if len(pdb.Status.DisruptedPods) > MaxDisruptedPodSize {
		return forbiddenByBudget(pdb.Name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
			"too many pending evictions not confirmed by PDB controller")
	}
	if pdb.Status.DisruptionsAllowed == 0 {
		err := apierrors.NewTooManyRequests(msgViolatesBudget, 0)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: policyv1.DisruptionBudgetCause, Message: noDisruptionMessage(pdb)})
		return err
	}
	pdb.Status.DisruptionsAllowed--
	if pdb.Status.DisruptionsAllowed == 0 {
		pdbhelper.UpdateDisruptionAllowedCondition(pdb)
	}
	if dryRun {
		return nil
	}
	if pdb.Status.DisruptedPods == nil {
		pdb.Status.DisruptedPods = map[string]metav1.Time{}
	}
	// The disruption controller does not count the pod healthy while it
	// is there (2 minutes at most).
	pdb.Status.DisruptedPods[podName] = metav1.Time{Time: time.Now()}
	_, _, err := r.PDBStatus.Update(ctx, pdb.Name, rest.DefaultUpdatedObjectInfo(pdb), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	return err
}

// noDisruptionMessage is upstream's cause of a 429 for a PDB allowing no
// disruption.
func noDisruptionMessage(pdb *policyv1.PodDisruptionBudget) string {
	c := meta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition)
	switch {
	// DesiredHealthy and CurrentHealthy mean nothing after a failed sync.
	case c != nil && c.Status == metav1.ConditionFalse && c.Message != "" && c.Reason == policyv1.SyncFailedReason:
		return fmt.Sprintf("The disruption budget %s does not allow evicting pods currently because it failed sync: %s", pdb.Name, c.Message)
	case pdb.Status.CurrentHealthy <= pdb.Status.DesiredHealthy:
		return fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy)
	case c != nil && c.Status == metav1.ConditionFalse && c.Message != "":
		return fmt.Sprintf("The disruption budget %s does not allow evicting pods currently (%s): %s", pdb.Name, c.Reason, c.Message)
	}
	return fmt.Sprintf("The disruption budget %s does not allow evicting pods currently", pdb.Name)
}

func forbiddenByBudget(name, reason, cause string) error {
	err := apierrors.NewForbidden(policyv1.Resource("poddisruptionbudget"), name, errors.New(reason))
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    policyv1.DisruptionBudgetCause,
		Message: fmt.Sprintf("The disruption budget %s does not allow evicting pods currently: %s", name, cause)})
	return err
}

// tooManyRequestsStillProcessing: the PDB's status is behind its spec (or
// the pod changed); try again in 10s.
func tooManyRequestsStillProcessing(name string) error {
	err := apierrors.NewTooManyRequests(msgViolatesBudget, 10)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: policyv1.DisruptionBudgetCause, Message: fmt.Sprintf("The disruption budget %s is still being processed by the server.", name)})
	return err
}

// podPDBs are the PDBs of the pod's namespace selecting it.
func (r *EvictionREST) podPDBs(ctx context.Context, pod *corev1.Pod) ([]policyv1.PodDisruptionBudget, error) {
	got, err := r.PDBs.List(genericrequest.WithNamespace(ctx, pod.Namespace), &metainternalversion.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []policyv1.PodDisruptionBudget
	for _, pdb := range got.(*policyv1.PodDisruptionBudgetList).Items {
		if pdb.Namespace != pod.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			// An invalid selector matches nothing.
			continue
		}
		out = append(out, pdb)
	}
	return out, nil
}

// addConditionAndDelete gives the pod the DisruptionTarget condition (not
// on a dry run) and deletes it with opts; the condition's write honours
// opts' preconditions, whose resourceVersion then becomes the written one.
func (r *EvictionREST) addConditionAndDelete(ctx context.Context, name string, opts *metav1.DeleteOptions) error {
	if !isDryRun(opts) {
		latest := func(_ context.Context, _, old runtime.Object) (runtime.Object, error) {
			pod := old.(*corev1.Pod).DeepCopy()
			if p := opts.Preconditions; p != nil {
				if p.UID != nil && *p.UID != "" && *p.UID != pod.UID {
					return nil, apierrors.NewConflict(schema.GroupResource{Resource: "Pod"}, pod.Name,
						fmt.Errorf("the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *p.UID, pod.UID))
				}
				if p.ResourceVersion != nil && *p.ResourceVersion != "" && *p.ResourceVersion != pod.ResourceVersion {
					return nil, apierrors.NewConflict(schema.GroupResource{Resource: "Pod"}, pod.Name,
						fmt.Errorf("the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified", *p.ResourceVersion, pod.ResourceVersion))
				}
			}
			return pod, nil
		}
		addCondition := func(_ context.Context, obj, _ runtime.Object) (runtime.Object, error) {
			pod := obj.(*corev1.Pod)
			setCondition(&pod.Status, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"})
			return pod, nil
		}
		updated, _, err := r.Status.Update(ctx, name, rest.DefaultUpdatedObjectInfo(nil, latest, addCondition),
			rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		if !resourceVersionUnset(opts) {
			rv, err := meta.NewAccessor().ResourceVersion(updated)
			if err != nil {
				return err
			}
			opts = opts.DeepCopy()
			opts.Preconditions.ResourceVersion = &rv
		}
	}
	_, _, err := r.Store.Delete(ctx, name, rest.ValidateAllObjectFunc, opts)
	return err
}

// setCondition is upstream's UpdatePodCondition: the transition time moves
// only when the status changes.
func setCondition(status *corev1.PodStatus, c corev1.PodCondition) {
	c.LastTransitionTime = metav1.Now()
	for i := range status.Conditions {
		if old := status.Conditions[i]; old.Type == c.Type {
			if old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			status.Conditions[i] = c
			return
		}
	}
	status.Conditions = append(status.Conditions, c)
}

func isPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func isDryRun(opts *metav1.DeleteOptions) bool {
	return len(opts.DryRun) > 0
}

// canIgnorePDB: the pod is pending, finished or terminating, so deleting
// it disrupts nothing a budget counts.
func canIgnorePDB(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// enforceResourceVersion: a pending pod is deleted only if unchanged (not
// turned Ready meanwhile).
func enforceResourceVersion(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && pod.DeletionTimestamp == nil
}

func resourceVersionUnset(opts *metav1.DeleteOptions) bool {
	return opts.Preconditions == nil || opts.Preconditions.ResourceVersion == nil
}

func setPreconditionsResourceVersion(opts *metav1.DeleteOptions, rv string) {
	if opts.Preconditions == nil {
		opts.Preconditions = &metav1.Preconditions{}
	}
	opts.Preconditions.ResourceVersion = &rv
}
