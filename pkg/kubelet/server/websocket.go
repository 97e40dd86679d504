package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	constants "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// streamIdleTimeout is upstream's kubelet websocket idle timeout.
const streamIdleTimeout = 4 * time.Hour

// translateWebSocket serves a v5.channel.k8s.io WebSocket exec/attach
// client against the runtime's SPDY streaming server at loc, as
// upstream's ExtendWebSocketsToKubelet: channels 0-2 stdio, 3 the final
// Status, 4 terminal resizes.
func translateWebSocket(w http.ResponseWriter, r *http.Request, loc *url.URL, opts streamOptions) {
	channels := make([]wsstream.ChannelType, 5)
	channels[constants.StreamStdIn] = pick(opts.stdin, wsstream.ReadChannel)
	channels[constants.StreamStdOut] = pick(opts.stdout, wsstream.WriteChannel)
	channels[constants.StreamStdErr] = pick(opts.stderr, wsstream.WriteChannel)
	channels[constants.StreamErr] = wsstream.WriteChannel
	channels[constants.StreamResize] = wsstream.ReadChannel
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		constants.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(streamIdleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		// Open answered the client already.
		klog.V(2).InfoS("WebSocket upgrade failed", "err", err)
		return
	}
	defer conn.Close()
	// An empty message on the lowest writable channel tells the client
	// the connection is up.
	first := constants.StreamErr
	if opts.stdout {
		first = constants.StreamStdOut
	} else if opts.stderr {
		first = constants.StreamStdErr
	}
	if _, err := streams[first].Write([]byte{}); err != nil {
		return
	}
	writeStatus := func(st metav1.Status) {
		data, err := json.Marshal(st)
		if err != nil {
			return
		}
		conn.SetWriteDeadline(10 * time.Second)
		_, _ = streams[constants.StreamErr].Write(data)
	}

	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{PingPeriod: 5 * time.Second})
	if err != nil {
		writeStatus(apierrors.NewInternalError(err).Status())
		return
	}
	executor, err := remotecommand.NewSPDYExecutorRejectRedirects(rt, clientspdy.NewUpgraderForStreaming(rt), http.MethodPost, loc)
	if err != nil {
		writeStatus(apierrors.NewInternalError(err).Status())
		return
	}
	so := remotecommand.StreamOptions{Tty: opts.tty}
	if opts.stdin {
		so.Stdin = streams[constants.StreamStdIn]
	}
	if opts.stdout {
		so.Stdout = streams[constants.StreamStdOut]
	}
	if opts.stderr {
		so.Stderr = streams[constants.StreamStdErr]
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if opts.tty {
		sizes := make(chan remotecommand.TerminalSize)
		go func() {
			defer close(sizes)
			dec := json.NewDecoder(streams[constants.StreamResize])
			for {
				var size remotecommand.TerminalSize
				if err := dec.Decode(&size); err != nil {
					return
				}
				select {
				case sizes <- size:
				case <-ctx.Done():
					return
				}
			}
		}()
		so.TerminalSizeQueue = sizeQueue(sizes)
	}
	err = executor.StreamWithContext(ctx, so)
	var statusErr *apierrors.StatusError
	var exitErr exec.CodeExitError
	switch {
	case err == nil:
		writeStatus(metav1.Status{Status: metav1.StatusSuccess})
	case errors.As(err, &statusErr):
		writeStatus(statusErr.Status())
	case errors.As(err, &exitErr) && exitErr.Exited():
		writeStatus(metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  constants.NonZeroExitCodeReason,
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: constants.ExitCodeCauseType, Message: fmt.Sprintf("%d", exitErr.ExitStatus())}}},
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
		})
	default:
		writeStatus(apierrors.NewInternalError(err).Status())
	}
}

func pick(real bool, t wsstream.ChannelType) wsstream.ChannelType {
	if real {
		return t
	}
	return wsstream.IgnoreChannel
}

type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	size, ok := <-q
	if !ok {
		return nil
	}
	return &size
}

// tunnelPrefix marks a websocket subprotocol carrying SPDY
// (SPDY/3.1+portforward.k8s.io), as kubectl port-forward 1.31+ asks.
const tunnelPrefix = "SPDY/3.1+"

// tunnelWebSocket serves port-forward clients that tunnel SPDY through a
// websocket: the runtime gets a plain SPDY upgrade, and the SPDY bytes
// travel in binary websocket messages (upstream's TunnelingHandler).
func tunnelWebSocket(w http.ResponseWriter, r *http.Request, loc *url.URL) {
	var spdyProtocols []string
	for _, p := range websocket.Subprotocols(r) {
		if after, ok := strings.CutPrefix(p, tunnelPrefix); ok {
			spdyProtocols = append(spdyProtocols, after)
		}
	}
	if len(spdyProtocols) == 0 {
		writeError(w, http.StatusBadRequest, "unable to upgrade: no tunneling spdy protocols provided")
		return
	}
	backend, err := dialLocation(r.Context(), loc)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer backend.Close()
	req, _ := http.NewRequest(http.MethodPost, loc.String(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	for _, p := range spdyProtocols {
		req.Header.Add("X-Stream-Protocol-Version", p)
	}
	if err := req.Write(backend); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	br := bufio.NewReader(backend)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		writeError(w, resp.StatusCode, string(body))
		return
	}
	upgrader := websocket.Upgrader{
		Subprotocols:    []string{tunnelPrefix + resp.Header.Get("X-Stream-Protocol-Version")},
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	done := make(chan struct{}, 2)
	go func() { // runtime → client
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := br.Read(buf)
			if n > 0 {
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				return
			}
		}
	}()
	go func() { // client → runtime
		defer func() { done <- struct{}{} }()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				if cw, ok := backend.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
				return
			}
			if _, err := backend.Write(data); err != nil {
				return
			}
		}
	}()
	<-done
}
