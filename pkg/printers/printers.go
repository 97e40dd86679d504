// Package printers produces the server-side Table output (what `kubectl get`
// and `kubectl get -o wide` print) for the resources skiff serves.
//
// Columns, descriptions, priorities and cell formatting follow upstream
// Kubernetes' pkg/printers/internalversion, re-implemented on top of the
// versioned k8s.io/api types. As upstream's printerstorage does, tables are
// always generated "wide": priority-1 columns are included and clients such as
// kubectl hide them unless -o wide is requested.
package printers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"
)

// convertors maps every served resource to its table convertor.
var convertors = map[schema.GroupResource]rest.TableConvertor{
	// core
	{Group: "", Resource: "pods"}:                   podTable,
	{Group: "", Resource: "podtemplates"}:           podTemplateTable,
	{Group: "", Resource: "namespaces"}:             namespaceTable,
	{Group: "", Resource: "services"}:               serviceTable,
	{Group: "", Resource: "endpoints"}:              endpointsTable,
	{Group: "", Resource: "configmaps"}:             configMapTable,
	{Group: "", Resource: "secrets"}:                secretTable,
	{Group: "", Resource: "serviceaccounts"}:        serviceAccountTable,
	{Group: "", Resource: "nodes"}:                  nodeTable,
	{Group: "", Resource: "events"}:                 eventTable,
	{Group: "", Resource: "resourcequotas"}:         resourceQuotaTable,
	{Group: "", Resource: "limitranges"}:            defaultTable("", "limitranges"),
	{Group: "", Resource: "persistentvolumes"}:      persistentVolumeTable,
	{Group: "", Resource: "persistentvolumeclaims"}: persistentVolumeClaimTable,
	{Group: "", Resource: "replicationcontrollers"}: replicationControllerTable,

	// apps
	{Group: "apps", Resource: "deployments"}:         deploymentTable,
	{Group: "apps", Resource: "replicasets"}:         replicaSetTable,
	{Group: "apps", Resource: "statefulsets"}:        statefulSetTable,
	{Group: "apps", Resource: "daemonsets"}:          daemonSetTable,
	{Group: "apps", Resource: "controllerrevisions"}: controllerRevisionTable,

	{Group: "autoscaling", Resource: "horizontalpodautoscalers"}: horizontalPodAutoscalerTable,

	// batch
	{Group: "batch", Resource: "jobs"}:     jobTable,
	{Group: "batch", Resource: "cronjobs"}: cronJobTable,

	{Group: "coordination.k8s.io", Resource: "leases"}:      leaseTable,
	{Group: "discovery.k8s.io", Resource: "endpointslices"}: endpointSliceTable,
	// events.k8s.io Events are stored and printed as core Events.
	{Group: "events.k8s.io", Resource: "events"}: eventTable,

	// rbac.authorization.k8s.io
	{Group: "rbac.authorization.k8s.io", Resource: "roles"}:               defaultTable("rbac.authorization.k8s.io", "roles"),
	{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}:        defaultTable("rbac.authorization.k8s.io", "clusterroles"),
	{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}:        roleBindingTable,
	{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}: clusterRoleBindingTable,

	// networking.k8s.io
	{Group: "networking.k8s.io", Resource: "networkpolicies"}: networkPolicyTable,
	{Group: "networking.k8s.io", Resource: "ingresses"}:       ingressTable,
	{Group: "networking.k8s.io", Resource: "ingressclasses"}:  ingressClassTable,

	{Group: "policy", Resource: "poddisruptionbudgets"}:                    podDisruptionBudgetTable,
	{Group: "scheduling.k8s.io", Resource: "priorityclasses"}:              priorityClassTable,
	{Group: "node.k8s.io", Resource: "runtimeclasses"}:                     runtimeClassTable,
	{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}: certificateSigningRequestTable,

	// storage.k8s.io
	{Group: "storage.k8s.io", Resource: "storageclasses"}:    storageClassTable,
	{Group: "storage.k8s.io", Resource: "csidrivers"}:        csiDriverTable,
	{Group: "storage.k8s.io", Resource: "csinodes"}:          csiNodeTable,
	{Group: "storage.k8s.io", Resource: "volumeattachments"}: volumeAttachmentTable,
}

// ForResource returns the TableConvertor for a served resource, or nil if there is none
// (the caller then falls back to the default NAME/CREATED AT convertor).
//
// Resources for which upstream itself uses the default convertor (roles,
// clusterroles, limitranges) get rest.NewDefaultTableConvertor.
func ForResource(gr schema.GroupResource) rest.TableConvertor {
	if c, ok := convertors[gr]; ok {
		return c
	}
	return nil
}

// defaultTable is the convertor upstream uses for resources without a printer.
func defaultTable(group, resource string) rest.TableConvertor {
	return rest.NewDefaultTableConvertor(schema.GroupResource{Group: group, Resource: resource})
}

// table is a rest.TableConvertor for objects of Go type T (and lists of them).
type table[T runtime.Object] struct {
	columns []metav1.TableColumnDefinition
	// cells returns one cell per column for a single object.
	cells func(obj T) ([]any, error)
	// conditions optionally returns row conditions (used by pods).
	conditions func(obj T) []metav1.TableRowCondition
	// forList optionally returns a cells func that depends on the whole
	// list being printed (used by storage classes to mark the default).
	forList func(items []T) func(obj T) ([]any, error)
}

// newTable builds a table whose cells func cannot fail.
func newTable[T runtime.Object](columns []metav1.TableColumnDefinition, cells func(obj T) []any) *table[T] {
	return &table[T]{
		columns: columns,
		cells:   func(obj T) ([]any, error) { return cells(obj), nil },
	}
}

// ConvertToTable behaves like upstream's printerstorage.TableConvertor backed
// by printers.HumanReadableGenerator, always generating wide output.
func (t *table[T]) ConvertToTable(_ context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	noHeaders := false
	if tableOptions != nil {
		switch opts := tableOptions.(type) {
		case *metav1.TableOptions:
			if opts != nil {
				noHeaders = opts.NoHeaders
			}
		default:
			return nil, fmt.Errorf("unrecognized type %T for table options, can't display tabular output", tableOptions)
		}
	}

	items, isList, err := t.items(object)
	if err != nil {
		return nil, err
	}
	cells := t.cells
	if isList && t.forList != nil {
		cells = t.forList(items)
	}

	rows := make([]metav1.TableRow, 0, len(items))
	for _, item := range items {
		c, err := cells(item)
		if err != nil {
			return nil, err
		}
		row := metav1.TableRow{Cells: c, Object: runtime.RawExtension{Object: item}}
		if t.conditions != nil {
			row.Conditions = t.conditions(item)
		}
		rows = append(rows, row)
	}

	out := &metav1.Table{Rows: rows}
	if !noHeaders {
		out.ColumnDefinitions = t.columns
	}
	if m, err := meta.ListAccessor(object); err == nil {
		out.ResourceVersion = m.GetResourceVersion()
		out.Continue = m.GetContinue()
		out.RemainingItemCount = m.GetRemainingItemCount()
	} else if m, err := meta.CommonAccessor(object); err == nil {
		out.ResourceVersion = m.GetResourceVersion()
	}
	return out, nil
}

// items returns the objects to print: the object itself, or the items of a list.
func (t *table[T]) items(object runtime.Object) ([]T, bool, error) {
	if obj, ok := object.(T); ok {
		return []T{obj}, false, nil
	}
	if !meta.IsListType(object) {
		return nil, false, fmt.Errorf("no table handler registered for this type %T", object)
	}
	objs, err := meta.ExtractList(object)
	if err != nil {
		return nil, true, err
	}
	items := make([]T, 0, len(objs))
	for _, o := range objs {
		item, ok := o.(T)
		if !ok {
			return nil, true, fmt.Errorf("no table handler registered for this type %T", o)
		}
		items = append(items, item)
	}
	return items, true, nil
}
