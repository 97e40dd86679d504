package printers

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Descriptions are taken from the same API versions upstream uses.

var deploymentTable = newTable(
	columns(
		cols(
			nameColumn(),
			column("Ready", "string", "Number of the pod with ready state"),
			column("Up-to-date", "string", extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]),
			column("Available", "string", extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]),
			ageColumn(),
		),
		templateColumns(extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()["selector"]),
	),
	func(d *appsv1.Deployment) []any {
		selector := "<invalid>"
		if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
			selector = s.String()
		}
		return append([]any{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref(d.Spec.Replicas)),
			int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), age(d.CreationTimestamp)},
			templateCells(&d.Spec.Template, selector)...)
	},
)

var replicaSetTable = newTable(
	columns(
		cols(
			nameColumn(),
			column("Desired", "integer", extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]),
			column("Current", "integer", extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]),
			column("Ready", "integer", extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]),
			ageColumn(),
		),
		templateColumns(extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["selector"]),
	),
	func(rs *appsv1.ReplicaSet) []any {
		return append([]any{rs.Name, int64(deref(rs.Spec.Replicas)), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas), age(rs.CreationTimestamp)},
			templateCells(&rs.Spec.Template, metav1.FormatLabelSelector(rs.Spec.Selector))...)
	},
)

var statefulSetTable = newTable(
	columns(
		cols(
			nameColumn(),
			column("Ready", "string", "Number of the pod with ready state"),
			ageColumn(),
		),
		templateColumns(""),
	),
	func(ss *appsv1.StatefulSet) []any {
		return append([]any{ss.Name, fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, deref(ss.Spec.Replicas)), age(ss.CreationTimestamp)},
			templateCells(&ss.Spec.Template)...)
	},
)

var daemonSetTable = newTable(
	columns(
		cols(
			nameColumn(),
			column("Desired", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]),
			column("Current", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]),
			column("Ready", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]),
			column("Up-to-date", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]),
			column("Available", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]),
			column("Node Selector", "string", corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]),
			ageColumn(),
		),
		templateColumns(extensionsv1beta1.DaemonSetSpec{}.SwaggerDoc()["selector"]),
	),
	func(ds *appsv1.DaemonSet) []any {
		s := ds.Status
		return append([]any{ds.Name, int64(s.DesiredNumberScheduled), int64(s.CurrentNumberScheduled), int64(s.NumberReady),
			int64(s.UpdatedNumberScheduled), int64(s.NumberAvailable), labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector), age(ds.CreationTimestamp)},
			templateCells(&ds.Spec.Template, metav1.FormatLabelSelector(ds.Spec.Selector))...)
	},
)

var controllerRevisionTable = &table[*appsv1.ControllerRevision]{
	columns: cols(
		nameColumn(),
		column("Controller", "string", "Controller of the object"),
		column("Revision", "string", appsv1beta1.ControllerRevision{}.SwaggerDoc()["revision"]),
		ageColumn(),
	),
	cells: func(cr *appsv1.ControllerRevision) ([]any, error) {
		controller := none
		if ref := metav1.GetControllerOf(cr); ref != nil {
			gv, err := schema.ParseGroupVersion(ref.APIVersion)
			if err != nil {
				return nil, err
			}
			controller = ref.Name
			if gk := gv.WithKind(ref.Kind).GroupKind(); !gk.Empty() {
				controller = strings.ToLower(gk.String()) + "/" + ref.Name
			}
		}
		return []any{cr.Name, controller, cr.Revision, age(cr.CreationTimestamp)}, nil
	},
}
