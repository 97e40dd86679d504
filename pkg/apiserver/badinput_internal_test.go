package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// TestPatchChecksAcceptValidPatches: the checks refuse no patch kubectl or
// the RFC allow.
func TestPatchChecksAcceptValidPatches(t *testing.T) {
	for _, p := range []string{
		`[]`,
		`[{"op":"add","path":"/data/x","value":null},{"op":"remove","path":"/data/y"},{"op":"replace","path":"","value":{}}]`,
		`[{"op":"test","path":"/a","value":1},{"op":"move","from":"/a","path":"/b"},{"op":"copy","from":"/b","path":"/c"}]`,
	} {
		if err := checkJSONPatch([]byte(p)); err != nil {
			t.Errorf("JSON patch %s: %v", p, err)
		}
	}
	for _, p := range []string{
		`{}`, `null`,
		// As kubectl apply writes them.
		`{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"name":"b","image":"x"}]}}}}`,
		`{"metadata":{"$setElementOrder/finalizers":["a","b"],"$deleteFromPrimitiveList/finalizers":["c"]}}`,
		`{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}}`,
		`{"spec":{"template":{"spec":{"containers":[{"name":"c","$patch":"delete"}]}}}}`,
		`{"metadata":{"labels":{"$patch":"replace","a":"b"}}}`,
	} {
		if err := checkStrategicMergePatch([]byte(p)); err != nil {
			t.Errorf("strategic merge patch %s: %v", p, err)
		}
	}
}

// TestBadInputGuardRecoversPanics: a panicking handler costs a 400 Status
// (with a body) or a 500 Status (without), never the connection, and of a
// burst of panics one is logged.
func TestBadInputGuardRecoversPanics(t *testing.T) {
	h := withBadInputGuard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("nil strict serializer") }), sets.New[string]())
	for method, want := range map[string]int{http.MethodPost: http.StatusBadRequest, http.MethodGet: http.StatusInternalServerError} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/apis/x.test/v1/widgets", strings.NewReader("{}")))
		var s metav1.Status
		if rec.Code != want || json.Unmarshal(rec.Body.Bytes(), &s) != nil || !strings.Contains(s.Message, "nil strict serializer") {
			t.Errorf("%s: %d %s, want %d and a Status naming the panic", method, rec.Code, rec.Body, want)
		}
	}

	abort := withBadInputGuard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }), sets.New[string]())
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler { //nolint:errorlint
				t.Errorf("http.ErrAbortHandler was not passed on: %v", v)
			}
		}()
		abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()

	var p panicLogger
	logged := 0
	for range 1000 {
		if ok, _ := p.allow(); ok {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("%d of 1000 panics in a burst logged, want 1", logged)
	}
	p.last = p.last.Add(-panicLogEvery)
	if ok, suppressed := p.allow(); !ok || suppressed != 999 {
		t.Errorf("after %v: logged %v, suppressed %d; want the next one logged, counting 999", panicLogEvery, ok, suppressed)
	}
}
