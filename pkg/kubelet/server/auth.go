package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Auth authenticates and authorizes the requests to the kubelet's API.
type Auth interface {
	authenticator.Request
	authorizer.UnconditionalAuthorizer
}

// Upstream kubelet's defaults for --authentication-token-webhook-cache-ttl,
// --authorization-webhook-cache-authorized-ttl and
// --authorization-webhook-cache-unauthorized-ttl.
const (
	TokenCacheTTL        = 2 * time.Minute
	AuthorizedCacheTTL   = 5 * time.Minute
	UnauthorizedCacheTTL = 30 * time.Second
)

type delegatingAuth struct {
	authenticator.Request
	authorizer.UnconditionalAuthorizer
}

// WebhookAuth is upstream's --anonymous-auth=false
// --authentication-token-webhook --client-ca-file=clientCAFile
// --authorization-mode=Webhook: client certificates verified against the
// CA bundle (user = CN, groups = O), bearer tokens by TokenReview, every
// request authorized by SubjectAccessReview, all against client's API
// server. clientCAFile "" accepts no client certificate. run reloads the
// CA bundle when the file changes, until ctx ends.
func WebhookAuth(client kubernetes.Interface, clientCAFile string) (auth Auth, run func(ctx context.Context), err error) {
	cfg := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:               &apiserver.AnonymousAuthConfig{Enabled: false},
		TokenAccessReviewClient: client.AuthenticationV1(),
		WebhookRetryBackoff:     genericoptions.DefaultAuthWebhookRetryBackoff(),
		CacheTTL:                TokenCacheTTL,
	}
	var ca *dynamiccertificates.DynamicFileCAContent
	if clientCAFile != "" {
		ca, err = dynamiccertificates.NewDynamicCAContentFromFile("client-ca-bundle", clientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("loading the client CA bundle %s: %w", clientCAFile, err)
		}
		cfg.ClientCertificateCAContentProvider = ca
	}
	authn, _, err := cfg.New()
	if err != nil {
		return nil, nil, fmt.Errorf("building the kubelet's authenticator: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             AuthorizedCacheTTL,
		DenyCacheTTL:              UnauthorizedCacheTTL,
		WebhookRetryBackoff:       genericoptions.DefaultAuthWebhookRetryBackoff(),
	}.New()
	if err != nil {
		return nil, nil, fmt.Errorf("building the kubelet's authorizer: %w", err)
	}
	return delegatingAuth{authn, authz}, func(ctx context.Context) {
		if ca != nil {
			go ca.Run(ctx, 1)
		}
	}, nil
}

// Request paths the attributes depend on, as upstream's kubelet.
const (
	statsPath         = "/stats/"
	metricsPath       = "/metrics"
	logsPath          = "/logs/"
	checkpointPath    = "/checkpoint/"
	statuszPath       = "/statusz"
	flagzPath         = "/flagz"
	allocatedPodsPath = "/allocatedPods"
	podsPath          = "/pods"
	runningPodsPath   = "/runningpods/"
	healthzPath       = "/healthz"
	configzPath       = "/configz"
)

// isSubpath: p is path or below it.
func isSubpath(p, path string) bool {
	path = strings.TrimSuffix(path, "/")
	return p == path || (strings.HasPrefix(p, path) && p[len(path)] == '/')
}

// verbs maps HTTP methods to API verbs as upstream (a streaming upgrade
// GET stays "get").
var verbs = map[string]string{
	http.MethodPost:   "create",
	http.MethodGet:    "get",
	http.MethodPut:    "update",
	http.MethodPatch:  "patch",
	http.MethodDelete: "delete",
}

// RequestAttributes are the attributes to authorize a request with, as
// upstream v1.37 (KubeletFineGrainedAuthz, GA): verb from the method,
// resource nodes, the node's name, and a subresource by path — stats,
// metrics, log, checkpoint, statusz, configz, or proxy; /pods,
// /runningpods, /allocatedPods, /healthz and /configz ask for pods,
// healthz or configz first and fall back to proxy. Any one allowed is
// enough.
func RequestAttributes(nodeName string, u user.Info, r *http.Request) []authorizer.Attributes {
	p := r.URL.Path
	var subresources []string
	switch {
	case isSubpath(p, allocatedPodsPath), isSubpath(p, podsPath), isSubpath(p, runningPodsPath):
		subresources = append(subresources, "pods")
	case isSubpath(p, healthzPath):
		subresources = append(subresources, "healthz")
	case isSubpath(p, configzPath):
		subresources = append(subresources, "configz")
	}
	switch {
	case isSubpath(p, statsPath):
		subresources = append(subresources, "stats")
	case isSubpath(p, metricsPath):
		subresources = append(subresources, "metrics")
	case isSubpath(p, logsPath):
		subresources = append(subresources, "log")
	case isSubpath(p, checkpointPath):
		subresources = append(subresources, "checkpoint")
	case isSubpath(p, statuszPath):
		subresources = append(subresources, "statusz")
	case isSubpath(p, flagzPath):
		subresources = append(subresources, "configz")
	default:
		subresources = append(subresources, "proxy")
	}
	attrs := make([]authorizer.Attributes, 0, len(subresources))
	for _, sub := range subresources {
		attrs = append(attrs, authorizer.AttributesRecord{
			User:            u,
			Verb:            verbs[r.Method],
			APIVersion:      "v1",
			Resource:        "nodes",
			Subresource:     sub,
			Name:            nodeName,
			ResourceRequest: true,
			Path:            p,
		})
	}
	return attrs
}

// withAuth authenticates (401 without valid credentials: anonymous is
// off) and authorizes (403 naming the user, verb and subresources) every
// request before next, with upstream's texts.
func withAuth(nodeName string, auth Auth, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := auth.AuthenticateRequest(r)
		if err != nil {
			klog.ErrorS(err, "Unable to authenticate the request due to an error")
		}
		if err != nil || !ok {
			writeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		attrs := RequestAttributes(nodeName, resp.User, r)
		var subresources []string
		allowed := false
		for _, a := range attrs {
			subresources = append(subresources, a.GetSubresource())
			decision, _, err := auth.Authorize(r.Context(), a)
			if err != nil {
				klog.ErrorS(err, "Authorization error", "user", a.GetUser().GetName(), "verb", a.GetVerb(), "resource", a.GetResource(), "subresource", a.GetSubresource())
				writeError(w, http.StatusInternalServerError, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)", a.GetUser().GetName(), a.GetVerb(), a.GetResource(), a.GetSubresource()))
				return
			}
			if decision == authorizer.DecisionAllow {
				allowed = true
				break
			}
		}
		if !allowed {
			a := attrs[0]
			klog.V(2).InfoS("Forbidden", "user", a.GetUser().GetName(), "verb", a.GetVerb(), "resource", a.GetResource(), "subresource(s)", subresources)
			writeError(w, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)\n", a.GetUser().GetName(), a.GetVerb(), a.GetResource(), subresources))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeError writes msg as the body, as go-restful's WriteErrorString.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
