package apiserver

// Bad input never costs more than a 4xx. The generic apiserver answers some
// malformed requests with a 500 or a dropped connection (a panic in the
// json-patch library or the custom resource decoder, patch-library errors
// passed through as plain errors, an unparsable resourceVersion reaching
// etcd, objects larger than etcd takes). Two guards turn them into a Status
// of 400, 413 or 415 that says what is wrong:
//   - withBadInputGuard, innermost in the handler chain (after
//     authentication and authorization): checks JSON and strategic merge
//     patches before the libraries see them, refuses protobuf bodies for
//     custom resources (415, as upstream), and recovers a panic per request;
//   - guardStorage, around every resource's storage: a resourceVersion
//     must parse (get and watch; a list already checks it), an error or panic while a patch is applied is the patch's
//     (400), and an object etcd refuses for its size is a 413.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/features"
	genericregistry "k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/storage/watchbuffer"
)

// maxPatchBytes is how much of a patch body the guard reads to check it:
// the generic apiserver's own body limit (larger ones it refuses itself).
const maxPatchBytes = 3 * 1024 * 1024

// withBadInputGuard wraps the API handler (see the package comment).
func withBadInputGuard(handler http.Handler, builtin sets.Set[string]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer recoverBadInput(w, req)
		info, _ := genericapirequest.RequestInfoFrom(req.Context())
		if info == nil || !info.IsResourceRequest {
			handler.ServeHTTP(w, req)
			return
		}
		mediaType, _, _ := strings.Cut(req.Header.Get("Content-Type"), ";")
		mediaType = strings.TrimSpace(strings.ToLower(mediaType))
		if mediaType == runtime.ContentTypeProtobuf && !builtin.Has(info.APIGroup) && hasBody(req) {
			// Custom resources have no protobuf form (upstream answers so).
			writeStatus(w, req, negotiation.NewUnsupportedMediaTypeError(customResourceMediaTypes()))
			return
		}
		if req.Method == http.MethodPatch && (mediaType == string(types.JSONPatchType) || mediaType == string(types.StrategicMergePatchType)) {
			body, err := io.ReadAll(io.LimitReader(req.Body, maxPatchBytes+1))
			if err != nil {
				writeStatus(w, req, apierrors.NewBadRequest(fmt.Sprintf("reading the patch: %v", err)))
				return
			}
			req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), req.Body))
			if len(body) <= maxPatchBytes {
				check := checkJSONPatch
				if mediaType == string(types.StrategicMergePatchType) {
					check = checkStrategicMergePatch
				}
				if err := check(body); err != nil {
					writeStatus(w, req, apierrors.NewBadRequest(err.Error()))
					return
				}
			}
		}
		handler.ServeHTTP(w, req)
	})
}

// customResourceMediaTypes are the body encodings of custom resources.
func customResourceMediaTypes() []string {
	types := []string{runtime.ContentTypeJSON, runtime.ContentTypeYAML}
	if utilfeature.DefaultFeatureGate.Enabled(features.CBORServingAndStorage) {
		types = append(types, runtime.ContentTypeCBOR)
	}
	return types
}

func hasBody(req *http.Request) bool {
	return req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch
}

func writeStatus(w http.ResponseWriter, req *http.Request, err error) {
	gv := schema.GroupVersion{}
	if info, ok := genericapirequest.RequestInfoFrom(req.Context()); ok {
		gv = schema.GroupVersion{Group: info.APIGroup, Version: info.APIVersion}
	}
	responsewriters.ErrorNegotiated(err, apis.Codecs, gv, w, req)
}

// recoverBadInput answers a panic of the request's handler: 400 when the
// request had a body (what panics there is decoding or patching it), else
// 500; the connection stays up. http.ErrAbortHandler is the server's own
// way to abort a response and goes on up.
func recoverBadInput(w http.ResponseWriter, req *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared, as net/http does
		panic(v)
	}
	panics.log(v, req)
	if hasBody(req) {
		writeStatus(w, req, apierrors.NewBadRequest(fmt.Sprintf("the request body could not be processed: %v", v)))
		return
	}
	writeStatus(w, req, apierrors.NewInternalError(fmt.Errorf("the server panicked handling the request: %v", v)))
}

// panicLogger logs recovered panics, their stacks (trimmed) at most every
// panicLogEvery, so that a client repeating a bad request cannot fill the
// log: 34 KiB of stack per request would be 17 MB in two seconds.
type panicLogger struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const (
	panicLogEvery = 10 * time.Second
	maxStackBytes = 4 << 10
)

var panics panicLogger

// allow tells whether to log a panic now, and how many were not logged
// since the last one that was.
func (p *panicLogger) allow() (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !p.last.IsZero() && now.Sub(p.last) < panicLogEvery {
		p.suppressed++
		return false, 0
	}
	p.last = now
	suppressed := p.suppressed
	p.suppressed = 0
	return true, suppressed
}

func (p *panicLogger) log(v any, req *http.Request) {
	ok, suppressed := p.allow()
	if !ok {
		return
	}
	stack := debug.Stack()
	if len(stack) > maxStackBytes {
		stack = stack[:maxStackBytes]
	}
	klog.ErrorS(nil, "Recovered a panic while handling a request", "panic", fmt.Sprint(v),
		"method", req.Method, "uri", req.RequestURI, "suppressedSinceLast", suppressed, "stack", string(stack))
}

// checkJSONPatch checks an RFC 6902 patch's shape: a list of operations,
// each with a known op, a path, and the value or from it needs (the
// json-patch library panics on some that lack them).
func checkJSONPatch(body []byte) error {
	var ops []map[string]json.RawMessage
	if err := json.Unmarshal(body, &ops); err != nil {
		return fmt.Errorf("the JSON patch is not a list of operations: %v", err)
	}
	for i, op := range ops {
		var name, path string
		if err := json.Unmarshal(op["op"], &name); err != nil {
			return fmt.Errorf("JSON patch operation %d: \"op\" must be a string", i)
		}
		if err := json.Unmarshal(op["path"], &path); err != nil {
			return fmt.Errorf("JSON patch operation %d (%s): \"path\" must be a string", i, name)
		}
		var needs string
		switch name {
		case "add", "replace", "test":
			needs = "value"
		case "move", "copy":
			needs = "from"
			var from string
			if err := json.Unmarshal(op["from"], &from); op["from"] != nil && err != nil {
				return fmt.Errorf("JSON patch operation %d (%s): \"from\" must be a string", i, name)
			}
		case "remove":
		default:
			return fmt.Errorf("JSON patch operation %d: unknown op %q", i, name)
		}
		if needs != "" && op[needs] == nil {
			return fmt.Errorf("JSON patch operation %d (%s %q) has no %q", i, name, path, needs)
		}
	}
	return nil
}

// checkStrategicMergePatch checks the shape of a strategic merge patch's
// directives: $patch is replace, merge or delete; $retainKeys,
// $setElementOrder/<field> and $deleteFromPrimitiveList/<field> are lists.
// (What needs the type's schema, the library checks; guardStorage makes a
// 400 of its errors.)
func checkStrategicMergePatch(body []byte) error {
	var patch any
	if err := json.Unmarshal(body, &patch); err != nil {
		return fmt.Errorf("the strategic merge patch is not JSON: %v", err)
	}
	return checkDirectives(patch, "")
}

func checkDirectives(v any, path string) error {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			if err := checkDirectives(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range v {
			at := path + "." + k
			switch {
			case k == "$patch":
				if s, ok := e.(string); !ok || (s != "replace" && s != "merge" && s != "delete") {
					return fmt.Errorf("strategic merge patch: %s must be replace, merge or delete, not %s", at, jsonText(e))
				}
			case k == "$retainKeys":
				if !isListOf(e, func(x any) bool { _, ok := x.(string); return ok }) {
					return fmt.Errorf("strategic merge patch: %s must be a list of field names, not %s", at, jsonText(e))
				}
			case strings.HasPrefix(k, "$deleteFromPrimitiveList/"):
				if !isListOf(e, isPrimitive) {
					return fmt.Errorf("strategic merge patch: %s must be a list of values, not %s", at, jsonText(e))
				}
			case strings.HasPrefix(k, "$setElementOrder/"):
				if !isListOf(e, isPrimitive) && !isListOf(e, func(x any) bool { _, ok := x.(map[string]any); return ok }) {
					return fmt.Errorf("strategic merge patch: %s must be a list of values or of objects naming their merge key, not %s", at, jsonText(e))
				}
			default:
				if err := checkDirectives(e, at); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func isListOf(v any, ok func(any) bool) bool {
	list, isList := v.([]any)
	if !isList {
		return false
	}
	for _, e := range list {
		if !ok(e) {
			return false
		}
	}
	return true
}

func isPrimitive(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

func jsonText(v any) string {
	out, _ := json.Marshal(v)
	if len(out) > 100 {
		return string(out[:100]) + "..."
	}
	return string(out)
}

// guardStorage wraps the storage of every resource of getter: bad input
// answered with 4xx (guardedStorage), watches drained promptly from the
// watch cache (watchbuffer explains why).
func guardStorage(getter genericregistry.RESTOptionsGetter) genericregistry.RESTOptionsGetter {
	return guardedOptions{getter}
}

type guardedOptions struct {
	genericregistry.RESTOptionsGetter
}

func (g guardedOptions) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (genericregistry.RESTOptions, error) {
	opts, err := g.RESTOptionsGetter.GetRESTOptions(resource, example)
	if err != nil {
		return opts, err
	}
	decorate := opts.Decorator
	opts.Decorator = func(config *storagebackend.ConfigForResource, resourcePrefix string, keyFunc func(runtime.Object) (string, error),
		newFunc, newListFunc func() runtime.Object, attrs storage.AttrFunc, triggers storage.IndexerFuncs, indexers *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
		s, destroy, err := decorate(config, resourcePrefix, keyFunc, newFunc, newListFunc, attrs, triggers, indexers)
		if err != nil {
			return s, destroy, err
		}
		return guardedStorage{Interface: watchbuffer.Wrap(s, resource.String()), resource: resource}, destroy, nil
	}
	return opts, nil
}

// guardedStorage is a resource's storage.Interface answering bad input
// with 4xx errors (see the package comment).
type guardedStorage struct {
	storage.Interface
	resource schema.GroupResource
}

func (s guardedStorage) checkResourceVersion(rv string) error {
	if _, err := s.Versioner().ParseResourceVersion(rv); err != nil {
		// The words of the list's 400, which upstream already answers.
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	return nil
}

func (s guardedStorage) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) error {
	if err := s.checkResourceVersion(opts.ResourceVersion); err != nil {
		return err
	}
	return s.Interface.Get(ctx, key, opts, out)
}

func (s guardedStorage) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	if err := s.checkResourceVersion(opts.ResourceVersion); err != nil {
		return nil, err
	}
	return s.Interface.Watch(ctx, key, opts)
}

func (s guardedStorage) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	return s.tooLarge(s.Interface.Create(ctx, key, obj, out, ttl))
}

func (s guardedStorage) GuaranteedUpdate(ctx context.Context, key string, dest runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, cached runtime.Object) error {
	if info, ok := genericapirequest.RequestInfoFrom(ctx); ok && info.Verb == "patch" {
		tryUpdate = patchErrorsAreBadRequests(tryUpdate)
	}
	return s.tooLarge(s.Interface.GuaranteedUpdate(ctx, key, dest, ignoreNotFound, preconditions, tryUpdate, cached))
}

// storeSignals are the texts of the errors the generic registry store's
// own update function returns to itself (unexported sentinels compared by
// identity): a patch that empties the finalizers of a deleted object must
// reach the store's "emptied finalizers" branch, which then deletes it.
var storeSignals = map[string]bool{"emptied finalizers": true, "abort delete": true, "delete now": true}

// patchErrorsAreBadRequests: during a patch, tryUpdate applies the patch
// to the stored object; an error there that is no API status (the
// strategic-merge and apply libraries return plain errors, the json-patch
// library panics) is the patch's fault.
func patchErrorsAreBadRequests(tryUpdate storage.UpdateFunc) storage.UpdateFunc {
	return func(input runtime.Object, res storage.ResponseMeta) (out runtime.Object, ttl *uint64, err error) {
		defer func() {
			if v := recover(); v != nil {
				err = apierrors.NewBadRequest(fmt.Sprintf("the patch cannot be applied: %v", v))
			}
		}()
		out, ttl, err = tryUpdate(input, res)
		var status apierrors.APIStatus
		if err != nil && !errors.As(err, &status) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
			!storeSignals[err.Error()] {
			err = apierrors.NewBadRequest(fmt.Sprintf("the patch cannot be applied: %v", err))
		}
		return out, ttl, err
	}
}

// tooLarge makes a 413 of etcd refusing an object for its size (its
// request limit, 1.5 MiB by default, or the client's 2 MiB message limit).
func (s guardedStorage) tooLarge(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrGRPCRequestTooLarge) ||
		grpcstatus.Code(err) == codes.ResourceExhausted {
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the %s object is larger than etcd stores (about 1.5 MiB): %v", s.resource, err))
	}
	return err
}
