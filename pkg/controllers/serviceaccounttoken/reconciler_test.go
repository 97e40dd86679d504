package serviceaccounttoken

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/skiff-dev/skiff/pkg/serviceaccount"
)

const rootCA = "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"

func serviceAccount(name, uid string, secrets ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name, UID: types.UID(uid)}}
	for _, s := range secrets {
		sa.Secrets = append(sa.Secrets, corev1.ObjectReference{Name: s})
	}
	return sa
}

// tokenSecret is a token Secret as a user creates it: naming the
// ServiceAccount, nothing else.
func tokenSecret(name, saName string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name, UID: types.UID(name + "-uid"),
			Annotations: map[string]string{corev1.ServiceAccountNameKey: saName}},
		Type: corev1.SecretTypeServiceAccountToken,
	}
}

// getter reads the objects a token names from the fake client.
type getter struct{ c client.Client }

func (g getter) GetServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	sa := &corev1.ServiceAccount{}
	return sa, g.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sa)
}
func (g getter) GetSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, g.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)
}
func (g getter) GetPod(context.Context, string, string) (*corev1.Pod, error) { return nil, nil }
func (g getter) GetNode(context.Context, string) (*corev1.Node, error)       { return nil, nil }

type fixture struct {
	t      *testing.T
	c      client.Client
	r      *Reconciler
	authn  authenticator.Token
	reader client.Client
}

// newFixture: a reconciler whose cache holds cached and whose API holds
// cached plus live.
func newFixture(t *testing.T, cached []client.Object, live ...client.Object) *fixture {
	t.Helper()
	key, err := serviceaccount.EnsureSigningKey(filepath.Join(t.TempDir(), "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := serviceaccount.NewGenerator(serviceaccount.LegacyIssuer, key)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := serviceaccount.PublicKeys(key)
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(cached...).Build()
	reader := c
	if len(live) > 0 {
		all := append(append([]client.Object{}, cached...), live...)
		for i, o := range all {
			all[i] = o.DeepCopyObject().(client.Object)
			all[i].SetResourceVersion("")
		}
		reader = fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(all...).Build()
	}
	return &fixture{t: t, c: c, reader: reader,
		r:     &Reconciler{Client: c, APIReader: reader, Generator: gen, RootCA: []byte(rootCA)},
		authn: serviceaccount.NewLegacyAuthenticator(keys, authenticator.Audiences{"api"}, getter{c}, kubefake.NewClientset().CoreV1())}
}

func (f *fixture) reconcile(name string) {
	f.t.Helper()
	if _, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns1", Name: name}}); err != nil {
		f.t.Fatalf("reconcile %s: %v", name, err)
	}
}

func (f *fixture) secret(name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns1", Name: name}, s)
}

func TestPopulate(t *testing.T) {
	f := newFixture(t, []client.Object{serviceAccount("robot", "robot-uid"), tokenSecret("robot-token", "robot")})
	f.reconcile("robot-token")
	s, err := f.secret("robot-token")
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data["ca.crt"]) != rootCA || string(s.Data["namespace"]) != "ns1" || len(s.Data["token"]) == 0 || len(s.Data) != 3 {
		t.Errorf("data %v: want ca.crt, namespace and token", s.Data)
	}
	if s.Annotations[corev1.ServiceAccountUIDKey] != "robot-uid" || s.Annotations[corev1.ServiceAccountNameKey] != "robot" {
		t.Errorf("annotations %v", s.Annotations)
	}
	// The token is the ServiceAccount's, for the server.
	resp, ok, err := f.authn.AuthenticateToken(context.Background(), string(s.Data["token"]))
	if err != nil || !ok || resp.User.GetName() != "system:serviceaccount:ns1:robot" || resp.User.GetUID() != "robot-uid" {
		t.Fatalf("the written token: ok=%v err=%v resp=%+v", ok, err, resp)
	}

	// Idempotent: nothing to write a second time.
	rv, token := s.ResourceVersion, string(s.Data["token"])
	f.reconcile("robot-token")
	if s, _ = f.secret("robot-token"); s.ResourceVersion != rv {
		t.Errorf("a filled Secret was written again (resourceVersion %s -> %s)", rv, s.ResourceVersion)
	}

	// A changed CA and a lost namespace come back; the token stays.
	s.Data["ca.crt"] = []byte("old")
	delete(s.Data, "namespace")
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.reconcile("robot-token")
	s, _ = f.secret("robot-token")
	if string(s.Data["ca.crt"]) != rootCA || string(s.Data["namespace"]) != "ns1" || string(s.Data["token"]) != token {
		t.Errorf("after the CA changed and the namespace went: data %v", s.Data)
	}

	// A token Secret with the token removed gets a new one.
	delete(s.Data, "token")
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.reconcile("robot-token")
	if s, _ = f.secret("robot-token"); len(s.Data["token"]) == 0 {
		t.Error("an emptied token was not written again")
	}
}

func TestServiceAccountOnlyInTheAPI(t *testing.T) {
	// Created just before the Secret: the cache does not hold it yet.
	f := newFixture(t, []client.Object{tokenSecret("t", "robot")}, serviceAccount("robot", "robot-uid"))
	f.reconcile("t")
	s, err := f.secret("t")
	if err != nil {
		t.Fatalf("a Secret whose ServiceAccount only the API holds was deleted: %v", err)
	}
	if len(s.Data["token"]) == 0 || s.Annotations[corev1.ServiceAccountUIDKey] != "robot-uid" {
		t.Errorf("data %v annotations %v", s.Data, s.Annotations)
	}
}

func TestDeleteWithoutServiceAccount(t *testing.T) {
	stale := tokenSecret("stale", "robot")
	stale.Annotations[corev1.ServiceAccountUIDKey] = "old-uid"
	opaque := tokenSecret("opaque", "nobody")
	opaque.Type = corev1.SecretTypeOpaque
	unnamed := tokenSecret("unnamed", "")
	delete(unnamed.Annotations, corev1.ServiceAccountNameKey)
	f := newFixture(t, []client.Object{serviceAccount("robot", "robot-uid"),
		tokenSecret("orphan", "nobody"), stale, opaque, unnamed})
	for _, name := range []string{"orphan", "stale", "opaque", "unnamed"} {
		f.reconcile(name)
	}
	for _, name := range []string{"orphan", "stale"} {
		if _, err := f.secret(name); !apierrors.IsNotFound(err) {
			t.Errorf("%s: a token Secret without its ServiceAccount was kept: %v", name, err)
		}
	}
	// Not token Secrets of a ServiceAccount: left alone.
	for _, name := range []string{"opaque", "unnamed"} {
		if s, err := f.secret(name); err != nil || len(s.Data) != 0 {
			t.Errorf("%s: err %v data %v, want untouched", name, err, s.Data)
		}
	}
	f.reconcile("missing")
}

func TestServiceAccountDeleted(t *testing.T) {
	other := tokenSecret("other", "robot")
	other.Namespace = "ns2"
	opaque := tokenSecret("opaque", "robot")
	opaque.Type = corev1.SecretTypeOpaque
	sa := serviceAccount("robot", "robot-uid")
	f := newFixture(t, []client.Object{sa, tokenSecret("a", "robot"), tokenSecret("b", "robot"),
		tokenSecret("c", "someone-else"), other, opaque})
	ctx := context.Background()
	reqs := f.r.tokensOf(ctx, sa)
	got := map[string]bool{}
	for _, r := range reqs {
		got[r.Namespace+"/"+r.Name] = true
	}
	if len(got) != 2 || !got["ns1/a"] || !got["ns1/b"] {
		t.Fatalf("a deleted ServiceAccount enqueues %v, want its token Secrets ns1/a, ns1/b", reqs)
	}
	if err := f.c.Delete(ctx, sa); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		f.reconcile(r.Name)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := f.secret(name); !apierrors.IsNotFound(err) {
			t.Errorf("%s outlived its ServiceAccount: %v", name, err)
		}
	}
	if _, err := f.secret("c"); err != nil {
		t.Errorf("another ServiceAccount's token went too: %v", err)
	}
}

func TestSecretDeletedDropsReference(t *testing.T) {
	secret := tokenSecret("robot-token", "robot")
	secret.Annotations[corev1.ServiceAccountUIDKey] = "robot-uid"
	f := newFixture(t, []client.Object{serviceAccount("robot", "robot-uid", "robot-token", "pull-secret")})
	// Deleted (the event) before the reconciler saw it.
	f.r.SecretDeleted(secret)
	f.reconcile("robot-token")
	sa := &corev1.ServiceAccount{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns1", Name: "robot"}, sa); err != nil {
		t.Fatal(err)
	}
	if len(sa.Secrets) != 1 || sa.Secrets[0].Name != "pull-secret" {
		t.Errorf("secrets %v, want only pull-secret", sa.Secrets)
	}
	if len(f.r.gone) != 0 {
		t.Errorf("still remembered: %v", f.r.gone)
	}

	// A deleted Secret nobody recorded leaves references alone.
	f.reconcile("pull-secret")
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns1", Name: "robot"}, sa); err != nil || len(sa.Secrets) != 1 {
		t.Errorf("secrets %v err %v", sa.Secrets, err)
	}
}
