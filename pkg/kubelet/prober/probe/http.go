package probe

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/klog/v2"
	utilio "k8s.io/utils/io"
)

// HTTP runs HTTP GET probes. HTTPS is not verified (a pod's certificate is
// rarely one the node trusts), no proxy is used, connections are not kept.
type HTTP struct {
	transport *http.Transport
}

// NewHTTP is an HTTP prober; one serves every probe of a node.
func NewHTTP() *HTTP {
	t := utilnet.SetTransportDefaults(&http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as upstream: probes do not verify
		DisableKeepAlives: true,
		Proxy:             http.ProxyURL(nil),
		// No Accept-Encoding: the body is shown as the server sent it.
		DisableCompression: true,
		DialContext:        dialer().DialContext,
	})
	return &HTTP{transport: t}
}

// NewHTTPRequest is the request of an httpGet action of container c: the
// host defaults to podIP, the port may be a container port's name, the
// action's headers are sent as given (Host overrides the request's host),
// User-Agent and Accept default to upstream's.
func NewHTTPRequest(action *corev1.HTTPGetAction, c *corev1.Container, podIP string) (*http.Request, error) {
	scheme := strings.ToLower(string(action.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := action.Host
	if host == "" {
		host = podIP
	}
	port, err := ResolvePort(action.Port, c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(action.Path)
	if err != nil {
		// Too late to reject the path: send it as it is, as upstream does.
		u = &url.URL{Path: action.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building the probe's request: %w", err)
	}
	headers := http.Header{}
	for _, h := range action.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", UserAgent)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		// An empty Accept asks for none.
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// Probe sends req within timeout. 2xx succeeds; redirects to the same
// host are followed (10 at most); a redirect to another host is not, and
// is a Warning (a success that says so); anything else fails.
func (p *HTTP) Probe(req *http.Request, timeout time.Duration) (Result, string, error) {
	client := &http.Client{Timeout: timeout, Transport: p.transport, CheckRedirect: sameHostRedirects}
	res, err := client.Do(req)
	if err != nil {
		// Timeouts and refused connections are failures, not errors.
		return Failure, err.Error(), nil
	}
	defer res.Body.Close()
	b, err := utilio.ReadAtMost(res.Body, maxOutput)
	if err != nil && !errors.Is(err, utilio.ErrLimitReached) {
		return Failure, "", err
	}
	body := string(b)
	switch {
	case res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusMultipleChoices:
		klog.V(4).InfoS("HTTP probe succeeded", "url", req.URL.String(), "statusCode", res.StatusCode)
		return Success, body, nil
	case res.StatusCode >= http.StatusMultipleChoices && res.StatusCode < http.StatusBadRequest:
		return Warning, fmt.Sprintf("Probe terminated redirects, Response body: %v", body), nil
	}
	klog.V(4).InfoS("HTTP probe failed", "url", req.URL.String(), "statusCode", res.StatusCode, "body", body)
	// Upstream keeps the body out of the event (issue 99425).
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}
