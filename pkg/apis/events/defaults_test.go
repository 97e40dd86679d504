package events_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis"
)

func decode(t *testing.T, doc string, defaulting bool) runtime.Object {
	t.Helper()
	d := apis.Codecs.UniversalDeserializer()
	if defaulting {
		d = apis.Codecs.UniversalDecoder()
	}
	obj, _, err := d.Decode([]byte(doc), nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return obj
}

func wire(t *testing.T, obj runtime.Object) map[string]interface{} {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	return m
}

type defaultingCase struct{ name, in, want string }

func runDefaultingCases(t *testing.T, cases []defaultingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(t, tc.in, true)
			if d := cmp.Diff(wire(t, decode(t, tc.want, false)), wire(t, got)); d != "" {
				t.Errorf("defaulted object differs from upstream's (-want +got):\n%s", d)
			}
			again := got.DeepCopyObject()
			apis.Scheme.Default(again)
			if d := cmp.Diff(wire(t, got), wire(t, again)); d != "" {
				t.Errorf("defaulting twice differs from once (-once +twice):\n%s", d)
			}
		})
	}
}

// events.k8s.io/v1 Events, like core/v1 ones, have no defaulters upstream.
func TestEventsAreNotDefaulted(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "events.k8s.io/v1",
		in: `
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: e, namespace: ns}
eventTime: "2026-01-02T03:04:05.000000Z"
regarding: {kind: Pod, name: p, namespace: ns}
reason: Started
action: Start
type: Normal
reportingController: kubelet
reportingInstance: node-1
`,
		// The universal decoder gives the internal (core) Event.
		want: `
apiVersion: v1
kind: Event
metadata: {name: e, namespace: ns}
eventTime: "2026-01-02T03:04:05.000000Z"
involvedObject: {kind: Pod, name: p, namespace: ns}
reason: Started
action: Start
type: Normal
reportingComponent: kubelet
reportingInstance: node-1
source: {}
firstTimestamp: null
lastTimestamp: null
`,
	}})
}
