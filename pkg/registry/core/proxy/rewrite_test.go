package proxy

import (
	"net/url"
	"strings"
	"testing"
)

func TestRewriteURL(t *testing.T) {
	api := &url.URL{Path: "/api/v1/namespaces/ns/pods/web/proxy/app/page"}
	location := &url.URL{Scheme: "http", Host: "10.0.0.1:80", Path: "/app/page"}
	tr := newRewritingTransport(api, location, nil)
	if tr.pathPrepend != "/api/v1/namespaces/ns/pods/web/proxy" {
		t.Fatalf("prefix %q", tr.pathPrepend)
	}
	backend := &url.URL{Scheme: "http", Host: "10.0.0.1:80", Path: "/app/page"}
	for in, want := range map[string]string{
		"/login":                   "/api/v1/namespaces/ns/pods/web/proxy/login",
		"/dir/":                    "/api/v1/namespaces/ns/pods/web/proxy/dir/",
		"http://10.0.0.1:80/x?y=1": "/api/v1/namespaces/ns/pods/web/proxy/x?y=1",
		"http://elsewhere/x":       "http://elsewhere/x",
		"relative/path":            "relative/path",
		"/api/v1/namespaces/ns/pods/web/proxy/already": "/api/v1/namespaces/ns/pods/web/proxy/already",
	} {
		u, _ := url.Parse(in)
		if got := tr.rewriteURL(u, backend, "apiserver:6443"); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestRewriteHTML(t *testing.T) {
	const page = `<!DOCTYPE html><html><head><link href="/style.css"></head>` +
		`<body><a href="/docs/">docs</a> <a href="http://elsewhere/x">x</a> <img src="img.png"><p title="/not-a-link">t</p></body></html>`
	var out strings.Builder
	err := rewriteHTML(strings.NewReader(page), &out, func(u *url.URL) string {
		if strings.HasPrefix(u.Path, "/") && u.Host == "" {
			return "/prefix" + u.Path
		}
		return u.String()
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `<!DOCTYPE html><html><head><link href="/prefix/style.css"></head>` +
		`<body><a href="/prefix/docs/">docs</a> <a href="http://elsewhere/x">x</a> <img src="img.png"><p title="/not-a-link">t</p></body></html>`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
