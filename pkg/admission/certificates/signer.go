// Package certificates holds what upstream's certificate admission plugins
// share: whether a user may act (approve, sign) for a signer. The plugins
// are the subpackages approval, signing and subjectrestriction.
package certificates

import (
	"context"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/klog/v2"
)

// AuthorizedForSigner reports whether u may do verb on the synthetic
// certificates.k8s.io "signers" resource named signerName, or on all the
// signers of its domain ("<domain>/*", e.g. "kubernetes.io/*"). An
// authorizer error counts as a denial.
func AuthorizedForSigner(ctx context.Context, authz authorizer.Authorizer, u user.Info, verb, signerName string) bool {
	domain, _, _ := strings.Cut(signerName, "/")
	for _, name := range []string{signerName, domain + "/*"} {
		attrs := authorizer.AttributesRecord{
			User:            u,
			Verb:            verb,
			APIGroup:        certificatesv1.GroupName,
			APIVersion:      "*",
			Resource:        "signers",
			Name:            name,
			ResourceRequest: true,
		}
		decision, reason, err := authz.Authorize(ctx, attrs)
		if err != nil {
			klog.V(3).Infof("cannot authorize %q %q for policy: %v,%v", verb, name, reason, err)
			continue
		}
		if decision == authorizer.DecisionAllow {
			return true
		}
	}
	return false
}
