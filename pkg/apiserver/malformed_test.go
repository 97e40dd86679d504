package apiserver_test

// Bad input never costs more than a 4xx: malformed requests found by an
// attack run (issue 8, item 16), each answered with a Status of 400, 413,
// 415 or 422 that says what is wrong, never a 5xx or a dropped connection.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// malformedFixture is what the malformed requests aim at: a ConfigMap cm,
// a Deployment d (with /scale) and a Widget w of a CRD, in one namespace.
type malformedFixture struct {
	ns  string
	crd *crdFixture
}

var (
	malformedOnce sync.Once
	malformed     *malformedFixture
)

// malformedTargets creates the fixture once for the test and the fuzz
// test (it outlives both: the namespace goes with the shared server).
func malformedTargets(t testing.TB) *malformedFixture {
	t.Helper()
	malformedOnce.Do(func() {
		ctx := context.Background()
		f := &malformedFixture{ns: newNamespace(t), crd: newCRD(&noCleanup{t}, "malformed")}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"a": "b"}}
		if _, err := cs.CoreV1().ConfigMaps(f.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.AppsV1().Deployments(f.ns).Create(ctx, newDeployment("d", 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.crd.client(f.ns).Create(ctx, f.crd.widget(t, f.ns, "w", `{"size":"small"}`), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		malformed = f
	})
	if malformed == nil {
		t.Fatal("the malformed-request fixture failed to set up")
	}
	return malformed
}

// noCleanup keeps the fixture's CRD after the first test that made it.
type noCleanup struct{ testing.TB }

func (noCleanup) Cleanup(func()) {}

// Targets of malformed requests.
const (
	targetConfigMap = iota
	targetDeployment
	targetScale
	targetWidget
	targetWidgets // the collection: POST
	targetConfigMaps
	numTargets
)

func (f *malformedFixture) path(target uint8) string {
	crd := "/apis/" + f.crd.group + "/v1/namespaces/" + f.ns + "/widgets"
	switch target % numTargets {
	case targetConfigMap:
		return "/api/v1/namespaces/" + f.ns + "/configmaps/cm"
	case targetDeployment:
		return "/apis/apps/v1/namespaces/" + f.ns + "/deployments/d"
	case targetScale:
		return "/apis/apps/v1/namespaces/" + f.ns + "/deployments/d/scale"
	case targetWidget:
		return crd + "/w"
	case targetWidgets:
		return crd
	default:
		return "/api/v1/namespaces/" + f.ns + "/configmaps"
	}
}

// malformedCase is one bad request.
type malformedCase struct {
	name        string
	method      string
	target      uint8
	query       string
	contentType string
	body        []byte
}

const (
	jsonPatch  = "application/json-patch+json"
	mergePatch = "application/merge-patch+json"
	smPatch    = "application/strategic-merge-patch+json"
	applyPatch = "application/apply-patch+yaml"
	protobufCT = "application/vnd.kubernetes.protobuf"
)

// bigWidget is a Widget of about size bytes: more than etcd takes in one
// request (1.5 MiB) but less than the API server's 3 MB body limit.
func bigWidget(group string, size int) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"%s/v1","kind":"Widget","metadata":{"name":"big"},"spec":{"size":"small","extra":{"blob":%q}}}`,
		group, strings.Repeat("x", size))
}

func malformedCases(group string) []malformedCase {
	garbage := []byte("\x6b\x38\x73\x00\x0a\xff\xfe\x01garbage\x12\x99")
	return []malformedCase{
		// JSON patch operations without the value they need.
		{"json patch replace without value", "PATCH", targetConfigMap, "", jsonPatch, []byte(`[{"op":"replace","path":""}]`)},
		{"json patch add without value", "PATCH", targetConfigMap, "", jsonPatch, []byte(`[{"op":"add","path":"/data/x"}]`)},
		{"json patch test without value", "PATCH", targetDeployment, "", jsonPatch, []byte(`[{"op":"test","path":"/spec/replicas"}]`)},
		{"json patch replace without value on a CR", "PATCH", targetWidget, "", jsonPatch, []byte(`[{"op":"replace","path":"/spec"}]`)},
		{"json patch move without from", "PATCH", targetConfigMap, "", jsonPatch, []byte(`[{"op":"move","path":"/data/x"}]`)},
		{"json patch unknown op", "PATCH", targetConfigMap, "", jsonPatch, []byte(`[{"op":"frobnicate","path":"/data"}]`)},
		// Protobuf is no encoding of custom resources.
		{"protobuf create of a CR", "POST", targetWidgets, "", protobufCT, garbage},
		{"protobuf update of a CR", "PUT", targetWidget, "", protobufCT, garbage},
		// Strategic merge patch directives that make no sense.
		{"smp bogus $patch", "PATCH", targetConfigMap, "", smPatch, []byte(`{"$patch":"bogus"}`)},
		{"smp bogus $patch in a map", "PATCH", targetConfigMap, "", smPatch, []byte(`{"metadata":{"labels":{"$patch":"bogus"}}}`)},
		{"smp bogus $patch in a list", "PATCH", targetDeployment, "", smPatch, []byte(`{"spec":{"template":{"spec":{"containers":[{"$patch":"bogus","name":"c"}]}}}}`)},
		{"smp $patch not a string", "PATCH", targetDeployment, "", smPatch, []byte(`{"spec":{"template":{"spec":{"containers":[{"$patch":7}]}}}}`)},
		{"smp $setElementOrder not a list", "PATCH", targetDeployment, "", smPatch, []byte(`{"spec":{"template":{"spec":{"$setElementOrder/containers":"c"}}}}`)},
		{"smp $setElementOrder of numbers", "PATCH", targetDeployment, "", smPatch, []byte(`{"spec":{"template":{"spec":{"$setElementOrder/containers":[1,2]}}}}`)},
		{"smp $setElementOrder without merge key", "PATCH", targetDeployment, "", smPatch, []byte(`{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"image":"x"}]}}}}`)},
		{"smp $setElementOrder of a map field", "PATCH", targetConfigMap, "", smPatch, []byte(`{"$setElementOrder/data":[{"a":"b"}]}`)},
		{"smp $retainKeys not a list", "PATCH", targetDeployment, "", smPatch, []byte(`{"spec":{"strategy":{"$retainKeys":"type"}}}`)},
		{"smp $deleteFromPrimitiveList not a list", "PATCH", targetConfigMap, "", smPatch, []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}}`)},
		// Apply patches that do not fit the schema.
		{"apply !!binary label", "PATCH", targetConfigMap, "?fieldManager=fuzz", applyPatch, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  labels:\n    a: !!binary //79\n")},
		{"apply !!binary annotation", "PATCH", targetConfigMap, "?fieldManager=fuzz", applyPatch, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  annotations:\n    a: !!binary //79\n")},
		{"apply !!binary label key", "PATCH", targetConfigMap, "?fieldManager=fuzz", applyPatch, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  labels:\n    !!binary //79: a\n")},
		{"apply !!binary data on a CR", "PATCH", targetWidget, "?fieldManager=fuzz&force=true", applyPatch, fmt.Appendf(nil, "apiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: w\n  labels:\n    a: !!binary //79\nspec:\n  size: !!binary //79\n", group)},
		{"apply string spec", "PATCH", targetDeployment, "?fieldManager=fuzz", applyPatch, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec: foo\n")},
		{"apply string spec on a CR", "PATCH", targetWidget, "?fieldManager=fuzz&force=true", applyPatch, fmt.Appendf(nil, "apiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: w\nspec: foo\n", group)},
		// resourceVersion must be a number.
		{"get with resourceVersion abc", "GET", targetConfigMap, "?resourceVersion=abc", "", nil},
		{"list with resourceVersion abc", "GET", targetConfigMaps, "?resourceVersion=abc", "", nil},
		{"watch with resourceVersion abc", "GET", targetConfigMaps, "?watch=true&resourceVersion=abc", "", nil},
		{"get scale with resourceVersion abc", "GET", targetScale, "?resourceVersion=abc", "", nil},
		{"get CR with resourceVersion abc", "GET", targetWidget, "?resourceVersion=abc", "", nil},
		// Custom resources larger than etcd takes.
		{"CR of 1.6 MB", "POST", targetWidgets, "", "application/json", bigWidget(group, 1_600_000)},
		{"CR of 2.9 MB", "POST", targetWidgets, "", "application/json", bigWidget(group, 2_900_000)},
	}
}

// sendMalformed sends c and returns the answer's code and body; code -1
// when the connection dropped.
func sendMalformed(ctx context.Context, f *malformedFixture, c malformedCase) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, c.method, strings.TrimRight(cfg.Host, "/")+f.path(c.target)+c.query, bytes.NewReader(c.body))
	if err != nil {
		return 0, nil, err
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return -1, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return resp.StatusCode, nil, nil // an accepted watch would stream on
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, err
}

// checkAnswer fails unless code is a 4xx (or a success) and a 4xx carries
// a Status with a message.
func checkAnswer(t testing.TB, what string, code int, body []byte, err error) {
	t.Helper()
	switch {
	case code == -1:
		t.Errorf("%s: connection dropped: %v", what, err)
	case code >= 500:
		t.Errorf("%s: answered %d: %.300s", what, code, body)
	case code >= 400:
		var s metav1.Status
		if err != nil || json.Unmarshal(body, &s) != nil || s.Kind != "Status" || s.Message == "" || s.Code != int32(code) {
			t.Errorf("%s: answered %d without a Status saying what is wrong: %.300s", what, code, body)
		}
	}
}

// TestMalformedRequestsAnswer4xx: each malformed request of the attack run
// is answered with the 4xx it deserves.
func TestMalformedRequestsAnswer4xx(t *testing.T) {
	f := malformedTargets(t)
	want := map[string]int{
		"protobuf create of a CR": http.StatusUnsupportedMediaType,
		"protobuf update of a CR": http.StatusUnsupportedMediaType,
		"CR of 1.6 MB":            http.StatusRequestEntityTooLarge,
		"CR of 2.9 MB":            http.StatusRequestEntityTooLarge,
		// !!binary decodes to a string: kept where any string goes.
		"apply !!binary annotation": 0,
	}
	for _, c := range malformedCases(f.crd.group) {
		t.Run(c.name, func(t *testing.T) {
			code, body, err := sendMalformed(testCtx(t), f, c)
			checkAnswer(t, c.name, code, body, err)
			if w, ok := want[c.name]; ok && w != 0 && code != w {
				t.Errorf("answered %d, want %d: %.300s", code, w, body)
			} else if !ok && code != http.StatusBadRequest && code != http.StatusUnprocessableEntity {
				t.Errorf("answered %d, want 400 or 422: %.300s", code, body)
			}
			t.Logf("%d %.200s", code, body)
		})
	}
}

// fuzzMethods and fuzzContentTypes are what FuzzMalformedRequests picks
// from by index (the fuzzer mutates bodies and queries, not the protocol).
var (
	fuzzMethods      = []string{"GET", "POST", "PUT", "PATCH"}
	fuzzContentTypes = []string{"", "application/json", "application/yaml", jsonPatch, mergePatch, smPatch, applyPatch, protobufCT, "application/cbor"}
)

// FuzzMalformedRequests: no request, however malformed its body or query,
// gets a 5xx or a dropped connection. Its seeds are the cases of
// TestMalformedRequestsAnswer4xx (they run in every go test); hack/test.sh
// fuzzes it for a bounded while.
func FuzzMalformedRequests(f *testing.F) {
	fix := malformedTargets(f)
	for _, c := range malformedCases(fix.crd.group) {
		f.Add(uint8(slices.Index(fuzzMethods, c.method)), c.target, c.query, uint8(slices.Index(fuzzContentTypes, c.contentType)), c.body)
	}
	f.Fuzz(func(t *testing.T, method, target uint8, query string, contentType uint8, body []byte) {
		if query != "" && !strings.HasPrefix(query, "?") {
			query = "?" + query
		}
		if _, err := url.Parse(query); err != nil || strings.ContainsAny(query, "# \t\r\n") {
			t.Skip("not a query")
		}
		c := malformedCase{
			method: fuzzMethods[int(method)%len(fuzzMethods)], target: target, query: query,
			contentType: fuzzContentTypes[int(contentType)%len(fuzzContentTypes)], body: body,
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		code, answer, err := sendMalformed(ctx, fix, c)
		checkAnswer(t, fmt.Sprintf("%s %s%s (%s, %d bytes)", c.method, fix.path(target), query, c.contentType, len(body)), code, answer, err)
	})
}
