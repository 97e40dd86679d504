package pod

// The pod subresources served by the pod's kubelet: log (a stream the API
// server copies), exec, attach and portforward (upgraded connections the
// API server proxies, translating WebSocket clients' v5 protocols to SPDY
// for kubelets that do not take WebSockets themselves). As upstream's
// pkg/registry/core/pod/rest and the locations of its strategy.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrest "k8s.io/apiserver/pkg/registry/generic/rest"
	"k8s.io/apiserver/pkg/registry/rest"
	proxymetrics "k8s.io/apiserver/pkg/util/proxy/metrics"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/skiff-dev/skiff/pkg/kubeletclient"
	"github.com/skiff-dev/skiff/pkg/registry/core/proxy"
)

// extendWebSocketsToKubelet is the node feature (status.declaredFeatures)
// of kubelets that take WebSocket exec/attach/portforward themselves;
// others get SPDY, translated here (upstream's ExtendWebSocketsToKubelet,
// beta and on in 1.37).
const extendWebSocketsToKubelet = "ExtendWebSocketsToKubelet"

// upgradeMethods: GET too, for WebSocket clients (browsers can only GET).
var upgradeMethods = []string{"GET", "POST"}

// getPod reads the pod name names in ctx's namespace.
func getPod(ctx context.Context, pods rest.Getter, name string) (*corev1.Pod, error) {
	obj, err := pods.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("pod storage returned %T", obj))
	}
	return pod, nil
}

// containerNames are the pod's containers in upstream's VisitContainers
// order: init, regular, ephemeral.
func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	return names
}

// validateContainer is the container a request means: the named one if
// the pod has it, else the only regular container; upstream's messages.
func validateContainer(container string, pod *corev1.Pod) (string, error) {
	if container != "" {
		if !slices.Contains(containerNames(pod), container) {
			return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod.Name))
		}
		return container, nil
	}
	switch len(pod.Spec.Containers) {
	case 1:
		return pod.Spec.Containers[0].Name, nil
	case 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, containerNames(pod)))
}

// LogREST serves pods/log: the kubelet's /containerLogs stream.
type LogREST struct {
	Pods    rest.Getter
	Kubelet kubeletclient.ConnectionInfoGetter
}

var (
	_ rest.GetterWithOptions = &LogREST{}
	_ rest.StorageMetadata   = &LogREST{}
)

// New is the pod: the log has no kind of its own.
func (r *LogREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pod storage owns the store.
func (r *LogREST) Destroy() {}

// ProducesMIMETypes: logs are text/plain, for the OpenAPI document.
func (r *LogREST) ProducesMIMETypes(string) []string { return []string{"text/plain"} }

// ProducesObject: a string, for the OpenAPI document.
func (r *LogREST) ProducesObject(string) interface{} { return "" }

// NewGetOptions is PodLogOptions, from the query.
func (r *LogREST) NewGetOptions() (runtime.Object, bool, string) {
	return &corev1.PodLogOptions{}, false, ""
}

// OverrideMetricsVerb counts log requests as CONNECT, as upstream.
func (r *LogREST) OverrideMetricsVerb(oldVerb string) string {
	if oldVerb == "GET" {
		return "CONNECT"
	}
	return oldVerb
}

// Get returns the stream of the container's log from its kubelet; a pod
// on no node yet has an empty log (upstream's 204).
func (r *LogREST) Get(ctx context.Context, name string, opts runtime.Object) (runtime.Object, error) {
	logOpts, ok := opts.(*corev1.PodLogOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	countInsecureBackend(logOpts.InsecureSkipTLSVerifyBackend)
	if errs := validateLogOptions(logOpts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, name, errs)
	}
	location, transport, err := LogLocation(ctx, r.Pods, r.Kubelet, name, logOpts)
	if err != nil {
		return nil, err
	}
	return &genericrest.LocationStreamer{
		Location:                    location,
		Transport:                   transport,
		ContentType:                 "text/plain",
		Flush:                       logOpts.Follow,
		ResponseChecker:             genericrest.NewGenericHttpResponseChecker(corev1.Resource("pods/log"), name),
		RedirectChecker:             genericrest.PreventRedirects,
		TLSVerificationErrorCounter: podLogsTLSFailure,
	}, nil
}

// validateLogOptions is upstream's ValidatePodLogOptions with
// PodLogsQuerySplitStreams off (alpha in 1.37).
func validateLogOptions(opts *corev1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil && *opts.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	if opts.Stream != nil {
		errs = append(errs, field.Forbidden(field.NewPath("stream"), "may not be specified"))
	}
	return errs
}

// LogLocation is the kubelet URL of the container's log and the transport
// to it; nil, nil when the pod is on no node yet.
func LogLocation(ctx context.Context, pods rest.Getter, kubelet kubeletclient.ConnectionInfoGetter, name string, opts *corev1.PodLogOptions) (*url.URL, http.RoundTripper, error) {
	pod, err := getPod(ctx, pods, name)
	if err != nil {
		return nil, nil, err
	}
	container, err := validateContainer(opts.Container, pod)
	if err != nil {
		return nil, nil, err
	}
	if pod.Spec.NodeName == "" {
		return nil, nil, nil
	}
	info, err := kubelet.GetConnectionInfo(ctx, types.NodeName(pod.Spec.NodeName))
	if err != nil {
		return nil, nil, err
	}
	params := url.Values{}
	if opts.Follow {
		params.Add("follow", "true")
	}
	if opts.Previous {
		params.Add("previous", "true")
	}
	if opts.Timestamps {
		params.Add("timestamps", "true")
	}
	if opts.SinceSeconds != nil {
		params.Add("sinceSeconds", strconv.FormatInt(*opts.SinceSeconds, 10))
	}
	if opts.SinceTime != nil {
		params.Add("sinceTime", opts.SinceTime.Format(time.RFC3339))
	}
	if opts.TailLines != nil {
		params.Add("tailLines", strconv.FormatInt(*opts.TailLines, 10))
	}
	if opts.LimitBytes != nil {
		params.Add("limitBytes", strconv.FormatInt(*opts.LimitBytes, 10))
	}
	loc := &url.URL{
		Scheme:   info.Scheme,
		Host:     info.HostPort(),
		Path:     fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, container),
		RawQuery: params.Encode(),
	}
	if opts.InsecureSkipTLSVerifyBackend {
		return loc, info.InsecureSkipTLSVerifyTransport, nil
	}
	return loc, info.Transport, nil
}

// ExecREST serves pods/exec.
type ExecREST struct {
	Pods       rest.Getter
	Kubelet    kubeletclient.ConnectionInfoGetter
	Authorizer authorizer.Authorizer
}

var _ rest.Connecter = &ExecREST{}

// New is PodExecOptions.
func (r *ExecREST) New() runtime.Object { return &corev1.PodExecOptions{} }

// Destroy does nothing: the pod storage owns the store.
func (r *ExecREST) Destroy() {}

// NewConnectOptions is PodExecOptions, from the query.
func (r *ExecREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodExecOptions{}, false, ""
}

// ConnectMethods are GET (WebSocket) and POST (SPDY).
func (r *ExecREST) ConnectMethods() []string { return upgradeMethods }

// Connect proxies the upgraded connection to the kubelet's /exec.
func (r *ExecREST) Connect(ctx context.Context, name string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	if err := authorizeCreate(ctx, r.Authorizer); err != nil {
		return nil, err
	}
	execOpts, ok := opts.(*corev1.PodExecOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	params := streamParams(execOpts.Stdin, execOpts.Stdout, execOpts.Stderr, execOpts.TTY)
	for _, c := range execOpts.Command {
		params.Add("command", c)
	}
	location, info, err := streamLocation(ctx, r.Pods, r.Kubelet, name, execOpts.Container, "exec", params)
	if err != nil {
		return nil, err
	}
	return remoteCommandHandler(ctx, "exec", location, info, proxy.StreamOptions{
		Stdin: execOpts.Stdin, Stdout: execOpts.Stdout, Stderr: execOpts.Stderr, TTY: execOpts.TTY,
	}, responder), nil
}

// AttachREST serves pods/attach.
type AttachREST struct {
	Pods       rest.Getter
	Kubelet    kubeletclient.ConnectionInfoGetter
	Authorizer authorizer.Authorizer
}

var _ rest.Connecter = &AttachREST{}

// New is PodAttachOptions.
func (r *AttachREST) New() runtime.Object { return &corev1.PodAttachOptions{} }

// Destroy does nothing: the pod storage owns the store.
func (r *AttachREST) Destroy() {}

// NewConnectOptions is PodAttachOptions, from the query.
func (r *AttachREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodAttachOptions{}, false, ""
}

// ConnectMethods are GET (WebSocket) and POST (SPDY).
func (r *AttachREST) ConnectMethods() []string { return upgradeMethods }

// Connect proxies the upgraded connection to the kubelet's /attach.
func (r *AttachREST) Connect(ctx context.Context, name string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	if err := authorizeCreate(ctx, r.Authorizer); err != nil {
		return nil, err
	}
	attachOpts, ok := opts.(*corev1.PodAttachOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	params := streamParams(attachOpts.Stdin, attachOpts.Stdout, attachOpts.Stderr, attachOpts.TTY)
	location, info, err := streamLocation(ctx, r.Pods, r.Kubelet, name, attachOpts.Container, "attach", params)
	if err != nil {
		return nil, err
	}
	return remoteCommandHandler(ctx, "attach", location, info, proxy.StreamOptions{
		Stdin: attachOpts.Stdin, Stdout: attachOpts.Stdout, Stderr: attachOpts.Stderr, TTY: attachOpts.TTY,
	}, responder), nil
}

// PortForwardREST serves pods/portforward.
type PortForwardREST struct {
	Pods       rest.Getter
	Kubelet    kubeletclient.ConnectionInfoGetter
	Authorizer authorizer.Authorizer
}

var _ rest.Connecter = &PortForwardREST{}

// New is PodPortForwardOptions.
func (r *PortForwardREST) New() runtime.Object { return &corev1.PodPortForwardOptions{} }

// Destroy does nothing: the pod storage owns the store.
func (r *PortForwardREST) Destroy() {}

// NewConnectOptions is PodPortForwardOptions, from the query.
func (r *PortForwardREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodPortForwardOptions{}, false, ""
}

// ConnectMethods are GET (WebSocket) and POST (SPDY).
func (r *PortForwardREST) ConnectMethods() []string { return upgradeMethods }

// Connect proxies the upgraded connection to the kubelet's /portForward;
// WebSocket clients (kubectl ≥ 1.31) are tunnelled over SPDY to kubelets
// that do not take WebSockets.
func (r *PortForwardREST) Connect(ctx context.Context, name string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	if err := authorizeCreate(ctx, r.Authorizer); err != nil {
		return nil, err
	}
	pfOpts, ok := opts.(*corev1.PodPortForwardOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	pod, err := getPod(ctx, r.Pods, name)
	if err != nil {
		return nil, err
	}
	if pod.Spec.NodeName == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
	}
	info, err := r.Kubelet.GetConnectionInfo(ctx, types.NodeName(pod.Spec.NodeName))
	if err != nil {
		return nil, err
	}
	params := url.Values{}
	if len(pfOpts.Ports) > 0 {
		ports := make([]string, len(pfOpts.Ports))
		for i, p := range pfOpts.Ports {
			ports[i] = strconv.FormatInt(int64(p), 10)
		}
		params.Add(corev1.PortHeader, strings.Join(ports, ","))
	}
	location := &url.URL{
		Scheme:   info.Scheme,
		Host:     info.HostPort(),
		Path:     fmt.Sprintf("/portForward/%s/%s", pod.Namespace, pod.Name),
		RawQuery: params.Encode(),
	}
	handler := upgradeHandler(location, info.Transport, responder)
	if slices.Contains(info.NodeFeatures, extendWebSocketsToKubelet) {
		proxymetrics.IncWebSocketStreamingRequest(ctx, "portforward", "proxied_to_kubelet")
		return handler, nil
	}
	proxymetrics.IncWebSocketStreamingRequest(ctx, "portforward", "translated_at_apiserver")
	tunnel := &proxy.Tunnel{Location: location, Transport: info.Transport, Responder: responder}
	return translating(handler, tunnel, wsstream.IsWebSocketRequestWithTunnelingProtocol), nil
}

// streamParams are the kubelet's query flags of exec and attach.
func streamParams(stdin, stdout, stderr, tty bool) url.Values {
	params := url.Values{}
	for _, p := range []struct {
		set  bool
		name string
	}{{stdin, corev1.ExecStdinParam}, {stdout, corev1.ExecStdoutParam}, {stderr, corev1.ExecStderrParam}, {tty, corev1.ExecTTYParam}} {
		if p.set {
			params.Add(p.name, "1")
		}
	}
	return params
}

// streamLocation is the kubelet URL /<path>/<ns>/<pod>/<container> of an
// exec or attach.
func streamLocation(ctx context.Context, pods rest.Getter, kubelet kubeletclient.ConnectionInfoGetter, name, container, path string, params url.Values) (*url.URL, *kubeletclient.ConnectionInfo, error) {
	pod, err := getPod(ctx, pods, name)
	if err != nil {
		return nil, nil, err
	}
	container, err = validateContainer(container, pod)
	if err != nil {
		return nil, nil, err
	}
	if pod.Spec.NodeName == "" {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
	}
	info, err := kubelet.GetConnectionInfo(ctx, types.NodeName(pod.Spec.NodeName))
	if err != nil {
		return nil, nil, err
	}
	return &url.URL{
		Scheme:   info.Scheme,
		Host:     info.HostPort(),
		Path:     fmt.Sprintf("/%s/%s/%s/%s", path, pod.Namespace, pod.Name, container),
		RawQuery: params.Encode(),
	}, info, nil
}

// remoteCommandHandler proxies SPDY as is; a WebSocket client speaking
// v5.channel.k8s.io is translated to SPDY here unless the kubelet takes
// WebSockets itself (upstream's TranslateStreamCloseWebsocketRequests).
func remoteCommandHandler(ctx context.Context, subresource string, location *url.URL, info *kubeletclient.ConnectionInfo, opts proxy.StreamOptions, responder rest.Responder) http.Handler {
	handler := upgradeHandler(location, info.Transport, responder)
	if slices.Contains(info.NodeFeatures, extendWebSocketsToKubelet) {
		proxymetrics.IncWebSocketStreamingRequest(ctx, subresource, "proxied_to_kubelet")
		return handler
	}
	proxymetrics.IncWebSocketStreamingRequest(ctx, subresource, "translated_at_apiserver")
	translate := &proxy.StreamTranslator{Location: location, Transport: info.Transport, Options: opts}
	return translating(handler, translate, wsstream.IsWebSocketRequestWithStreamCloseProtocol)
}

// translating serves the requests translate picks with translator, the
// others with handler.
func translating(handler, translator http.Handler, translate func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if translate(req) {
			translator.ServeHTTP(w, req)
			return
		}
		handler.ServeHTTP(w, req)
	})
}

// upgradeHandler proxies an upgrade request (and only those) to location.
func upgradeHandler(location *url.URL, transport http.RoundTripper, responder rest.Responder) http.Handler {
	return proxy.NewHandler(location, transport, false, true, responder)
}
