package apiserver_test

// The groups served besides core, apps, batch, events, coordination and
// discovery: rbac.authorization.k8s.io, networking.k8s.io, policy,
// scheduling.k8s.io, storage.k8s.io, node.k8s.io and certificates.k8s.io.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/controlplane/priorityclasses"
)

// TestGroupsDiscovery: every resource of these groups is listed as upstream
// v1.37 lists it: scope, short names, subresources.
func TestGroupsDiscovery(t *testing.T) {
	t.Parallel()
	type res struct {
		namespaced bool
		short      []string
	}
	want := map[string]map[string]res{
		"rbac.authorization.k8s.io/v1": {
			"roles": {true, nil}, "rolebindings": {true, nil}, "clusterroles": {false, nil}, "clusterrolebindings": {false, nil},
		},
		"networking.k8s.io/v1": {
			"networkpolicies": {true, []string{"netpol"}}, "ingresses": {true, []string{"ing"}}, "ingresses/status": {true, nil},
			"ingressclasses": {false, nil},
		},
		"policy/v1":            {"poddisruptionbudgets": {true, []string{"pdb"}}, "poddisruptionbudgets/status": {true, nil}},
		"scheduling.k8s.io/v1": {"priorityclasses": {false, []string{"pc"}}},
		"storage.k8s.io/v1": {
			"storageclasses": {false, []string{"sc"}}, "csidrivers": {false, nil}, "csinodes": {false, nil}, "csinodes/status": {false, nil},
			"volumeattachments": {false, nil}, "volumeattachments/status": {false, nil},
		},
		"node.k8s.io/v1": {"runtimeclasses": {false, nil}},
		"certificates.k8s.io/v1": {
			"certificatesigningrequests": {false, []string{"csr"}}, "certificatesigningrequests/status": {false, nil},
			"certificatesigningrequests/approval": {false, nil},
		},
	}
	for gv, resources := range want {
		t.Run(gv, func(t *testing.T) {
			list, err := cs.Discovery().ServerResourcesForGroupVersion(gv)
			if err != nil {
				t.Fatal(err)
			}
			served := map[string]metav1.APIResource{}
			for _, r := range list.APIResources {
				served[r.Name] = r
			}
			for name, w := range resources {
				r, ok := served[name]
				switch {
				case !ok:
					t.Errorf("%s is not served", name)
				case r.Namespaced != w.namespaced || !slices.Equal(r.ShortNames, w.short):
					t.Errorf("%s: namespaced %v, short names %v; want %v, %v", name, r.Namespaced, r.ShortNames, w.namespaced, w.short)
				case len(r.Categories) != 0:
					t.Errorf("%s: categories %v, want none", name, r.Categories)
				}
			}
		})
	}
}

// TestRBACCRUD: roles and bindings are stored, defaulted and validated;
// roleRef may not change.
func TestRBACCRUD(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-pods"},
		RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "jane"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rb.RoleRef.APIGroup != rbacv1.GroupName || rb.Subjects[0].APIGroup != rbacv1.GroupName {
		t.Errorf("binding not defaulted: %+v %+v", rb.RoleRef, rb.Subjects)
	}
	rb.RoleRef.Name = "other"
	_, err = cs.RbacV1().RoleBindings(ns).Update(ctx, rb, metav1.UpdateOptions{})
	wantStatusErr(t, err, 422, metav1.StatusReasonInvalid)
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "no-verbs"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}}, metav1.CreateOptions{})
	if s := wantStatusErr(t, err, 422, metav1.StatusReasonInvalid); len(s.Details.Causes) != 1 || s.Details.Causes[0].Field != "rules[0].verbs" {
		t.Errorf("causes %+v, want rules[0].verbs", s.Details.Causes)
	}
	// PUT creates RBAC objects, as upstream.
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "test-groups-" + ns},
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: ns}}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Update(ctx, crb, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("PUT of a new cluster role binding: %v", err)
	}
	if err := cs.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestNetworkingCRUD: network policies are defaulted; an ingress counts
// its generation and takes its status through /status only.
func TestNetworkingCRUD(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	np, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "np"},
		Spec: networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(53))}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{"Ingress", "Egress"}) || *np.Spec.Egress[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("network policy not defaulted: %+v", np.Spec)
	}

	ings := cs.NetworkingV1().Ingresses(ns)
	ing, err := ings.Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
		Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ing.Generation != 1 || len(ing.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("created ingress: generation %d, status %+v; want 1 and no status", ing.Generation, ing.Status)
	}
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}}
	ing, err = ings.UpdateStatus(ctx, ing, metav1.UpdateOptions{})
	if err != nil || len(ing.Status.LoadBalancer.Ingress) != 1 {
		t.Fatalf("status update: %v %+v", err, ing)
	}
	ing.Status.LoadBalancer.Ingress[0].IP = "not-an-ip"
	_, err = ings.UpdateStatus(ctx, ing, metav1.UpdateOptions{})
	wantStatusErr(t, err, 422, metav1.StatusReasonInvalid)
	ing.Status.LoadBalancer.Ingress = nil
	ing.Spec.DefaultBackend.Service.Port.Number = 8080
	ing, err = ings.Update(ctx, ing, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ing.Generation != 2 || len(ing.Status.LoadBalancer.Ingress) != 1 {
		t.Errorf("updated ingress: generation %d, status %+v; want 2 and the stored status", ing.Generation, ing.Status)
	}
}

// TestPodDisruptionBudgetCRUD: PDBs validate their budget and have a
// status subresource.
func TestPodDisruptionBudgetCRUD(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	pdbs := cs.PolicyV1().PodDisruptionBudgets(ns)
	pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("50%")),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status.DisruptionsAllowed = 2
	pdb.Status.ExpectedPods = 4
	if pdb, err = pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil || pdb.Status.ExpectedPods != 4 {
		t.Fatalf("status update: %v", err)
	}
	pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	_, err = pdbs.Update(ctx, pdb, metav1.UpdateOptions{})
	if s := wantStatusErr(t, err, 422, metav1.StatusReasonInvalid); len(s.Details.Causes) != 1 || s.Details.Causes[0].Field != "spec" {
		t.Errorf("causes %+v, want spec", s.Details.Causes)
	}
}

// TestPriorityClasses: the system classes exist after the bootstrap and
// cannot be deleted; user classes are capped.
func TestPriorityClasses(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	// The server registers the hook that does this at start
	// (pkg/controlplane/priorityclasses); doing it again is harmless.
	if err := priorityclasses.Ensure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	pcs := cs.SchedulingV1().PriorityClasses()
	for name, value := range map[string]int32{"system-node-critical": 2000001000, "system-cluster-critical": 2000000000} {
		pc, err := pcs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pc.Value != value || pc.PreemptionPolicy == nil || *pc.PreemptionPolicy != corev1.PreemptLowerPriority {
			t.Errorf("%s: value %d, preemption policy %v", name, pc.Value, pc.PreemptionPolicy)
		}
		err = pcs.Delete(ctx, name, metav1.DeleteOptions{})
		wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	}
	_, err := pcs.Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "test-groups-too-high"}, Value: 1000000001}, metav1.CreateOptions{})
	wantStatusErr(t, err, 422, metav1.StatusReasonInvalid)
	pc, err := pcs.Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "test-groups-high"}, Value: 1000000000}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pc.Generation != 1 {
		t.Errorf("generation %d, want 1", pc.Generation)
	}
	if err := pcs.Delete(ctx, pc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestStorageCRUD: storage classes are defaulted, keep their parameters,
// and DELETE answers with the deleted object.
func TestStorageCRUD(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	scs := cs.StorageV1().StorageClasses()
	sc, err := scs.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "test-groups-fast"},
		Provisioner: "example.com/csi", Parameters: map[string]string{"type": "ssd"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.ReclaimPolicy == nil || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("storage class not defaulted: %+v", sc)
	}
	sc.Parameters["type"] = "hdd"
	_, err = scs.Update(ctx, sc, metav1.UpdateOptions{})
	wantStatusErr(t, err, 422, metav1.StatusReasonInvalid)
	r := do(t, nil, "DELETE", "/apis/storage.k8s.io/v1/storageclasses/"+sc.Name, nil, nil)
	if r.code != 200 || !strings.Contains(string(r.body), `"kind":"StorageClass"`) {
		t.Errorf("DELETE = %d:\n%s", r.code, r.body)
	}
}

// TestRuntimeClassCRUD: the handler is immutable.
func TestRuntimeClassCRUD(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	rcs := cs.NodeV1().RuntimeClasses()
	rc, err := rcs.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "test-groups-kata"}, Handler: "kata"}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc.Handler = "runc"
	_, err = rcs.Update(ctx, rc, metav1.UpdateOptions{})
	wantStatusErr(t, err, 422, metav1.StatusReasonInvalid)
	if err := rcs.Delete(ctx, rc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCertificateSigningRequests: the requester is filled in from the
// request, /approval sets the Approved condition, /status the certificate,
// and neither may do the other's part.
func TestCertificateSigningRequests(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "jane"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "test-groups-jane"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: "example.com/test-signer",
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
			Username:   "forged",
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if csr.Spec.Username != "kubernetes-admin" || !slices.Contains(csr.Spec.Groups, "system:masters") {
		t.Errorf("requester %q %v, want kubernetes-admin in system:masters", csr.Spec.Username, csr.Spec.Groups)
	}
	list, err := csrs.List(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=example.com/test-signer"})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("field selector spec.signerName: %v, %d items", err, len(list.Items))
	}

	approved := csr.DeepCopy()
	approved.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"}}
	_, err = csrs.UpdateStatus(ctx, approved, metav1.UpdateOptions{})
	wantStatusErr(t, err, 422, metav1.StatusReasonInvalid) // only /approval approves
	approved.Status.Certificate = []byte("ignored by /approval")
	csr, err = csrs.UpdateApproval(ctx, csr.Name, approved, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(csr.Status.Conditions) != 1 || csr.Status.Conditions[0].LastUpdateTime.IsZero() || csr.Status.Certificate != nil {
		t.Errorf("after approval: %+v", csr.Status)
	}

	issued := csr.DeepCopy()
	issued.Status.Certificate = selfSigned(t, key)
	issued.Status.Conditions[0].Reason = "Changed" // /status keeps the stored Approved condition
	csr, err = csrs.UpdateStatus(ctx, issued, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(csr.Status.Certificate) == 0 || len(csr.Status.Conditions) != 1 || csr.Status.Conditions[0].Reason != "Test" {
		t.Errorf("after the status update: %+v", csr.Status)
	}
	// The main resource changes neither spec nor status.
	csr.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth}
	csr.Status.Certificate = nil
	csr.Labels = map[string]string{"a": "b"}
	if csr, err = csrs.Update(ctx, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if csr.Spec.Usages[0] != certificatesv1.UsageClientAuth || len(csr.Status.Certificate) == 0 || csr.Labels["a"] != "b" {
		t.Errorf("after the main update: %+v", csr)
	}
	if err := csrs.Delete(ctx, csr.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jane"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestGroupsStorageInEtcd: objects of these groups are stored as v1
// protobuf under upstream's keys (ingresses under "ingress").
func TestGroupsStorageInEtcd(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "stored"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "stored"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := cs.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "test-groups-" + ns}, Handler: "runc"}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.NodeV1().RuntimeClasses().Delete(context.Background(), rc.Name, metav1.DeleteOptions{}) })

	decoder := protobuf.NewSerializer(apis.Scheme, apis.Scheme)
	for key, kind := range map[string]string{
		"/registry/ingress/" + ns + "/stored": "networking.k8s.io/v1/Ingress",
		"/registry/roles/" + ns + "/stored":   "rbac.authorization.k8s.io/v1/Role",
		"/registry/runtimeclasses/" + rc.Name: "node.k8s.io/v1/RuntimeClass",
	} {
		resp, err := etcdc.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || !bytes.HasPrefix(resp.Kvs[0].Value, protoMagic) {
			t.Errorf("%s: %d keys, want one protobuf value", key, len(resp.Kvs))
			continue
		}
		_, gvk, err := decoder.Decode(resp.Kvs[0].Value, nil, &runtime.Unknown{})
		if err != nil {
			t.Fatal(err)
		}
		if got := gvk.GroupVersion().String() + "/" + gvk.Kind; got != kind {
			t.Errorf("%s: stored as %s, want %s", key, got, kind)
		}
	}
}
