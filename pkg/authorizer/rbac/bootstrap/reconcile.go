package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-helpers/auth/rbac/reconciliation"
	"k8s.io/klog/v2"
)

// Ensure reconciles the bootstrap policy as kube-apiserver's
// rbac/bootstrap-roles post-start hook: missing objects are created, and
// existing ones get the rules and subjects they lack unless annotated
// rbac.authorization.kubernetes.io/autoupdate: "false"; nothing is removed.
// It retries for up to timeout until every object reconciled.
func Ensure(ctx context.Context, client kubernetes.Interface, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		last = reconcileAll(ctx, client)
		if last != nil {
			klog.V(2).InfoS("Reconciling the bootstrap RBAC policy failed, will retry", "err", last)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("unable to initialize roles: %w (last: %v)", err, last)
	}
	return nil
}

func retryable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServiceUnavailable(err)
}

func reconcileAll(ctx context.Context, client kubernetes.Interface) error {
	// Is the storage answering at all?
	if _, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return err
	}
	var errs []error
	rbacClient := client.RbacV1()
	for _, role := range ClusterRoles() {
		opts := reconciliation.ReconcileRoleOptions{
			Role:    reconciliation.ClusterRoleRuleOwner{ClusterRole: &role},
			Client:  reconciliation.ClusterRoleModifier{Client: rbacClient.ClusterRoles()},
			Confirm: true,
		}
		errs = append(errs, retry.OnError(retry.DefaultBackoff, retryable, func() error {
			result, err := opts.Run()
			if err == nil {
				logRole(result, "clusterrole", "", role.Name)
			}
			return err
		}))
	}
	for _, binding := range ClusterRoleBindings() {
		opts := reconciliation.ReconcileRoleBindingOptions{
			RoleBinding: reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: &binding},
			Client:      reconciliation.ClusterRoleBindingClientAdapter{Client: rbacClient.ClusterRoleBindings()},
			Confirm:     true,
		}
		errs = append(errs, retry.OnError(retry.DefaultBackoff, retryable, func() error {
			result, err := opts.Run()
			if err == nil {
				logBinding(result, "clusterrolebinding", "", binding.Name)
			}
			return err
		}))
	}
	for ns, roles := range Roles() {
		for _, role := range roles {
			opts := reconciliation.ReconcileRoleOptions{
				Role:    reconciliation.RoleRuleOwner{Role: &role},
				Client:  reconciliation.RoleModifier{Client: rbacClient, NamespaceClient: client.CoreV1().Namespaces()},
				Confirm: true,
			}
			errs = append(errs, retry.OnError(retry.DefaultBackoff, retryable, func() error {
				result, err := opts.Run()
				if err == nil {
					logRole(result, "role", ns, role.Name)
				}
				return err
			}))
		}
	}
	for ns, bindings := range RoleBindings() {
		for _, binding := range bindings {
			opts := reconciliation.ReconcileRoleBindingOptions{
				RoleBinding: reconciliation.RoleBindingAdapter{RoleBinding: &binding},
				Client:      reconciliation.RoleBindingClientAdapter{Client: rbacClient, NamespaceClient: client.CoreV1().Namespaces()},
				Confirm:     true,
			}
			errs = append(errs, retry.OnError(retry.DefaultBackoff, retryable, func() error {
				result, err := opts.Run()
				if err == nil {
					logBinding(result, "rolebinding", ns, binding.Name)
				}
				return err
			}))
		}
	}
	return errors.Join(errs...)
}

func logRole(r *reconciliation.ReconcileClusterRoleResult, kind, ns, name string) {
	switch {
	case r.Protected && r.Operation != reconciliation.ReconcileNone:
		klog.InfoS("Skipped reconcile-protected RBAC role with missing permissions", "kind", kind, "namespace", ns, "name", name, "missing", r.MissingRules)
	case r.Operation == reconciliation.ReconcileUpdate:
		klog.V(2).InfoS("Updated RBAC role with additional permissions", "kind", kind, "namespace", ns, "name", name, "missing", r.MissingRules)
	case r.Operation == reconciliation.ReconcileCreate:
		klog.V(2).InfoS("Created RBAC role", "kind", kind, "namespace", ns, "name", name)
	}
}

func logBinding(r *reconciliation.ReconcileClusterRoleBindingResult, kind, ns, name string) {
	switch {
	case r.Protected && r.Operation != reconciliation.ReconcileNone:
		klog.InfoS("Skipped reconcile-protected RBAC binding with missing subjects", "kind", kind, "namespace", ns, "name", name, "missing", r.MissingSubjects)
	case r.Operation != reconciliation.ReconcileNone:
		klog.V(2).InfoS("Reconciled RBAC binding", "kind", kind, "namespace", ns, "name", name, "operation", r.Operation)
	}
}
