package apiserver_test

import (
	"net/http"
	"slices"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cause is one expected StatusCause: its field and message.
type cause struct{ field, message string }

// patchStatus merge-patches path (a /status URL) and returns the answer.
func patchStatus(t *testing.T, path, patch string) response {
	t.Helper()
	return do(t, nil, http.MethodPatch, path, map[string]string{"Content-Type": string(types.MergePatchType)}, []byte(patch))
}

// wantInvalid asserts r is 422 Invalid whose causes are exactly want, in
// any order (map keys are validated in random order).
func wantInvalid(t *testing.T, r response, want ...cause) {
	t.Helper()
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("got %d, want 422:\n%s", r.code, r.body)
	}
	s := r.status(t)
	if s.Reason != metav1.StatusReasonInvalid || s.Details == nil {
		t.Fatalf("status %+v, want reason Invalid with details", s)
	}
	var got []cause
	for _, c := range s.Details.Causes {
		got = append(got, cause{c.Field, c.Message})
	}
	key := func(c cause) string { return c.field + "\x00" + c.message }
	sort.Slice(got, func(i, j int) bool { return key(got[i]) < key(got[j]) })
	want = append([]cause(nil), want...)
	sort.Slice(want, func(i, j int) bool { return key(want[i]) < key(want[j]) })
	if !slices.Equal(got, want) {
		t.Fatalf("causes\n%q\nwant\n%q\n(message %q)", got, want, s.Message)
	}
}

func wantOK(t *testing.T, r response) {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("got %d, want 200:\n%s", r.code, r.body)
	}
}

// TestPodStatusValidation: pods/status runs upstream's ValidatePodStatusUpdate:
// IPs, their consistency, condition types, the immutable QoS class,
// nominatedNodeName and the terminated-to-running transition.
func TestPodStatusValidation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	pod := newPod("p")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/namespaces/" + ns + "/pods/p/status"

	wantInvalid(t, patchStatus(t, path, `{"status":{"podIP":"x","podIPs":[{"ip":"x"}]}}`),
		cause{"status.podIPs[0]", `Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`})
	// (A podIP without podIPs, or one differing from podIPs[0], is made
	// consistent by defaulting, as upstream's, before validation.)
	wantInvalid(t, patchStatus(t, path, `{"status":{"podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}]}}`),
		cause{"status.podIPs", `Invalid value: [{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}]: may specify no more than one IP for each IP family`})
	wantInvalid(t, patchStatus(t, path, `{"status":{"hostIP":"10.1.0.1","hostIPs":[{"ip":"010.1.0.1"}]}}`),
		cause{"status.hostIPs[0].ip", `Invalid value: "010.1.0.1": must be equal to ` + "`hostIP`"},
		cause{"status.hostIPs[0]", `Invalid value: "010.1.0.1": must not have leading 0s`})
	wantInvalid(t, patchStatus(t, path, `{"status":{"conditions":[{"type":"Ready","status":"True"},{"type":"no such!","status":"True","observedGeneration":-1}]}}`),
		cause{"status.conditions[1].observedGeneration", `Invalid value: -1: must be a non-negative integer`},
		cause{"status.conditions[1].Type", `Invalid value: "no such!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`})
	wantInvalid(t, patchStatus(t, path, `{"status":{"qosClass":"Guaranteed"}}`),
		cause{"status.qosClass", `Invalid value: "Guaranteed": field is immutable`})
	wantInvalid(t, patchStatus(t, path, `{"status":{"nominatedNodeName":"Not_A_Node"}}`),
		cause{"status.nominatedNodeName", `Invalid value: "Not_A_Node": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`})
	wantInvalid(t, patchStatus(t, path, `{"status":{"observedGeneration":-2}}`),
		cause{"status.observedGeneration", `Invalid value: -2: must be a non-negative integer`})

	// A valid status passes, and an omitted QoS class keeps the stored one.
	wantOK(t, patchStatus(t, path, `{"status":{"phase":"Running","qosClass":null,"podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}],"hostIP":"10.1.0.1","hostIPs":[{"ip":"10.1.0.1"}],`+
		`"containerStatuses":[{"name":"c","image":"busybox","imageID":"","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":0}}}]}}`))
	got, err := cs.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.QOSClass != corev1.PodQOSBestEffort || got.Status.PodIP != "10.0.0.1" {
		t.Errorf("status after the valid patch: %+v", got.Status)
	}
	// With restartPolicy Never a terminated container stays terminated.
	wantInvalid(t, patchStatus(t, path, `{"status":{"containerStatuses":[{"name":"c","image":"busybox","imageID":"","ready":true,"restartCount":1,"state":{"running":{}}}]}}`),
		cause{"status.containerStatuses[0].state", `Forbidden: may not be transitioned to non-terminated state`})
	// An IP stored before stricter validation may stay.
	if r := patchStatus(t, path, `{"status":{"podIPs":[{"ip":"10.0.0.1"}]}}`); r.code != http.StatusOK {
		t.Fatalf("dropping the second pod IP = %d:\n%s", r.code, r.body)
	}
}

// TestNodeStatusValidation: nodes/status runs upstream's ValidateNodeUpdate.
func TestNodeStatusValidation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	name := "status-validation-node"
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(testCtx(t), name, metav1.DeleteOptions{}) })
	path := "/api/v1/nodes/" + name + "/status"

	wantInvalid(t, patchStatus(t, path, `{"status":{"capacity":{"cpu":"-1"}}}`),
		// Allocatable defaults to the capacity.
		cause{"status.capacity.cpu", `Invalid value: "-1": must be greater than or equal to 0`},
		cause{"status.allocatable.cpu", `Invalid value: "-1": must be greater than or equal to 0`})
	wantInvalid(t, patchStatus(t, path, `{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"},{"type":"InternalIP","address":"10.0.0.1"}]}}`),
		cause{"status.addresses[1]", `Duplicate value: {"type":"InternalIP","address":"10.0.0.1"}`})
	wantInvalid(t, patchStatus(t, path, `{"status":{"declaredFeatures":["Zeta","Alpha","bad"]}}`),
		cause{"status.declaredFeatures[1]", `Invalid value: "Alpha": list must be sorted alphabetically`},
		cause{"status.declaredFeatures[2]", `Invalid value: "bad": invalid feature name "bad": must start with an UpperCamelCase segment, with subsequent segments separated by '/' (e.g., MyFeature or MyFeature/mySubFeature), and contain only alphanumeric characters and slashes`})
	wantOK(t, patchStatus(t, path, `{"status":{"capacity":{"cpu":"2"},"declaredFeatures":["Alpha","Zeta/sub"]}}`))
}

// TestStatusValidationOfOtherKinds: every other status strategy checks what
// upstream's does, with its field paths and messages.
func TestStatusValidationOfOtherKinds(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	core := "/api/v1/namespaces/" + ns
	apps := "/apis/apps/v1/namespaces/" + ns
	batch := "/apis/batch/v1/namespaces/" + ns

	t.Run("services", func(t *testing.T) {
		for _, svc := range []*corev1.Service{
			{ObjectMeta: metav1.ObjectMeta{Name: "cip"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}},
		} {
			if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		wantInvalid(t, patchStatus(t, core+"/services/cip/status", `{"status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.1","ipMode":"VIP"}]}}}`),
			cause{"status.loadBalancer.ingress", "Forbidden: may only be used when `spec.type` is 'LoadBalancer'"})
		wantInvalid(t, patchStatus(t, core+"/services/lb/status", `{"status":{"loadBalancer":{"ingress":[{"ip":"x","ipMode":"VIP"},{"ip":"10.0.0.2","ipMode":"Bogus"},{"hostname":"10.0.0.3","ipMode":"Proxy"}]}}}`),
			cause{"status.loadBalancer.ingress[0].ip", `Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`},
			cause{"status.loadBalancer.ingress[1].ipMode", `Unsupported value: "Bogus": supported values: "Proxy", "VIP"`},
			cause{"status.loadBalancer.ingress[2].ipMode", "Forbidden: may not be specified when `ip` is not set"},
			cause{"status.loadBalancer.ingress[2].hostname", `Invalid value: "10.0.0.3": must be a DNS name, not an IP address`})
		wantOK(t, patchStatus(t, core+"/services/lb/status", `{"status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.1","ipMode":"VIP"},{"hostname":"lb.example.com"}]}}}`))
	})

	t.Run("deployments", func(t *testing.T) {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, newDeployment("d", 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, apps+"/deployments/d/status", `{"status":{"replicas":1,"readyReplicas":2,"availableReplicas":-1}}`),
			cause{"status.availableReplicas", `Invalid value: -1: must be greater than or equal to 0`},
			cause{"status.readyReplicas", `Invalid value: 2: cannot be greater than status.replicas`})
		wantOK(t, patchStatus(t, apps+"/deployments/d/status", `{"status":{"replicas":1,"readyReplicas":1,"collisionCount":2}}`))
		wantInvalid(t, patchStatus(t, apps+"/deployments/d/status", `{"status":{"collisionCount":1}}`),
			cause{"status.collisionCount", `Invalid value: 1: cannot be decremented`})
	})

	t.Run("replicasets", func(t *testing.T) {
		d := newDeployment("rs", 1)
		rs := &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}}
		if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, apps+"/replicasets/rs/status", `{"status":{"replicas":1,"fullyLabeledReplicas":3}}`),
			cause{"status.fullyLabeledReplicas", `Invalid value: 3: cannot be greater than status.replicas`})
	})

	t.Run("statefulsets", func(t *testing.T) {
		d := newDeployment("ss", 1)
		ss := &appsv1.StatefulSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.StatefulSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}}
		if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, ss, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, apps+"/statefulsets/ss/status", `{"status":{"replicas":2,"readyReplicas":1,"availableReplicas":2}}`),
			cause{"status.availableReplicas", `Invalid value: 2: cannot be greater than status.readyReplicas`})
	})

	t.Run("daemonsets", func(t *testing.T) {
		d := newDeployment("ds", 1)
		ds := &appsv1.DaemonSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
		if _, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, apps+"/daemonsets/ds/status", `{"status":{"numberReady":-1,"numberUnavailable":-2}}`),
			cause{"status.numberReady", `Invalid value: -1: must be greater than or equal to 0`},
			cause{"status.numberUnavailable", `Invalid value: -2: must be greater than or equal to 0`})
	})

	t.Run("replicationcontrollers", func(t *testing.T) {
		d := newDeployment("rc", 1)
		rc := &corev1.ReplicationController{ObjectMeta: d.ObjectMeta, Spec: corev1.ReplicationControllerSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector.MatchLabels, Template: &d.Spec.Template}}
		if _, err := cs.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, core+"/replicationcontrollers/rc/status", `{"status":{"replicas":1,"readyReplicas":1,"availableReplicas":2}}`),
			cause{"status.availableReplicas", `Invalid value: 2: cannot be greater than status.replicas`},
			cause{"status.availableReplicas", `Invalid value: 2: cannot be greater than readyReplicas`})
	})

	t.Run("jobs", func(t *testing.T) {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		path := batch + "/jobs/j/status"
		wantInvalid(t, patchStatus(t, path, `{"status":{"active":-1,"uncountedTerminatedPods":{"succeeded":["a","a"]}}}`),
			cause{"status.active", `Invalid value: -1: must be greater than or equal to 0`},
			cause{"status.uncountedTerminatedPods.succeeded[1]", `Duplicate value: "a"`})
		wantOK(t, patchStatus(t, path, `{"status":{"active":1,"failed":2,"ready":1}}`))
		wantInvalid(t, patchStatus(t, path, `{"status":{"failed":1,"ready":2}}`),
			cause{"status.ready", `Invalid value: 2: cannot set more ready pods than active`},
			cause{"status.failed", `Invalid value: 1: cannot decrease the failed counter`})
		wantInvalid(t, patchStatus(t, path, `{"status":{"conditions":[{"type":"Complete","status":"True"}]}}`),
			cause{"status.completionTime", `Required value: completionTime is required for Complete jobs`},
			cause{"status.conditions", `Invalid value: cannot set Complete=True condition without the SuccessCriteriaMet=true condition`},
			cause{"status.active", `Invalid value: 1: active>0 is invalid for finished job`},
			cause{"status.startTime", `Required value: startTime is required for finished job`})
	})

	t.Run("cronjobs", func(t *testing.T) {
		cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "cj"}, Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}}}
		if _, err := cs.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Upstream's cronjobs/status validates nothing.
		wantOK(t, patchStatus(t, batch+"/cronjobs/cj/status", `{"status":{"active":[{"kind":"Job","name":"x"}],"lastScheduleTime":"2026-01-01T00:00:00Z"}}`))
	})

	t.Run("namespaces", func(t *testing.T) {
		wantInvalid(t, patchStatus(t, "/api/v1/namespaces/"+ns+"/status", `{"status":{"phase":"Terminating"}}`),
			cause{"status.Phase", `Invalid value: "Terminating": may only be 'Active' if ` + "`deletionTimestamp`" + ` is empty`})
	})

	t.Run("resourcequotas", func(t *testing.T) {
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5")}}}
		if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, core+"/resourcequotas/q/status", `{"status":{"hard":{"pods":"5"},"used":{"pods":"-1","bad name!":"1"}}}`),
			cause{"status.used[bad name!]", `Invalid value: "bad name!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`},
			cause{"status.used[bad name!]", `Invalid value: "bad name!": must be a standard resource for quota`},
			cause{"status.used[pods]", `Invalid value: "-1": must be greater than or equal to 0`})
	})

	t.Run("ingresses", func(t *testing.T) {
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "ing"}, Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
		if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, "/apis/networking.k8s.io/v1/namespaces/"+ns+"/ingresses/ing/status", `{"status":{"loadBalancer":{"ingress":[{"ip":"x"},{"hostname":"10.0.0.1"}]}}}`),
			cause{"status.loadBalancer.ingress[0].ip", `Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`},
			cause{"status.loadBalancer.ingress[1].hostname", `Invalid value: "10.0.0.1": must be a DNS name, not an IP address`})
	})

	t.Run("poddisruptionbudgets", func(t *testing.T) {
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb"}, Spec: policyv1.PodDisruptionBudgetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, "/apis/policy/v1/namespaces/"+ns+"/poddisruptionbudgets/pdb/status", `{"status":{"disruptionsAllowed":-1,"expectedPods":-2}}`),
			cause{"status.disruptionsAllowed", `Invalid value: -1: must be greater than or equal to 0`},
			cause{"status.expectedPods", `Invalid value: -2: must be greater than or equal to 0`})
	})

	t.Run("persistentvolumeclaims", func(t *testing.T) {
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, patchStatus(t, core+"/persistentvolumeclaims/c/status", `{"status":{"capacity":{"storage":"-1"},"allocatedResources":{"cpu":"1"}}}`),
			cause{"status.capacity[storage]", `Invalid value: -1: must be a valid resource quantity`},
			cause{"status.allocatedResources", `Unsupported value: "cpu": supported values: "storage"`})
		wantOK(t, patchStatus(t, core+"/persistentvolumeclaims/c/status", `{"status":{"phase":"Bound","capacity":{"storage":"1Gi"}}}`))
	})
}
