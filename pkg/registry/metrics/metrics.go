// Package metrics serves metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics
// from skiff's own API server, read-only as metrics-server serves them
// (get and list, label selectors, no watch): each request reads the Nodes
// and Pods from their storage and asks a Source what the nodes report.
package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// Group is metrics.k8s.io.
const Group = metricsv1beta1.GroupName

var (
	nodesResource = schema.GroupResource{Group: Group, Resource: "nodes"}
	podsResource  = schema.GroupResource{Group: Group, Resource: "pods"}
)

// A Source is what the nodes report: the usage of a node and of the
// containers of a pod bound to it, with when and over which interval it
// was measured.
type Source interface {
	// NodeUsage is node's usage given the pods bound to it; ok false if
	// the node reports none.
	NodeUsage(node *corev1.Node, pods []*corev1.Pod) (usage corev1.ResourceList, at TimeInfo, ok bool)
	// PodUsage is the usage of each of the pod's containers; ok false if
	// its node reports none for it (yet).
	PodUsage(node *corev1.Node, pod *corev1.Pod) (containers []metricsv1beta1.ContainerMetrics, at TimeInfo, ok bool)
}

// TimeInfo is when a usage was measured (the end of its window) and the
// window its CPU rate is over.
type TimeInfo struct {
	// Timestamp zero: the time of the request.
	Timestamp time.Time
	Window    time.Duration
}

// ByRuntime is the Source of a cluster mixing simulated nodes (Simulated)
// and nodes running pods (Real, e.g. their kubelets scraped).
type ByRuntime struct{ Real Source }

var _ Source = ByRuntime{}

func (b ByRuntime) pick(node *corev1.Node) Source {
	if IsSimulated(node) || b.Real == nil {
		return Simulated{}
	}
	return b.Real
}

// NodeUsage asks the node's source.
func (b ByRuntime) NodeUsage(node *corev1.Node, pods []*corev1.Pod) (corev1.ResourceList, TimeInfo, bool) {
	return b.pick(node).NodeUsage(node, pods)
}

// PodUsage asks the source of the pod's node.
func (b ByRuntime) PodUsage(node *corev1.Node, pod *corev1.Pod) ([]metricsv1beta1.ContainerMetrics, TimeInfo, bool) {
	return b.pick(node).PodUsage(node, pod)
}

// Storage serves nodes and pods of metrics.k8s.io from the core group's
// node and pod storage.
func Storage(core map[string]rest.Storage, source Source) (map[string]rest.Storage, error) {
	nodes, okNodes := core["nodes"].(lister)
	pods, okPods := core["pods"].(lister)
	if !okNodes || !okPods {
		return nil, fmt.Errorf("metrics.k8s.io needs the core nodes and pods storage")
	}
	r := &reader{nodes: nodes, pods: pods, source: source, now: time.Now}
	return map[string]rest.Storage{
		"nodes": &NodeMetricsREST{r},
		"pods":  &PodMetricsREST{r},
	}, nil
}

type lister interface {
	rest.Lister
	rest.Getter
}

type reader struct {
	nodes, pods lister
	source      Source
	now         func() time.Time
}

func (r *reader) listNodes(ctx context.Context, options *metainternalversion.ListOptions) ([]corev1.Node, error) {
	obj, err := r.nodes.List(genericapirequest.WithNamespace(ctx, ""), options)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.NodeList).Items, nil
}

func (r *reader) listPods(ctx context.Context, namespace string, options *metainternalversion.ListOptions) ([]corev1.Pod, error) {
	obj, err := r.pods.List(genericapirequest.WithNamespace(ctx, namespace), options)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.PodList).Items, nil
}

// selectors keeps only the label selector for the underlying list; the
// field selector is matched against the metrics objects (metadata.name,
// metadata.namespace), as metrics-server does.
func selectors(options *metainternalversion.ListOptions) (*metainternalversion.ListOptions, fields.Selector) {
	out := &metainternalversion.ListOptions{}
	sel := fields.Everything()
	if options != nil {
		out.LabelSelector = options.LabelSelector
		if options.FieldSelector != nil {
			sel = options.FieldSelector
		}
	}
	return out, sel
}

func (r *reader) nodeMetrics(node *corev1.Node, pods []*corev1.Pod) (*metricsv1beta1.NodeMetrics, bool) {
	usage, at, ok := r.source.NodeUsage(node, pods)
	if !ok {
		return nil, false
	}
	now := metav1.NewTime(r.now())
	return &metricsv1beta1.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: node.Labels, CreationTimestamp: now},
		Timestamp:  r.timestamp(at), Window: metav1.Duration{Duration: at.Window}, Usage: usage,
	}, true
}

func (r *reader) podMetrics(node *corev1.Node, pod *corev1.Pod) (*metricsv1beta1.PodMetrics, bool) {
	if node == nil {
		return nil, false
	}
	containers, at, ok := r.source.PodUsage(node, pod)
	if !ok {
		return nil, false
	}
	now := metav1.NewTime(r.now())
	return &metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels, CreationTimestamp: now},
		Timestamp:  r.timestamp(at), Window: metav1.Duration{Duration: at.Window}, Containers: containers,
	}, true
}

// timestamp is when the usage was measured, now if the source has no time.
func (r *reader) timestamp(at TimeInfo) metav1.Time {
	if at.Timestamp.IsZero() {
		return metav1.NewTime(r.now())
	}
	return metav1.NewTime(at.Timestamp)
}

func podsByNode(pods []corev1.Pod) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for i := range pods {
		if n := pods[i].Spec.NodeName; n != "" {
			out[n] = append(out[n], &pods[i])
		}
	}
	return out
}

// NodeMetricsREST serves metrics.k8s.io/v1beta1 nodes.
type NodeMetricsREST struct{ r *reader }

var (
	_ rest.Storage              = &NodeMetricsREST{}
	_ rest.Getter               = &NodeMetricsREST{}
	_ rest.Lister               = &NodeMetricsREST{}
	_ rest.Scoper               = &NodeMetricsREST{}
	_ rest.SingularNameProvider = &NodeMetricsREST{}
)

func (*NodeMetricsREST) New() runtime.Object     { return &metricsv1beta1.NodeMetrics{} }
func (*NodeMetricsREST) NewList() runtime.Object { return &metricsv1beta1.NodeMetricsList{} }
func (*NodeMetricsREST) Destroy()                {}
func (*NodeMetricsREST) NamespaceScoped() bool   { return false }

// GetSingularName is metrics-server's.
func (*NodeMetricsREST) GetSingularName() string { return "node" }

// Get is one node's metrics; 404 when it has none.
func (n *NodeMetricsREST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	obj, err := n.r.nodes.Get(genericapirequest.WithNamespace(ctx, ""), name, &metav1.GetOptions{})
	if err != nil {
		if errors.IsNotFound(err) {
			return nil, errors.NewNotFound(nodesResource, name)
		}
		return nil, err
	}
	pods, err := n.r.listPods(ctx, "", &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", name)})
	if err != nil {
		return nil, err
	}
	m, ok := n.r.nodeMetrics(obj.(*corev1.Node), podsByNode(pods)[name])
	if !ok {
		return nil, errors.NewNotFound(nodesResource, name)
	}
	return m, nil
}

// List is the metrics of the nodes the label selector picks.
func (n *NodeMetricsREST) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	opts, fieldSel := selectors(options)
	nodes, err := n.r.listNodes(ctx, opts)
	if err != nil {
		return nil, err
	}
	pods, err := n.r.listPods(ctx, "", &metainternalversion.ListOptions{})
	if err != nil {
		return nil, err
	}
	byNode := podsByNode(pods)
	list := &metricsv1beta1.NodeMetricsList{Items: []metricsv1beta1.NodeMetrics{}}
	for i := range nodes {
		m, ok := n.r.nodeMetrics(&nodes[i], byNode[nodes[i].Name])
		if ok && fieldSel.Matches(fields.Set{"metadata.name": m.Name}) {
			list.Items = append(list.Items, *m)
		}
	}
	return list, nil
}

// ConvertToTable prints metrics-server's columns.
func (n *NodeMetricsREST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	var items []usageRow
	switch o := obj.(type) {
	case *metricsv1beta1.NodeMetrics:
		items = append(items, usageRow{o, o.Name, o.Usage, o.Window})
	case *metricsv1beta1.NodeMetricsList:
		for i := range o.Items {
			items = append(items, usageRow{&o.Items[i], o.Items[i].Name, o.Items[i].Usage, o.Items[i].Window})
		}
	default:
		return nil, fmt.Errorf("no table handler registered for this type %T", obj)
	}
	return usageTable(obj, items), nil
}

// PodMetricsREST serves metrics.k8s.io/v1beta1 pods.
type PodMetricsREST struct{ r *reader }

var (
	_ rest.Storage              = &PodMetricsREST{}
	_ rest.Getter               = &PodMetricsREST{}
	_ rest.Lister               = &PodMetricsREST{}
	_ rest.Scoper               = &PodMetricsREST{}
	_ rest.SingularNameProvider = &PodMetricsREST{}
)

func (*PodMetricsREST) New() runtime.Object     { return &metricsv1beta1.PodMetrics{} }
func (*PodMetricsREST) NewList() runtime.Object { return &metricsv1beta1.PodMetricsList{} }
func (*PodMetricsREST) Destroy()                {}
func (*PodMetricsREST) NamespaceScoped() bool   { return true }

// GetSingularName is empty as metrics-server's: clients guess
// "podmetrics" from the kind (kubectl get podmetrics).
func (*PodMetricsREST) GetSingularName() string { return "" }

// Get is one pod's metrics; 404 when its node reports none.
func (p *PodMetricsREST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	obj, err := p.r.pods.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		if errors.IsNotFound(err) {
			return nil, errors.NewNotFound(podsResource, name)
		}
		return nil, err
	}
	pod := obj.(*corev1.Pod)
	var node *corev1.Node
	if pod.Spec.NodeName != "" {
		if n, err := p.r.nodes.Get(genericapirequest.WithNamespace(ctx, ""), pod.Spec.NodeName, &metav1.GetOptions{}); err == nil {
			node = n.(*corev1.Node)
		} else if !errors.IsNotFound(err) {
			return nil, err
		}
	}
	m, ok := p.r.podMetrics(node, pod)
	if !ok {
		return nil, errors.NewNotFound(podsResource, name)
	}
	return m, nil
}

// List is the metrics of the namespace's (or every namespace's) pods the
// label selector picks, sorted by namespace and name.
func (p *PodMetricsREST) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	opts, fieldSel := selectors(options)
	namespace := genericapirequest.NamespaceValue(ctx)
	pods, err := p.r.listPods(ctx, namespace, opts)
	if err != nil {
		return nil, err
	}
	nodes, err := p.r.listNodes(ctx, &metainternalversion.ListOptions{})
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*corev1.Node, len(nodes))
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	list := &metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{}}
	for i := range pods {
		m, ok := p.r.podMetrics(byName[pods[i].Spec.NodeName], &pods[i])
		if ok && fieldSel.Matches(fields.Set{"metadata.name": m.Name, "metadata.namespace": m.Namespace}) {
			list.Items = append(list.Items, *m)
		}
	}
	slices.SortFunc(list.Items, func(a, b metricsv1beta1.PodMetrics) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return list, nil
}

// ConvertToTable prints metrics-server's columns: the containers' usage
// summed.
func (p *PodMetricsREST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	row := func(m *metricsv1beta1.PodMetrics) usageRow {
		usage := corev1.ResourceList{}
		for _, c := range m.Containers {
			for k, v := range c.Usage {
				sum := usage[k]
				sum.Add(v)
				usage[k] = sum
			}
		}
		return usageRow{m, m.Name, usage, m.Window}
	}
	var items []usageRow
	switch o := obj.(type) {
	case *metricsv1beta1.PodMetrics:
		items = append(items, row(o))
	case *metricsv1beta1.PodMetricsList:
		for i := range o.Items {
			items = append(items, row(&o.Items[i]))
		}
	default:
		return nil, fmt.Errorf("no table handler registered for this type %T", obj)
	}
	return usageTable(obj, items), nil
}

type usageRow struct {
	obj    runtime.Object
	name   string
	usage  corev1.ResourceList
	window metav1.Duration
}

// usageTable: Name, one column per resource of the first row (sorted),
// Window; as metrics-server's.
func usageTable(obj runtime.Object, rows []usageRow) *metav1.Table {
	table := &metav1.Table{Rows: []metav1.TableRow{}}
	if m, err := meta.ListAccessor(obj); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}
	var names []string
	for _, r := range rows {
		if names == nil {
			names = []string{}
			for k := range r.usage {
				names = append(names, string(k))
			}
			slices.Sort(names)
			table.ColumnDefinitions = []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"}}
			for _, n := range names {
				table.ColumnDefinitions = append(table.ColumnDefinitions, metav1.TableColumnDefinition{Name: n, Type: "string", Format: "quantity"})
			}
			table.ColumnDefinitions = append(table.ColumnDefinitions, metav1.TableColumnDefinition{Name: "Window", Type: "string", Format: "duration"})
		}
		cells := []any{r.name}
		for _, n := range names {
			q := r.usage[corev1.ResourceName(n)]
			cells = append(cells, q.String())
		}
		cells = append(cells, r.window.Duration.String())
		table.Rows = append(table.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: r.obj}})
	}
	return table
}
