package node

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
)

// started is an Authorizer on fake informers holding objects, with the
// bootstrap policy's node rules.
func started(t *testing.T, objects ...any) (*Authorizer, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	a, synced, err := New(factory, bootstrap.NodeRules())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatal("informers did not sync")
	}
	for _, o := range objects {
		create(t, client, o)
	}
	return a, client
}

func create(t *testing.T, client *fake.Clientset, o any) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch o := o.(type) {
	case *corev1.Pod:
		_, err = client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.PersistentVolume:
		_, err = client.CoreV1().PersistentVolumes().Create(ctx, o, metav1.CreateOptions{})
	case *storagev1.VolumeAttachment:
		_, err = client.StorageV1().VolumeAttachments().Create(ctx, o, metav1.CreateOptions{})
	default:
		t.Fatalf("cannot create %T", o)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// eventually waits until the graph relates (or not) node to an object.
func eventually(t *testing.T, g *Graph, want bool, node string, kind Kind, namespace, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.Related(node, kind, namespace, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("Related(%s, %s, %s/%s) is not %v", node, kindNames[kind], namespace, name, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var n1 = &user.DefaultInfo{Name: "system:node:n1", Groups: []string{user.NodesGroup, user.AllAuthenticated}}

func attrs(u user.Info, verb, group, resource, subresource, namespace, name string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{User: u, Verb: verb, APIGroup: group, Resource: resource, Subresource: subresource,
		Namespace: namespace, Name: name, ResourceRequest: true}
}

func withFieldSelector(a authorizer.AttributesRecord, selector string) authorizer.AttributesRecord {
	s, err := fields.ParseSelector(selector)
	if err != nil {
		panic(err)
	}
	a.FieldSelectorRequirements = s.Requirements()
	return a
}

func TestAuthorize(t *testing.T) {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec:       corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: "ns", Name: "pvc1"}},
	}
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "va1"}, Spec: storagev1.VolumeAttachmentSpec{NodeName: "n1"}}
	a, _ := started(t, podOn("p1", "n1"), podOn("p2", "n2"), pv, va)
	eventually(t, a.graph, true, "n1", PersistentVolume, "", "pv1")
	eventually(t, a.graph, true, "n1", VolumeAttachment, "", "va1")
	eventually(t, a.graph, true, "n2", Pod, "ns", "p2")

	const noRelation = "no relationship found between node 'n1' and this object"
	for _, tc := range []struct {
		name   string
		attrs  authorizer.AttributesRecord
		want   authorizer.Decision
		reason string
	}{
		{"secret of its pod", attrs(n1, "get", "", "secrets", "", "ns", "s1"), allow, ""},
		{"watch of its pod's secret", attrs(n1, "watch", "", "secrets", "", "ns", "s1"), allow, ""},
		{"unrelated secret", attrs(n1, "get", "", "secrets", "", "ns", "s2"), noOpinion, noRelation},
		{"secret list", attrs(n1, "list", "", "secrets", "", "ns", ""), noOpinion, "No Object name found"},
		{"secret update", attrs(n1, "update", "", "secrets", "", "ns", "s1"), noOpinion, "can only read resources of this type"},
		{"cluster-wide secrets", attrs(n1, "list", "", "secrets", "", "", ""), noOpinion, "can only read namespaced object of this type"},
		{"configmap of its pod", attrs(n1, "get", "", "configmaps", "", "ns", "c1"), allow, ""},
		{"claim of its pod", attrs(n1, "get", "", "persistentvolumeclaims", "", "ns", "pvc1"), allow, ""},
		{"claim list", attrs(n1, "list", "", "persistentvolumeclaims", "", "ns", "pvc1"), noOpinion, "can only get individual resources of this type"},
		{"claim status", attrs(n1, "patch", "", "persistentvolumeclaims", "status", "ns", "pvc1"), allow, ""},
		{"claim status get", attrs(n1, "get", "", "persistentvolumeclaims", "status", "ns", "pvc1"), noOpinion, "can only get/update/patch this type"},
		{"volume of its claim", attrs(n1, "get", "", "persistentvolumes", "", "", "pv1"), allow, ""},
		{"volume of another node", attrs(&user.DefaultInfo{Name: "system:node:n3", Groups: []string{user.NodesGroup}}, "get", "", "persistentvolumes", "", "", "pv1"),
			noOpinion, "no relationship found between node 'n3' and this object"},
		{"its attachment", attrs(n1, "get", "storage.k8s.io", "volumeattachments", "", "", "va1"), allow, ""},
		{"service account of its pod", attrs(n1, "get", "", "serviceaccounts", "", "ns", "sa1"), allow, ""},
		{"token of its pod's account", attrs(n1, "create", "", "serviceaccounts", "token", "ns", "sa1"), allow, ""},
		{"token of another account", attrs(n1, "create", "", "serviceaccounts", "token", "ns", "default"), noOpinion, noRelation},
		{"account update", attrs(n1, "update", "", "serviceaccounts", "", "ns", "sa1"), noOpinion, "can only create tokens for individual service accounts"},
		{"account create", attrs(n1, "create", "", "serviceaccounts", "", "ns", "sa1"), noOpinion, "can only create token subresource of serviceaccount"},
		{"its pod", attrs(n1, "get", "", "pods", "", "ns", "p1"), allow, ""},
		{"another node's pod", attrs(n1, "get", "", "pods", "", "ns", "p2"), noOpinion, noRelation},
		{"pods of its node", withFieldSelector(attrs(n1, "list", "", "pods", "", "", ""), "spec.nodeName=n1"), allow, ""},
		{"pods of another node", withFieldSelector(attrs(n1, "watch", "", "pods", "", "", ""), "spec.nodeName=n2"), noOpinion, "can only list/watch pods with spec.nodeName field selector"},
		{"all pods", attrs(n1, "list", "", "pods", "", "", ""), noOpinion, "can only list/watch pods with spec.nodeName field selector"},
		{"watch of its pod by name", attrs(n1, "watch", "", "pods", "", "ns", "p1"), allow, ""},
		{"mirror pod create", attrs(n1, "create", "", "pods", "", "ns", ""), allow, ""},
		{"pod status", attrs(n1, "patch", "", "pods", "status", "ns", "p2"), allow, ""},
		{"eviction", attrs(n1, "create", "", "pods", "eviction", "ns", "p1"), allow, ""},
		{"pod update", attrs(n1, "update", "", "pods", "", "ns", "p1"), noOpinion, ""},
		{"exec", attrs(n1, "create", "", "pods", "exec", "ns", "p1"), noOpinion, ""},
		{"its node", attrs(n1, "get", "", "nodes", "", "", "n1"), allow, ""},
		{"another node", attrs(n1, "get", "", "nodes", "", "", "n2"), noOpinion, "node 'n1' cannot read 'n2', only its own Node object"},
		{"all nodes", attrs(n1, "list", "", "nodes", "", "", ""), noOpinion, "node 'n1' cannot read all nodes, only its own Node object"},
		{"node status", attrs(n1, "patch", "", "nodes", "status", "", "n2"), allow, ""},
		{"node delete", attrs(n1, "delete", "", "nodes", "", "", "n1"), noOpinion, ""},
		{"its lease", attrs(n1, "update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1"), allow, ""},
		{"lease create", attrs(n1, "create", "coordination.k8s.io", "leases", "", "kube-node-lease", ""), allow, ""},
		{"another lease", attrs(n1, "update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n2"), noOpinion, "can only access node lease with the same name as the requesting node"},
		{"lease elsewhere", attrs(n1, "get", "coordination.k8s.io", "leases", "", "kube-system", "n1"), noOpinion, `can only access leases in the "kube-node-lease" system namespace`},
		{"lease list", attrs(n1, "list", "coordination.k8s.io", "leases", "", "kube-node-lease", ""), noOpinion, "can only get, create, update, patch, or delete a node lease"},
		{"its CSINode", attrs(n1, "patch", "storage.k8s.io", "csinodes", "", "", "n1"), allow, ""},
		{"another CSINode", attrs(n1, "get", "storage.k8s.io", "csinodes", "", "", "n2"), noOpinion, "can only access CSINode with the same name as the requesting node"},
		{"slices of its node", withFieldSelector(attrs(n1, "deletecollection", "resource.k8s.io", "resourceslices", "", "", ""), "spec.nodeName=n1"), allow, ""},
		{"all slices", attrs(n1, "deletecollection", "resource.k8s.io", "resourceslices", "", "", ""), noOpinion, "can only list/watch/deletecollection resourceslices with nodeName field selector"},
		{"pod certificate request", attrs(n1, "create", "certificates.k8s.io", "podcertificaterequests", "", "ns", ""), noOpinion, ""},
		// The node rules for the rest.
		{"services", attrs(n1, "list", "", "services", "", "", ""), allow, ""},
		{"endpoints", attrs(n1, "get", "", "endpoints", "", "ns", "e"), allow, ""},
		{"events", attrs(n1, "create", "events.k8s.io", "events", "", "ns", ""), allow, ""},
		{"token reviews", attrs(n1, "create", "authentication.k8s.io", "tokenreviews", "", "", ""), allow, ""},
		{"subject access reviews", attrs(n1, "create", "authorization.k8s.io", "subjectaccessreviews", "", "", ""), allow, ""},
		{"CSRs", attrs(n1, "create", "certificates.k8s.io", "certificatesigningrequests", "", "", ""), allow, ""},
		{"runtime classes", attrs(n1, "watch", "node.k8s.io", "runtimeclasses", "", "", ""), allow, ""},
		{"deployments", attrs(n1, "list", "apps", "deployments", "", "", ""), noOpinion, ""},
		{"non-resource", authorizer.AttributesRecord{User: n1, Verb: "get", Path: "/metrics"}, noOpinion, ""},
		// Not nodes.
		{"not in system:nodes", attrs(&user.DefaultInfo{Name: "system:node:n1"}, "get", "", "secrets", "", "ns", "s1"), noOpinion, ""},
		{"bootstrap token", attrs(&user.DefaultInfo{Name: "system:bootstrap:abcdef", Groups: []string{"system:bootstrappers"}}, "get", "", "secrets", "", "ns", "s1"), noOpinion, ""},
		{"nameless node", attrs(&user.DefaultInfo{Name: "system:node:", Groups: []string{user.NodesGroup}}, "get", "", "nodes", "", "", ""), noOpinion, `unknown node for user "system:node:"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, err := a.Authorize(context.Background(), tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || reason != tc.reason {
				t.Errorf("Authorize = %v %q, want %v %q", got, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestGraphFollowsInformers(t *testing.T) {
	a, client := started(t, podOn("p1", "n1"))
	eventually(t, a.graph, true, "n1", Secret, "ns", "s1")
	ctx := context.Background()

	// An ephemeral container brings a new secret.
	p, err := client.CoreV1().Pods("ns").Get(ctx, "p1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug",
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "debug-secret"}}}}}}}
	if _, err := client.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, a.graph, true, "n1", Secret, "ns", "debug-secret")

	// A generated ResourceClaim appears in the status.
	p, _ = client.CoreV1().Pods("ns").Get(ctx, "p1", metav1.GetOptions{})
	p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: new("t")}}
	if _, err := client.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "gpu", ResourceClaimName: new("p1-gpu-abc")}}
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, a.graph, true, "n1", ResourceClaim, "ns", "p1-gpu-abc")

	if err := client.CoreV1().Pods("ns").Delete(ctx, "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, a.graph, false, "n1", Secret, "ns", "s1")
	eventually(t, a.graph, false, "n1", Pod, "ns", "p1")

	// A pod bound later (the scheduler's binding) relates then.
	unbound := podOn("p2", "")
	create(t, client, unbound)
	time.Sleep(100 * time.Millisecond)
	if a.graph.Related("n1", Secret, "ns", "s1") {
		t.Fatal("an unbound pod's secret is related")
	}
	unbound.Spec.NodeName = "n1"
	if _, err := client.CoreV1().Pods("ns").Update(ctx, unbound, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, a.graph, true, "n1", Secret, "ns", "s1")

	// VolumeAttachments follow their node.
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "va"}, Spec: storagev1.VolumeAttachmentSpec{NodeName: "n1"}}
	create(t, client, va)
	eventually(t, a.graph, true, "n1", VolumeAttachment, "", "va")
	if err := client.StorageV1().VolumeAttachments().Delete(ctx, "va", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, a.graph, false, "n1", VolumeAttachment, "", "va")
}

func TestRulesFor(t *testing.T) {
	a := NewAuthorizer(NewGraph(), nil)
	if _, _, incomplete, err := a.RulesFor(context.Background(), n1, "ns"); !incomplete || err == nil {
		t.Errorf("a node's rules: incomplete %v, err %v; want incomplete with an error", incomplete, err)
	}
	if _, _, incomplete, err := a.RulesFor(context.Background(), &user.DefaultInfo{Name: "alice"}, "ns"); incomplete || err != nil {
		t.Errorf("alice's rules: incomplete %v, err %v; want none", incomplete, err)
	}
}
