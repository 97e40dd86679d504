package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// rewritingTransport is upstream's proxy Transport as a backend sees it:
// X-Forwarded-Uri/-Host/-Proto name the API path the client used, a
// redirect or an HTML link to the backend's own host comes back as a path
// through the API, CORS headers are dropped (the API server is the
// origin), and a backend that cannot be reached is a 503.
type rewritingTransport struct {
	scheme, host string
	// pathPrepend is the API prefix of the proxy (…/pods/x/proxy).
	pathPrepend string
	next        http.RoundTripper
}

// newRewritingTransport derives the prefix from the API request's path
// less the backend path it maps to.
func newRewritingTransport(apiURL, location *url.URL, next http.RoundTripper) *rewritingTransport {
	suffix := location.Path
	if strings.HasSuffix(apiURL.Path, "/") && !strings.HasSuffix(suffix, "/") {
		suffix += "/"
	}
	return &rewritingTransport{
		scheme:      apiURL.Scheme,
		host:        apiURL.Host,
		pathPrepend: strings.TrimSuffix(apiURL.Path, suffix),
		next:        next,
	}
}

func (t *rewritingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	forwardedURI := path.Join(t.pathPrepend, req.URL.EscapedPath())
	if strings.HasSuffix(req.URL.Path, "/") {
		forwardedURI += "/"
	}
	req.Header.Set("X-Forwarded-Uri", forwardedURI)
	if t.host != "" {
		req.Header.Set("X-Forwarded-Host", t.host)
	}
	if t.scheme != "" {
		req.Header.Set("X-Forwarded-Proto", t.scheme)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach service: %v", err))
	}
	for _, h := range []string{"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Max-Age"} {
		resp.Header.Del(h)
	}
	if redirect := resp.Header.Get("Location"); redirect != "" {
		target, err := url.Parse(redirect)
		if err != nil {
			resp.Body.Close()
			return nil, apierrors.NewInternalError(fmt.Errorf("error trying to parse Location header: %w", err))
		}
		resp.Header.Set("Location", t.rewriteURL(target, req.URL, req.Host))
		return resp, nil
	}
	if mediaType, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); strings.TrimSpace(mediaType) == "text/html" {
		return rewriteHTMLResponse(req, resp, func(u *url.URL) string { return t.rewriteURL(u, req.URL, req.Host) })
	}
	return resp, nil
}

// rewriteURL points an absolute-path URL on the backend's own host (or
// the client's) below the proxy's API prefix; other URLs stay.
func (t *rewritingTransport) rewriteURL(u, backendURL *url.URL, requestHost string) string {
	otherHost := u.Host != "" && u.Host != backendURL.Host && u.Host != requestHost
	if otherHost || !strings.HasPrefix(u.Path, "/") {
		return u.String()
	}
	if !(u.Host == requestHost && t.scheme == "" && t.host == "") {
		u.Scheme, u.Host = t.scheme, t.host
	}
	if strings.HasPrefix(u.Path, t.pathPrepend) {
		return u.String()
	}
	trailing := strings.HasSuffix(u.Path, "/")
	u.Path = path.Join(t.pathPrepend, u.Path)
	if trailing {
		u.Path += "/"
	}
	return u.String()
}
