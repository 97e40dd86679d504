package noderestriction

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// audiences allows the audience "allowed" to every node.
type audiences struct{}

func (audiences) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.GetVerb() == "request-serviceaccounts-token-audience" && a.GetResource() == "allowed" {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

var (
	nodeA = &user.DefaultInfo{Name: "system:node:a", Groups: []string{user.NodesGroup, user.AllAuthenticated}}
	alice = &user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated}}
)

func pod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{NodeName: node, Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{
				// kube-api-access's token (the API's audience) and another.
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "t"}},
			}}}}}},
	}
}

// plugin is the plugin on informers holding the nodes a and b, the pods
// pa (on a) and pb (on b), a CSI claim on a and its driver.
func plugin(t *testing.T) *Plugin {
	t.Helper()
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	idx := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	idx(factory.Core().V1().Nodes().Informer().GetIndexer().Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "node-a-uid"}}))
	idx(factory.Core().V1().Nodes().Informer().GetIndexer().Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", UID: "node-b-uid"}}))
	pa := pod("pa", "a")
	pa.Spec.Volumes = append(pa.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
	idx(factory.Core().V1().Pods().Informer().GetIndexer().Add(pa))
	idx(factory.Core().V1().Pods().Informer().GetIndexer().Add(pod("pb", "b")))
	idx(factory.Core().V1().PersistentVolumeClaims().Informer().GetIndexer().Add(&corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-data"}}))
	idx(factory.Core().V1().PersistentVolumes().Informer().GetIndexer().Add(&corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-data"}, Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
			CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: "h"}}}}))
	idx(factory.Storage().V1().CSIDrivers().Informer().GetIndexer().Add(&storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: "csi.example.com"}, Spec: storagev1.CSIDriverSpec{TokenRequests: []storagev1.TokenRequest{{Audience: "csi-audience"}}}}))
	return New(factory, audiences{})
}

type request struct {
	user        user.Info
	op          admission.Operation
	resource    schema.GroupVersionResource
	subresource string
	namespace   string
	name        string
	obj, old    runtime.Object
}

func (r request) attributes() admission.Attributes {
	return admission.NewAttributesRecord(r.obj, r.old, schema.GroupVersionKind{}, r.namespace, r.name, r.resource, r.subresource, r.op, nil, false, r.user)
}

var (
	nodesGVR  = corev1.SchemeGroupVersion.WithResource("nodes")
	podsGVR   = corev1.SchemeGroupVersion.WithResource("pods")
	claimsGVR = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")
	saGVR     = corev1.SchemeGroupVersion.WithResource("serviceaccounts")
	leaseGVR  = coordinationv1.SchemeGroupVersion.WithResource("leases")
	csrGVR    = certificatesv1.SchemeGroupVersion.WithResource("certificatesigningrequests")
	csiGVR    = storagev1.SchemeGroupVersion.WithResource("csinodes")
)

func node(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func mirror(name, nodeName string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
			Annotations:     map[string]string{corev1.MirrorPodAnnotationKey: "hash"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "a", UID: "node-a-uid", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "i"}},
			Volumes: []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func tokenRequest(podName, uid string, audiences ...string) *authenticationv1.TokenRequest {
	return &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences,
		BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: podName, UID: types.UID(uid)}}}
}

func csr(t *testing.T, signer, cn string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: signer,
		Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})}}
}

func TestAdmit(t *testing.T) {
	p := plugin(t)
	withLabel := func(k, v string) map[string]string { return map[string]string{"kubernetes.io/hostname": "a", k: v} }
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", ResourceVersion: "1"}}
	claimConditions := claim.DeepCopy()
	claimConditions.ResourceVersion = ""
	claimConditions.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue}}
	claimLabeled := claim.DeepCopy()
	claimLabeled.Labels = map[string]string{"x": "y"}
	relabeled := pod("pa", "a")
	relabeled.Labels = map[string]string{"app": "other"}

	for _, tc := range []struct {
		name string
		req  request
		// want is "" for admitted, else a part of the forbidden message
		// (or "NotFound").
		want string
	}{
		{"not a node", request{user: alice, op: admission.Update, resource: nodesGVR, name: "b", obj: node("b", nil), old: node("b", nil)}, ""},
		{"nameless node", request{user: &user.DefaultInfo{Name: "system:node:", Groups: []string{user.NodesGroup}}, op: admission.Update, resource: nodesGVR, name: "b"},
			`could not determine node from user "system:node:"`},

		// Nodes.
		{"another node", request{user: nodeA, op: admission.Update, resource: nodesGVR, subresource: "status", name: "b", obj: node("b", nil), old: node("b", nil)},
			`nodes "b" is forbidden: node "a" is not allowed to modify node "b"`},
		{"its node status", request{user: nodeA, op: admission.Update, resource: nodesGVR, subresource: "status", name: "a", obj: node("a", nil), old: node("a", nil)}, ""},
		{"register", request{user: nodeA, op: admission.Create, resource: nodesGVR, name: "a",
			obj: node("a", map[string]string{"kubernetes.io/hostname": "a", "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m", "topology.kubernetes.io/zone": "z", "example.com/rack": "1"})}, ""},
		{"register with a protected label", request{user: nodeA, op: admission.Create, resource: nodesGVR, name: "a",
			obj: node("a", map[string]string{"node-role.kubernetes.io/control-plane": "", "foo.node-restriction.kubernetes.io/x": "y"})},
			`node "a" is not allowed to set the following labels: foo.node-restriction.kubernetes.io/x, node-role.kubernetes.io/control-plane`},
		{"register with a configSource", request{user: nodeA, op: admission.Create, resource: nodesGVR, name: "a",
			obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: corev1.NodeSpec{ConfigSource: &corev1.NodeConfigSource{}}}},
			`node "a" is not allowed to create pods with a non-nil configSource`},
		{"taint change", request{user: nodeA, op: admission.Update, resource: nodesGVR, name: "a", obj: node("a", nil), old: node("a", nil, corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule})},
			`node "a" is not allowed to modify taints`},
		{"owner change", request{user: nodeA, op: admission.Update, resource: nodesGVR, name: "a",
			obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", OwnerReferences: []metav1.OwnerReference{{Name: "x"}}}}, old: node("a", nil)},
			`node "a" is not allowed to modify ownerReferences`},
		{"kubelet label change", request{user: nodeA, op: admission.Update, resource: nodesGVR, name: "a",
			obj: node("a", withLabel("kubernetes.io/arch", "arm64")), old: node("a", withLabel("kubernetes.io/arch", "amd64"))}, ""},
		{"protected label change", request{user: nodeA, op: admission.Update, resource: nodesGVR, name: "a",
			obj: node("a", withLabel("node-restriction.kubernetes.io/pool", "b")), old: node("a", withLabel("node-restriction.kubernetes.io/pool", "a"))},
			`nodes "a" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool`},
		{"removing a kubernetes.io label", request{user: nodeA, op: admission.Update, resource: nodesGVR, name: "a",
			obj: node("a", nil), old: node("a", map[string]string{"k8s.io/other": "x"})},
			`is not allowed to modify labels: k8s.io/other`},

		// Pods.
		{"a regular pod", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: pod("p", "a")},
			`pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods`},
		{"its mirror pod", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: mirror("static-a", "a")}, ""},
		{"a mirror pod elsewhere", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: mirror("static-b", "b")},
			`node "a" can only create pods with spec.nodeName set to itself`},
		{"a mirror pod with a secret", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: mirror("static-a", "a", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}})
		})}, `node "a" can not create pods that reference secrets`},
		{"a mirror pod with a configmap env", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: mirror("static-a", "a", func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}
		})}, `node "a" can not create pods that reference configmaps`},
		{"a mirror pod without owner", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: mirror("static-a", "a", func(p *corev1.Pod) { p.OwnerReferences = nil })},
			`node "a" can only create pods with an owner reference set to itself`},
		{"a mirror pod of a stale node", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: mirror("static-a", "a", func(p *corev1.Pod) { p.OwnerReferences[0].UID = "old" })},
			`node a UID mismatch: expected old got node-a-uid`},
		{"a mirror pod blocking deletion", request{user: nodeA, op: admission.Create, resource: podsGVR, namespace: "ns", obj: mirror("static-a", "a", func(p *corev1.Pod) {
			p.OwnerReferences[0].BlockOwnerDeletion = ptr.To(true)
		})}, `node "a" must not set blockOwnerDeletion on an owner reference`},
		{"pod update", request{user: nodeA, op: admission.Update, resource: podsGVR, namespace: "ns", name: "pa", obj: pod("pa", "a"), old: pod("pa", "a")},
			`unexpected operation "UPDATE", node "a" can only create and delete mirror pods`},
		{"delete its pod", request{user: nodeA, op: admission.Delete, resource: podsGVR, namespace: "ns", name: "pa"}, ""},
		{"delete another's pod", request{user: nodeA, op: admission.Delete, resource: podsGVR, namespace: "ns", name: "pb"},
			`node "a" can only delete pods with spec.nodeName set to itself`},
		{"delete a missing pod", request{user: nodeA, op: admission.Delete, resource: podsGVR, namespace: "ns", name: "gone"}, "NotFound"},
		{"its pod's status", request{user: nodeA, op: admission.Update, resource: podsGVR, subresource: "status", namespace: "ns", name: "pa", obj: pod("pa", "a"), old: pod("pa", "a")}, ""},
		{"another's pod status", request{user: nodeA, op: admission.Update, resource: podsGVR, subresource: "status", namespace: "ns", name: "pb", obj: pod("pb", "b"), old: pod("pb", "b")},
			`pods "pb" is forbidden: node "a" can only update pod status for pods with spec.nodeName set to itself`},
		{"labels through status", request{user: nodeA, op: admission.Update, resource: podsGVR, subresource: "status", namespace: "ns", name: "pa", obj: relabeled, old: pod("pa", "a")},
			`node "a" cannot update labels through pod status`},
		{"evict its pod", request{user: nodeA, op: admission.Create, resource: podsGVR, subresource: "eviction", namespace: "ns", name: "pa", obj: &policyv1.Eviction{}}, ""},
		{"evict another's pod", request{user: nodeA, op: admission.Create, resource: podsGVR, subresource: "eviction", namespace: "ns", name: "pb", obj: &policyv1.Eviction{}},
			`node a can only evict pods with spec.nodeName set to itself`},
		{"exec", request{user: nodeA, op: admission.Create, resource: podsGVR, subresource: "exec", namespace: "ns", name: "pa"},
			`unexpected pod subresource "exec", only 'status' and 'eviction' are allowed`},

		// Service account tokens.
		{"token for its pod", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "uid-pa")}, ""},
		{"token for its pod's volume audience", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "uid-pa", "vault")}, ""},
		{"token for its pod's CSI driver", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "uid-pa", "csi-audience")}, ""},
		{"token for an authorized audience", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "uid-pa", "allowed")}, ""},
		{"token for another audience", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "uid-pa", "elsewhere")},
			`system:node:a is not authorized to request tokens for audience "elsewhere"`},
		{"token for two audiences", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "uid-pa", "vault", "allowed")},
			`node may only request 0 or 1 audiences`},
		{"token for another's pod", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pb", "uid-pb")},
			`node requested token bound to a pod scheduled on a different node`},
		{"token for a recreated pod", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "old")},
			`the UID in the bound object reference (old) does not match the UID in record`},
		{"unbound token", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: &authenticationv1.TokenRequest{}},
			`node requested token not bound to a pod`},
		{"token without uid", request{user: nodeA, op: admission.Create, resource: saGVR, subresource: "token", namespace: "ns", name: "default", obj: tokenRequest("pa", "")},
			`node requested token with a pod binding without a uid`},

		// Leases.
		{"its lease", request{user: nodeA, op: admission.Create, resource: leaseGVR, namespace: "kube-node-lease", obj: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}, ""},
		{"another lease", request{user: nodeA, op: admission.Create, resource: leaseGVR, namespace: "kube-node-lease", obj: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "b"}}},
			`can only access node lease with the same name as the requesting node`},
		{"another lease update", request{user: nodeA, op: admission.Update, resource: leaseGVR, namespace: "kube-node-lease", name: "b"},
			`can only access node lease with the same name as the requesting node`},
		{"a lease elsewhere", request{user: nodeA, op: admission.Update, resource: leaseGVR, namespace: "default", name: "a"},
			`can only access leases in the "kube-node-lease" system namespace`},

		// Claims' status.
		{"claim conditions", request{user: nodeA, op: admission.Update, resource: claimsGVR, subresource: "status", namespace: "ns", name: "data", obj: claimConditions, old: claim}, ""},
		{"claim labels through status", request{user: nodeA, op: admission.Update, resource: claimsGVR, subresource: "status", namespace: "ns", name: "data", obj: claimLabeled, old: claim},
			`node "a" is not allowed to update fields other than status.quantity and status.conditions`},
		{"claim update", request{user: nodeA, op: admission.Update, resource: claimsGVR, namespace: "ns", name: "data", obj: claim, old: claim}, `may only update PVC status`},

		// CSINodes.
		{"its CSINode", request{user: nodeA, op: admission.Create, resource: csiGVR, obj: &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}, ""},
		{"another CSINode", request{user: nodeA, op: admission.Update, resource: csiGVR, name: "b"}, `can only access CSINode with the same name as the requesting node`},

		// CSRs.
		{"its client CSR", request{user: nodeA, op: admission.Create, resource: csrGVR, obj: csr(t, "kubernetes.io/kube-apiserver-client-kubelet", "system:node:a")}, ""},
		{"another's serving CSR", request{user: nodeA, op: admission.Create, resource: csrGVR, obj: csr(t, "kubernetes.io/kubelet-serving", "system:node:b")},
			`can only create a node CSR with CN=system:node:a`},
		{"another signer's CSR", request{user: nodeA, op: admission.Create, resource: csrGVR, obj: csr(t, "example.com/signer", "system:node:b")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Admit(context.Background(), tc.req.attributes(), nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("admitted, want %q", tc.want)
			case tc.want == "NotFound":
				if !apierrors.IsNotFound(err) {
					t.Fatalf("error %v, want NotFound", err)
				}
			case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v, want Forbidden containing %q", err, tc.want)
			}
		})
	}
}

func TestHandles(t *testing.T) {
	p := plugin(t)
	for _, op := range []admission.Operation{admission.Create, admission.Update, admission.Delete} {
		if !p.Handles(op) {
			t.Errorf("does not handle %s", op)
		}
	}
	if p.Handles(admission.Connect) {
		t.Error("handles CONNECT")
	}
}
