package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"k8s.io/klog/v2"
)

// linkAttributes are the HTML attributes holding URLs, by element (the
// HTML 4 and 5 attribute indexes, as upstream's list).
var linkAttributes = map[atom.Atom][]string{
	atom.A: {"href"}, atom.Applet: {"codebase"}, atom.Area: {"href"}, atom.Audio: {"src"},
	atom.Base: {"href"}, atom.Blockquote: {"cite"}, atom.Body: {"background"}, atom.Button: {"formaction"},
	atom.Command: {"icon"}, atom.Del: {"cite"}, atom.Embed: {"src"}, atom.Form: {"action"},
	atom.Frame: {"longdesc", "src"}, atom.Head: {"profile"}, atom.Html: {"manifest"},
	atom.Iframe: {"longdesc", "src"}, atom.Img: {"longdesc", "src", "usemap"},
	atom.Input: {"src", "usemap", "formaction"}, atom.Ins: {"cite"}, atom.Link: {"href"},
	atom.Object: {"classid", "codebase", "data", "usemap"}, atom.Q: {"cite"}, atom.Script: {"src"},
	atom.Source: {"src"}, atom.Video: {"poster", "src"},
}

// rewriteHTMLResponse rewrites the links of an HTML body (plain, gzip or
// deflate) with rewrite; other encodings pass untouched.
func rewriteHTMLResponse(req *http.Request, resp *http.Response, rewrite func(*url.URL) string) (*http.Response, error) {
	var (
		in     io.Reader = resp.Body
		out    bytes.Buffer
		w      io.Writer = &out
		finish           = func() error { return nil }
	)
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("reading the backend's gzip body: %w", err)
		}
		in = gz
		gzw := gzip.NewWriter(&out)
		w, finish = gzw, gzw.Close
	case "deflate":
		in = flate.NewReader(resp.Body)
		flw, _ := flate.NewWriter(&out, flate.BestCompression)
		w, finish = flw, flw.Close
	default:
		klog.FromContext(req.Context()).V(2).Info("Proxy cannot rewrite the links of an HTML body in this encoding", "encoding", enc)
		return resp, nil
	}
	defer resp.Body.Close()
	if err := rewriteHTML(in, w, rewrite); err != nil {
		return nil, fmt.Errorf("rewriting the backend's HTML links: %w", err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(&out)
	resp.Header.Del("Content-Length")
	resp.ContentLength = int64(out.Len())
	return resp, nil
}

// rewriteHTML copies the HTML in r to w, link attributes rewritten and
// everything else byte for byte.
func rewriteHTML(r io.Reader, w io.Writer, rewrite func(*url.URL) string) error {
	z := html.NewTokenizer(r)
	for {
		var err error
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() == io.EOF {
				return nil
			}
			return z.Err()
		case html.StartTagToken, html.SelfClosingTagToken:
			token := z.Token()
			attrs, ok := linkAttributes[token.DataAtom]
			if !ok {
				_, err = w.Write([]byte(token.String()))
				break
			}
			for i, a := range token.Attr {
				for _, name := range attrs {
					if a.Key != name {
						continue
					}
					// An unparsable URL stays as it is.
					if u, perr := url.Parse(a.Val); perr == nil {
						token.Attr[i].Val = rewrite(u)
					}
				}
			}
			_, err = w.Write([]byte(token.String()))
		default:
			_, err = w.Write(z.Raw())
		}
		if err != nil {
			return err
		}
	}
}
