package printers

import (
	"context"
	"github.com/skiff-dev/skiff/pkg/apis"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMain(m *testing.M) {
	now = func() time.Time { return testNow }
	m.Run()
}

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

func ptr[T any](v T) *T { return &v }

// convert runs the registered convertor for gr and fails the test on error.
func convert(t *testing.T, gr schema.GroupResource, obj runtime.Object, opts runtime.Object) *metav1.Table {
	t.Helper()
	c := ForResource(gr)
	if c == nil {
		t.Fatalf("no convertor for %v", gr)
	}
	tbl, err := c.ConvertToTable(context.Background(), obj, opts)
	if err != nil {
		t.Fatalf("ConvertToTable(%v): %v", gr, err)
	}
	return tbl
}

// row converts a single object and returns its cells keyed by column name.
func row(t *testing.T, gr schema.GroupResource, obj runtime.Object) map[string]any {
	t.Helper()
	tbl := convert(t, gr, obj, nil)
	if len(tbl.Rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(tbl.Rows))
	}
	if len(tbl.Rows[0].Cells) != len(tbl.ColumnDefinitions) {
		t.Fatalf("got %d cells for %d columns", len(tbl.Rows[0].Cells), len(tbl.ColumnDefinitions))
	}
	cells := map[string]any{}
	for i, c := range tbl.ColumnDefinitions {
		cells[c.Name] = tbl.Rows[0].Cells[i]
	}
	return cells
}

func checkCells(t *testing.T, got map[string]any, want map[string]any) {
	t.Helper()
	for col, w := range want {
		if g, ok := got[col]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("column %q = %#v, want %#v", col, g, w)
		}
	}
}

var (
	podsGR        = schema.GroupResource{Resource: "pods"}
	servicesGR    = schema.GroupResource{Resource: "services"}
	deploymentsGR = schema.GroupResource{Group: "apps", Resource: "deployments"}
)

func TestPods(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	always := corev1.ContainerRestartPolicyAlways
	twoContainers := corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}

	tests := []struct {
		name string
		pod  corev1.Pod
		want map[string]any
	}{
		{
			name: "one of two ready",
			pod: corev1.Pod{
				Spec: twoContainers,
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Ready: true, State: running},
					{Name: "b", Ready: false, State: running},
				}},
			},
			want: map[string]any{"Ready": "1/2", "Status": "Running", "Restarts": "0", "Age": "10m"},
		},
		{
			name: "crash loop with restarts",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
					Name:                 "a",
					RestartCount:         3,
					State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(5 * time.Minute)}},
				}}},
			},
			want: map[string]any{"Ready": "0/1", "Status": "CrashLoopBackOff", "Restarts": "3 (5m ago)"},
		},
		{
			name: "terminating",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: ptr(ago(time.Second))},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Ready: true, State: running},
				}},
			},
			want: map[string]any{"Ready": "1/1", "Status": "Terminating"},
		},
		{
			name: "deleted on a lost node",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: ptr(ago(time.Second))},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"},
			},
			want: map[string]any{"Status": "Unknown"},
		},
		{
			name: "completed",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}},
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
					Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}},
				}}},
			},
			want: map[string]any{"Ready": "0/1", "Status": "Completed"},
		},
		{
			name: "terminated without reason",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
					Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}},
				}}},
			},
			want: map[string]any{"Status": "ExitCode:2"},
		},
		{
			name: "init container running",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}, Containers: []corev1.Container{{Name: "a"}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: running}},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: corev1.ContainerState{
						Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
				},
			},
			want: map[string]any{"Ready": "0/1", "Status": "Init:0/1"},
		},
		{
			name: "init container crash looping",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}, Containers: []corev1.Container{{Name: "a"}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{
					Name: "init", RestartCount: 2,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				}}},
			},
			want: map[string]any{"Status": "Init:CrashLoopBackOff", "Restarts": "2"},
		},
		{
			name: "sidecar counts as a container",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always}},
					Containers:     []corev1.Container{{Name: "a"}},
				},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions:            []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "sidecar", Ready: true, Started: ptr(true), State: running, RestartCount: 1}},
					ContainerStatuses:     []corev1.ContainerStatus{{Name: "a", Ready: true, State: running}},
				},
			},
			want: map[string]any{"Ready": "2/2", "Status": "Running", "Restarts": "1"},
		},
		{
			name: "scheduling gated",
			pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated},
			}}},
			want: map[string]any{"Status": "SchedulingGated"},
		},
		{
			name: "wide columns",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{NodeName: "node-1", ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "g1"}, {ConditionType: "g2"}}},
				Status: corev1.PodStatus{
					Phase:             corev1.PodRunning,
					PodIPs:            []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "fd00::5"}},
					NominatedNodeName: "node-2",
					Conditions: []corev1.PodCondition{
						{Type: "g1", Status: corev1.ConditionTrue},
						{Type: "g2", Status: corev1.ConditionFalse},
					},
				},
			},
			want: map[string]any{"IP": "10.0.0.5", "Node": "node-1", "Nominated Node": "node-2", "Readiness Gates": "1/2"},
		},
		{
			name: "wide columns empty",
			pod:  corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}},
			want: map[string]any{"Ready": "0/0", "Status": "Pending", "IP": "<none>", "Node": "<none>", "Nominated Node": "<none>", "Readiness Gates": "<none>"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod
			pod.Name = "p"
			pod.CreationTimestamp = ago(10 * time.Minute)
			got := row(t, podsGR, &pod)
			checkCells(t, got, tc.want)
			if got["Name"] != "p" {
				t.Errorf("Name = %v", got["Name"])
			}
		})
	}
}

func TestPodColumnsAndConditions(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}
	tbl := convert(t, podsGR, pod, nil)
	var names []string
	var priorities []int32
	for _, c := range tbl.ColumnDefinitions {
		names = append(names, c.Name)
		priorities = append(priorities, c.Priority)
	}
	wantNames := []string{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("columns = %v, want %v", names, wantNames)
	}
	if want := []int32{0, 0, 0, 0, 0, 1, 1, 1, 1}; !reflect.DeepEqual(priorities, want) {
		t.Errorf("priorities = %v, want %v", priorities, want)
	}
	if tbl.ColumnDefinitions[0].Format != "name" || tbl.ColumnDefinitions[0].Description == "" {
		t.Errorf("bad name column %+v", tbl.ColumnDefinitions[0])
	}
	if c := tbl.Rows[0].Conditions; len(c) != 1 || c[0].Type != metav1.RowCompleted || c[0].Reason != "Succeeded" {
		t.Errorf("conditions = %+v", c)
	}
	if tbl.Rows[0].Object.Object != pod {
		t.Errorf("row object is not the pod")
	}
}

func TestServices(t *testing.T) {
	tests := []struct {
		name string
		spec corev1.ServiceSpec
		lb   []corev1.LoadBalancerIngress
		want map[string]any
	}{
		{
			name: "cluster ip",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.10", "fd00::10"},
				Ports:    []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}},
				Selector: map[string]string{"app": "web"}},
			want: map[string]any{"Type": "ClusterIP", "Cluster-IP": "10.96.0.10", "External-IP": "<none>", "Port(s)": "80/TCP,53/UDP", "Selector": "app=web", "Age": "10m"},
		},
		{
			name: "node port",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.11",
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 443, NodePort: 30001, Protocol: corev1.ProtocolTCP}}},
			want: map[string]any{"Type": "NodePort", "Cluster-IP": "10.96.0.11", "External-IP": "<none>", "Port(s)": "80/TCP,443:30001/TCP", "Selector": "<none>"},
		},
		{
			name: "external ips",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"None"}, ExternalIPs: []string{"1.1.1.1", "2.2.2.2"}},
			want: map[string]any{"Cluster-IP": "None", "External-IP": "1.1.1.1,2.2.2.2", "Port(s)": "<none>"},
		},
		{
			name: "pending load balancer",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.12"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000, Protocol: corev1.ProtocolTCP}}},
			want: map[string]any{"External-IP": "<pending>", "Port(s)": "80:31000/TCP"},
		},
		{
			name: "load balancer ingress",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalIPs: []string{"9.9.9.9"}},
			lb:   []corev1.LoadBalancerIngress{{IP: "5.6.7.8"}, {Hostname: "lb.example.com"}, {IP: "1.2.3.4"}},
			want: map[string]any{"Cluster-IP": "<none>", "External-IP": "1.2.3.4,5.6.7.8,lb.example.com,9.9.9.9"},
		},
		{
			name: "external name",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
			want: map[string]any{"Type": "ExternalName", "External-IP": "db.example.com"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", CreationTimestamp: ago(10 * time.Minute)}, Spec: tc.spec}
			svc.Status.LoadBalancer.Ingress = tc.lb
			checkCells(t, row(t, servicesGR, svc), tc.want)
		})
	}
}

func TestDeployments(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: ago(26 * time.Hour)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "nginx", Image: "nginx:1.27"}, {Name: "sidecar", Image: "busybox"},
			}}},
		},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 1},
	}
	tbl := convert(t, deploymentsGR, d, nil)
	var names []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	if want := []string{"Name", "Ready", "Up-to-date", "Available", "Age"}; !reflect.DeepEqual(names, want) {
		t.Errorf("default columns = %v, want %v", names, want)
	}
	want := []any{"web", "2/3", int64(3), int64(1), "26h", "nginx,sidecar", "nginx:1.27,busybox", "app=web"}
	if !reflect.DeepEqual(tbl.Rows[0].Cells, want) {
		t.Errorf("cells = %#v, want %#v", tbl.Rows[0].Cells, want)
	}
	if got := tbl.ColumnDefinitions[5:]; got[0].Name != "Containers" || got[1].Name != "Images" || got[2].Name != "Selector" || got[2].Priority != 1 {
		t.Errorf("wide columns = %+v", got)
	}
}

func TestListConversion(t *testing.T) {
	list := &corev1.PodList{
		ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next-page", RemainingItemCount: ptr(int64(7))},
		Items: []corev1.Pod{
			{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "c"}},
		},
	}
	tbl := convert(t, podsGR, list, &metav1.TableOptions{})
	if len(tbl.Rows) != 3 {
		t.Fatalf("got %d rows, want 3", len(tbl.Rows))
	}
	for i, r := range tbl.Rows {
		if r.Cells[0] != list.Items[i].Name || r.Object.Object != &list.Items[i] {
			t.Errorf("row %d = %v / %T", i, r.Cells[0], r.Object.Object)
		}
	}
	if tbl.ResourceVersion != "42" || tbl.Continue != "next-page" || tbl.RemainingItemCount == nil || *tbl.RemainingItemCount != 7 {
		t.Errorf("list meta = %+v", tbl.ListMeta)
	}

	empty := convert(t, podsGR, &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "9"}}, nil)
	if empty.Rows == nil || len(empty.Rows) != 0 || empty.ResourceVersion != "9" {
		t.Errorf("empty list table = %+v", empty)
	}

	single := convert(t, podsGR, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "5"}}, nil)
	if single.ResourceVersion != "5" || single.Continue != "" {
		t.Errorf("single object list meta = %+v", single.ListMeta)
	}
}

func TestNoHeadersAndErrors(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"}}
	tbl := convert(t, podsGR, pod, &metav1.TableOptions{NoHeaders: true})
	if tbl.ColumnDefinitions != nil {
		t.Errorf("NoHeaders: got %d column definitions", len(tbl.ColumnDefinitions))
	}
	if len(tbl.Rows) != 1 || len(tbl.Rows[0].Cells) != 9 {
		t.Errorf("NoHeaders: rows = %+v", tbl.Rows)
	}

	c := ForResource(podsGR)
	if _, err := c.ConvertToTable(context.Background(), pod, &metav1.ListOptions{}); err == nil {
		t.Error("expected an error for unknown table options")
	}
	if _, err := c.ConvertToTable(context.Background(), &corev1.Service{}, nil); err == nil {
		t.Error("expected an error for a foreign type")
	}
	if _, err := c.ConvertToTable(context.Background(), &corev1.ServiceList{Items: []corev1.Service{{}}}, nil); err == nil {
		t.Error("expected an error for a foreign list")
	}
	if ForResource(schema.GroupResource{Group: "example.com", Resource: "widgets"}) != nil {
		t.Error("expected nil convertor for an unknown resource")
	}
}

// TestAllResources checks every served resource: a convertor exists, the
// first column is as upstream, and every row has one cell per column with
// a cell type the Table API accepts.
func TestAllResources(t *testing.T) {
	om := metav1.ObjectMeta{Name: "x", CreationTimestamp: ago(time.Hour)}
	objects := map[schema.GroupResource]runtime.Object{
		{Resource: "pods"}:                   &corev1.Pod{ObjectMeta: om},
		{Resource: "podtemplates"}:           &corev1.PodTemplate{ObjectMeta: om},
		{Resource: "namespaces"}:             &corev1.Namespace{ObjectMeta: om},
		{Resource: "services"}:               &corev1.Service{ObjectMeta: om},
		{Resource: "endpoints"}:              &corev1.Endpoints{ObjectMeta: om},
		{Resource: "configmaps"}:             &corev1.ConfigMap{ObjectMeta: om},
		{Resource: "secrets"}:                &corev1.Secret{ObjectMeta: om},
		{Resource: "serviceaccounts"}:        &corev1.ServiceAccount{ObjectMeta: om},
		{Resource: "nodes"}:                  &corev1.Node{ObjectMeta: om},
		{Resource: "events"}:                 &corev1.Event{ObjectMeta: om},
		{Resource: "resourcequotas"}:         &corev1.ResourceQuota{ObjectMeta: om},
		{Resource: "limitranges"}:            &corev1.LimitRange{ObjectMeta: om},
		{Resource: "persistentvolumes"}:      &corev1.PersistentVolume{ObjectMeta: om},
		{Resource: "persistentvolumeclaims"}: &corev1.PersistentVolumeClaim{ObjectMeta: om},
		{Resource: "replicationcontrollers"}: &corev1.ReplicationController{ObjectMeta: om},

		{Group: "apps", Resource: "deployments"}:         &appsv1.Deployment{ObjectMeta: om},
		{Group: "apps", Resource: "replicasets"}:         &appsv1.ReplicaSet{ObjectMeta: om},
		{Group: "apps", Resource: "statefulsets"}:        &appsv1.StatefulSet{ObjectMeta: om},
		{Group: "apps", Resource: "daemonsets"}:          &appsv1.DaemonSet{ObjectMeta: om},
		{Group: "apps", Resource: "controllerrevisions"}: &appsv1.ControllerRevision{ObjectMeta: om},

		{Group: "batch", Resource: "jobs"}:                      &batchv1.Job{ObjectMeta: om},
		{Group: "batch", Resource: "cronjobs"}:                  &batchv1.CronJob{ObjectMeta: om},
		{Group: "coordination.k8s.io", Resource: "leases"}:      &coordinationv1.Lease{ObjectMeta: om},
		{Group: "discovery.k8s.io", Resource: "endpointslices"}: &discoveryv1.EndpointSlice{ObjectMeta: om},
		{Group: "events.k8s.io", Resource: "events"}:            &corev1.Event{ObjectMeta: om},

		{Group: "rbac.authorization.k8s.io", Resource: "roles"}:               &rbacv1.Role{ObjectMeta: om},
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}:        &rbacv1.RoleBinding{ObjectMeta: om},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}:        &rbacv1.ClusterRole{ObjectMeta: om},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}: &rbacv1.ClusterRoleBinding{ObjectMeta: om},

		{Group: "networking.k8s.io", Resource: "networkpolicies"}: &networkingv1.NetworkPolicy{ObjectMeta: om},
		{Group: "networking.k8s.io", Resource: "ingresses"}:       &networkingv1.Ingress{ObjectMeta: om},
		{Group: "networking.k8s.io", Resource: "ingressclasses"}:  &networkingv1.IngressClass{ObjectMeta: om},

		{Group: "policy", Resource: "poddisruptionbudgets"}:                    &policyv1.PodDisruptionBudget{ObjectMeta: om},
		{Group: "autoscaling", Resource: "horizontalpodautoscalers"}:           &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: om},
		{Group: "scheduling.k8s.io", Resource: "priorityclasses"}:              &schedulingv1.PriorityClass{ObjectMeta: om},
		{Group: "storage.k8s.io", Resource: "storageclasses"}:                  &storagev1.StorageClass{ObjectMeta: om},
		{Group: "storage.k8s.io", Resource: "csidrivers"}:                      &storagev1.CSIDriver{ObjectMeta: om},
		{Group: "storage.k8s.io", Resource: "csinodes"}:                        &storagev1.CSINode{ObjectMeta: om},
		{Group: "storage.k8s.io", Resource: "volumeattachments"}:               &storagev1.VolumeAttachment{ObjectMeta: om},
		{Group: "node.k8s.io", Resource: "runtimeclasses"}:                     &nodev1.RuntimeClass{ObjectMeta: om},
		{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}: &certificatesv1.CertificateSigningRequest{ObjectMeta: om},
	}
	if len(objects) != len(convertors) {
		t.Errorf("test covers %d resources, %d are registered", len(objects), len(convertors))
	}
	for gr, obj := range objects {
		t.Run(gr.String(), func(t *testing.T) {
			tbl := convert(t, gr, obj, nil)
			wantFirst := "Name"
			if gr.Resource == "events" {
				wantFirst = "Last Seen"
			}
			if got := tbl.ColumnDefinitions[0].Name; got != wantFirst {
				t.Errorf("first column = %q, want %q", got, wantFirst)
			}
			if len(tbl.Rows) != 1 || len(tbl.Rows[0].Cells) != len(tbl.ColumnDefinitions) {
				t.Fatalf("rows = %+v for %d columns", tbl.Rows, len(tbl.ColumnDefinitions))
			}
			for i, cell := range tbl.Rows[0].Cells {
				switch cell.(type) {
				case string, int64, bool:
				default:
					t.Errorf("cell %d (%s) has type %T", i, tbl.ColumnDefinitions[i].Name, cell)
				}
			}
			for _, c := range tbl.ColumnDefinitions {
				if c.Name == "Age" && tbl.Rows[0].Cells[indexOf(tbl, "Age")] != "60m" {
					t.Errorf("Age = %v", tbl.Rows[0].Cells[indexOf(tbl, "Age")])
				}
			}
		})
	}
}

func indexOf(tbl *metav1.Table, column string) int {
	for i, c := range tbl.ColumnDefinitions {
		if c.Name == column {
			return i
		}
	}
	return -1
}

func TestEndpoints(t *testing.T) {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "e"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "1.2.3.4"}, {IP: "1.2.3.5"}, {IP: "fd00::1"}},
			Ports:     []corev1.EndpointPort{{Port: 80}, {Port: 443}},
		}},
	}
	checkCells(t, row(t, schema.GroupResource{Resource: "endpoints"}, ep),
		map[string]any{"Endpoints": "1.2.3.4:80,1.2.3.5:80,[fd00::1]:80 + 3 more..."})
	checkCells(t, row(t, schema.GroupResource{Resource: "endpoints"}, &corev1.Endpoints{}),
		map[string]any{"Endpoints": "<none>"})
}

func TestEvents(t *testing.T) {
	core := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "ev"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1", FieldPath: "spec.containers{a}"},
		Type:           "Warning", Reason: "BackOff", Message: " Back-off restarting \n",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: ago(time.Hour), LastTimestamp: ago(2 * time.Minute), Count: 4,
	}
	want := []any{"2m", "Warning", "BackOff", "pod/web-1", "spec.containers{a}", "kubelet, node-1", "Back-off restarting", "60m", int64(4), "ev"}
	tbl := convert(t, schema.GroupResource{Resource: "events"}, core, nil)
	if !reflect.DeepEqual(tbl.Rows[0].Cells, want) {
		t.Errorf("core event cells = %#v, want %#v", tbl.Rows[0].Cells, want)
	}

	v1 := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "ev"},
		EventTime:  metav1.NewMicroTime(testNow.Add(-time.Hour)),
		Series:     &eventsv1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(testNow.Add(-30 * time.Second))},
		Regarding:  corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		Type:       "Normal", Reason: "Starting", Note: "hello",
		ReportingController: "kubelet", ReportingInstance: "node-1",
	}
	want = []any{"30s", "Normal", "Starting", "node/node-1", "", "kubelet, node-1", "hello", "60m", int64(7), "ev"}
	// The events.k8s.io storage holds core Events; convert as the scheme does.
	asCore := &corev1.Event{}
	if err := apis.Scheme.Convert(v1, asCore, nil); err != nil {
		t.Fatal(err)
	}
	tbl = convert(t, schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, &corev1.EventList{Items: []corev1.Event{*asCore}}, nil)
	if !reflect.DeepEqual(tbl.Rows[0].Cells, want) {
		t.Errorf("events.k8s.io cells = %#v, want %#v", tbl.Rows[0].Cells, want)
	}
}

func TestStorageClassDefault(t *testing.T) {
	def := map[string]string{isDefaultStorageClassAnnotation: "true"}
	list := &storagev1.StorageClassList{Items: []storagev1.StorageClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "old", Annotations: def, CreationTimestamp: ago(2 * time.Hour)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "new", Annotations: def, CreationTimestamp: ago(time.Hour)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	}}
	gr := schema.GroupResource{Group: "storage.k8s.io", Resource: "storageclasses"}
	tbl := convert(t, gr, list, nil)
	var names []any
	for _, r := range tbl.Rows {
		names = append(names, r.Cells[0])
	}
	if want := []any{"old", "new (default)", "plain"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	checkCells(t, row(t, gr, &list.Items[0]), map[string]any{"Name": "old (default)", "ReclaimPolicy": "Delete", "VolumeBindingMode": "Immediate", "AllowVolumeExpansion": false})
}

// ServiceAccounts show NAME and AGE only, as upstream since 1.35.
func TestServiceAccountColumns(t *testing.T) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot", CreationTimestamp: ago(time.Hour)},
		Secrets: []corev1.ObjectReference{{Name: "old-token"}}}
	tbl := convert(t, schema.GroupResource{Resource: "serviceaccounts"}, sa, nil)
	var names []string
	for _, c := range tbl.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if !reflect.DeepEqual(names, []string{"Name", "Age"}) {
		t.Errorf("columns %v, want [Name Age]", names)
	}
	checkCells(t, row(t, schema.GroupResource{Resource: "serviceaccounts"}, sa), map[string]any{"Name": "robot", "Age": "60m"})
}
