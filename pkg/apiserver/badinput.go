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
//   - storage.Guard (pkg/apiserver/storage), around every resource's
//     storage: a resourceVersion must parse (get and watch; a list already
//     checks it), an error or panic while a patch is applied is the
//     patch's (400), and an object etcd refuses for its size is a 413.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/features"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis"
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
// (What needs the type's schema, the library checks; storage.Guard makes a
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
