package certificates

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// grants allows verb on the signers named in allowed[verb], and records
// what it was asked.
type grants struct {
	allowed map[string][]string
	err     error
	asked   []authorizer.Attributes
}

func (g *grants) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	g.asked = append(g.asked, a)
	if g.err != nil {
		return authorizer.DecisionNoOpinion, "", g.err
	}
	if a.GetAPIGroup() != "certificates.k8s.io" || a.GetResource() != "signers" || !a.IsResourceRequest() || a.GetAPIVersion() != "*" {
		return authorizer.DecisionNoOpinion, "", nil
	}
	for _, name := range g.allowed[a.GetVerb()] {
		if name == a.GetName() {
			return authorizer.DecisionAllow, "", nil
		}
	}
	return authorizer.DecisionNoOpinion, "", nil
}

func TestAuthorizedForSigner(t *testing.T) {
	u := &user.DefaultInfo{Name: "alice"}
	for _, tc := range []struct {
		name    string
		allowed map[string][]string
		verb    string
		signer  string
		want    bool
	}{
		{"exact name", map[string][]string{"approve": {"example.com/foo"}}, "approve", "example.com/foo", true},
		{"domain wildcard", map[string][]string{"approve": {"example.com/*"}}, "approve", "example.com/foo", true},
		{"other signer", map[string][]string{"approve": {"example.com/bar"}}, "approve", "example.com/foo", false},
		{"other domain's wildcard", map[string][]string{"approve": {"example.org/*"}}, "approve", "example.com/foo", false},
		{"other verb", map[string][]string{"sign": {"example.com/foo"}}, "approve", "example.com/foo", false},
		{"nothing", nil, "sign", "kubernetes.io/kube-apiserver-client", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &grants{allowed: tc.allowed}
			if got := AuthorizedForSigner(context.Background(), authorizer.AuthorizerFunc(g.Authorize), u, tc.verb, tc.signer); got != tc.want {
				t.Errorf("AuthorizedForSigner(%s, %s) = %v, want %v", tc.verb, tc.signer, got, tc.want)
			}
			if g.asked[0].GetUser().GetName() != "alice" {
				t.Errorf("asked for user %q", g.asked[0].GetUser().GetName())
			}
		})
	}
}

func TestAuthorizerErrorDenies(t *testing.T) {
	g := &grants{allowed: map[string][]string{"approve": {"example.com/foo"}}, err: errors.New("boom")}
	if AuthorizedForSigner(context.Background(), authorizer.AuthorizerFunc(g.Authorize), &user.DefaultInfo{Name: "alice"}, "approve", "example.com/foo") {
		t.Error("an authorizer error allowed the request")
	}
	if len(g.asked) != 2 || g.asked[1].GetName() != "example.com/*" {
		t.Errorf("asked %d times, want the name and then the domain wildcard", len(g.asked))
	}
}
