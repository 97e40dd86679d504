package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	gwebsocket "github.com/gorilla/websocket"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/apiserver/pkg/registry/rest"
	proxymetrics "k8s.io/apiserver/pkg/util/proxy/metrics"
	clientportforward "k8s.io/client-go/tools/portforward"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// Tunnel serves a port-forward WebSocket client (kubectl ≥ 1.31) whose
// messages carry SPDY frames ("SPDY/3.1+portforward.k8s.io"): it opens a
// SPDY connection to Location (the kubelet) and copies the frames between
// the two, as upstream's TunnelingHandler.
type Tunnel struct {
	Location  *url.URL
	Transport http.RoundTripper
	Responder rest.Responder
}

// ServeHTTP tunnels one port-forward session.
func (t *Tunnel) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	var protocols []string
	for _, p := range gwebsocket.Subprotocols(req) {
		if strings.HasPrefix(p, portforward.WebsocketsSPDYTunnelingPrefix) && strings.HasSuffix(p, portforward.KubernetesSuffix) {
			protocols = append(protocols, strings.TrimPrefix(p, portforward.WebsocketsSPDYTunnelingPrefix))
		}
	}
	if len(protocols) == 0 {
		proxymetrics.IncStreamTunnelRequest(ctx, strconv.Itoa(http.StatusBadRequest))
		http.Error(w, "unable to upgrade: no tunneling spdy protocols provided", http.StatusBadRequest)
		return
	}
	out := utilnet.CloneRequest(req)
	out.URL = t.Location
	out.Method = http.MethodPost
	out.Body = nil
	for _, h := range []string{wsstream.WebSocketProtocolHeader, "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions", httpstream.HeaderProtocolVersion} {
		out.Header.Del(h)
	}
	out.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	out.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	for _, p := range protocols {
		out.Header.Add(httpstream.HeaderProtocolVersion, p)
	}
	utilnet.AppendForwardedForHeader(out)

	backend, resp, _, err := dialUpgrade(ctx, out, t.Transport)
	if err != nil {
		proxymetrics.IncStreamTunnelRequest(ctx, strconv.Itoa(http.StatusInternalServerError))
		t.Responder.Error(err)
		return
	}
	defer backend.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		proxymetrics.IncStreamTunnelRequest(ctx, strconv.Itoa(resp.StatusCode))
		writeResponse(w, resp)
		return
	}
	if !strings.Contains(strings.ToLower(resp.Header.Get(httpstream.HeaderConnection)), "upgrade") ||
		!strings.Contains(strings.ToLower(resp.Header.Get(httpstream.HeaderUpgrade)), strings.ToLower(spdy.HeaderSpdy31)) {
		proxymetrics.IncStreamTunnelRequest(ctx, strconv.Itoa(http.StatusInternalServerError))
		http.Error(w, "unable to upgrade: missing upgrade headers in response", http.StatusInternalServerError)
		return
	}
	var chosen []string
	if p := strings.TrimSpace(resp.Header.Get(httpstream.HeaderProtocolVersion)); p != "" {
		chosen = []string{portforward.WebsocketsSPDYTunnelingPrefix + p}
	}
	upgrader := gwebsocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, Subprotocols: chosen}
	ws, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		// Upgrade answered the client already.
		proxymetrics.IncStreamTunnelRequest(ctx, strconv.Itoa(http.StatusInternalServerError))
		klog.V(4).InfoS("Port-forward tunnel: WebSocket upgrade failed", "err", err)
		return
	}
	proxymetrics.IncStreamTunnelRequest(ctx, strconv.Itoa(http.StatusSwitchingProtocols))
	tunnel := clientportforward.NewTunnelingConnection("server", ws)
	defer tunnel.Close()
	splice(tunnel, tunnel, backend.conn, backend.reader)
}
