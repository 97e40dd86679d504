package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	proxymetrics "k8s.io/apiserver/pkg/util/proxy/metrics"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// StreamOptions are the streams an exec or attach asked for.
type StreamOptions struct {
	Stdin, Stdout, Stderr, TTY bool
}

// idleTimeout closes a translated session nobody wrote to for this long
// (upstream's 4 h).
const idleTimeout = 4 * time.Hour

// StreamTranslator serves a WebSocket client speaking v5.channel.k8s.io
// (kubectl ≥ 1.30 exec/attach) by running the same session over SPDY
// against Location (the kubelet), as upstream's StreamTranslatorHandler.
type StreamTranslator struct {
	Location  *url.URL
	Transport http.RoundTripper
	Options   StreamOptions
}

// ServeHTTP upgrades the client, then streams until the command ends and
// reports how it ended on the error channel.
func (t *StreamTranslator) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	channels := make([]wsstream.ChannelType, 5)
	pick := func(on bool, c wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return c
		}
		return wsstream.IgnoreChannel
	}
	channels[remotecommand.StreamStdIn] = pick(t.Options.Stdin, wsstream.ReadChannel)
	channels[remotecommand.StreamStdOut] = pick(t.Options.Stdout, wsstream.WriteChannel)
	channels[remotecommand.StreamStdErr] = pick(t.Options.Stderr, wsstream.WriteChannel)
	channels[remotecommand.StreamErr] = wsstream.WriteChannel
	channels[remotecommand.StreamResize] = wsstream.ReadChannel
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(idleTimeout)
	_, streams, err := conn.Open(w, req)
	if err != nil {
		// Open answered the client already.
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(http.StatusBadRequest))
		return
	}
	defer conn.Close()
	// An empty message on the first writable channel tells the client the
	// session is open.
	first := remotecommand.StreamErr
	switch {
	case t.Options.Stdout:
		first = remotecommand.StreamStdOut
	case t.Options.Stderr:
		first = remotecommand.StreamStdErr
	}
	if _, err := streams[first].Write([]byte{}); err != nil {
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(http.StatusInternalServerError))
		return
	}
	writeStatus := func(status metav1.Status) {
		data, err := json.Marshal(status)
		if err != nil {
			return
		}
		conn.SetWriteDeadline(10 * time.Second)
		if _, err := streams[remotecommand.StreamErr].Write(data); err != nil {
			klog.V(4).InfoS("Writing the exec status failed", "err", err)
		}
	}

	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{UpgradeTransport: t.Transport, PingPeriod: 5 * time.Second})
	if err != nil {
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(http.StatusInternalServerError))
		writeStatus(apierrors.NewInternalError(err).Status())
		return
	}
	executor, err := clientremotecommand.NewSPDYExecutorRejectRedirects(rt, clientspdy.NewUpgraderForStreaming(rt), http.MethodPost, t.Location)
	if err != nil {
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(http.StatusInternalServerError))
		writeStatus(apierrors.NewInternalError(err).Status())
		return
	}
	opts := clientremotecommand.StreamOptions{Tty: t.Options.TTY}
	if t.Options.Stdin {
		opts.Stdin = streams[remotecommand.StreamStdIn]
	}
	if t.Options.Stdout {
		opts.Stdout = streams[remotecommand.StreamStdOut]
	}
	if t.Options.Stderr {
		opts.Stderr = streams[remotecommand.StreamStdErr]
	}
	if t.Options.TTY {
		opts.TerminalSizeQueue = newSizeQueue(req, streams[remotecommand.StreamResize])
	}
	err = executor.StreamWithContext(ctx, opts)
	var statusErr *apierrors.StatusError
	var exitErr exec.CodeExitError
	switch {
	case err == nil:
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(http.StatusOK))
		writeStatus(metav1.Status{Status: metav1.StatusSuccess})
	case errors.As(err, &statusErr):
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(int(statusErr.Status().Code)))
		writeStatus(statusErr.Status())
	case errors.As(err, &exitErr) && exitErr.Exited():
		// The command ran and failed: the session itself was fine.
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(http.StatusOK))
		writeStatus(metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
				{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(exitErr.ExitStatus())},
			}},
		})
	default:
		proxymetrics.IncStreamTranslatorRequest(ctx, strconv.Itoa(http.StatusInternalServerError))
		writeStatus(apierrors.NewInternalError(err).Status())
	}
}

// sizeQueue hands the client's resize messages (JSON TerminalSize) to the
// SPDY session.
type sizeQueue chan clientremotecommand.TerminalSize

func newSizeQueue(req *http.Request, stream io.Reader) sizeQueue {
	q := make(sizeQueue)
	go func() {
		defer close(q)
		decoder := json.NewDecoder(stream)
		for {
			var size clientremotecommand.TerminalSize
			if err := decoder.Decode(&size); err != nil {
				return
			}
			select {
			case q <- size:
			case <-req.Context().Done():
				return
			}
		}
	}()
	return q
}

func (q sizeQueue) Next() *clientremotecommand.TerminalSize {
	size, ok := <-q
	if !ok {
		return nil
	}
	return &size
}
