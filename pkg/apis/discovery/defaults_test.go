package discovery_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

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

func TestEndpointSliceDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "ports get an empty name and TCP",
		in: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv4
endpoints: [{addresses: [10.1.2.3]}]
ports: [{port: 80}, {name: dns, port: 53, protocol: UDP}, {}]
`,
		want: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv4
endpoints: [{addresses: [10.1.2.3]}]
ports: [{name: "", port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}, {name: "", protocol: TCP}]
`,
	}, {
		name: "list",
		in: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSliceList
items:
- metadata: {name: a}
  addressType: IPv4
  endpoints: []
  ports: [{port: 80}]
`,
		want: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSliceList
metadata: {}
items:
- metadata: {name: a}
  addressType: IPv4
  endpoints: []
  ports: [{name: "", port: 80, protocol: TCP}]
`,
	}, {
		name: "endpoints are not defaulted",
		in: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv6
endpoints: [{addresses: ["fd00::1"], conditions: {}}]
`,
		want: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv6
endpoints: [{addresses: ["fd00::1"], conditions: {}}]
`,
	}})
}

// coordination.k8s.io has no defaulters upstream, so it has no package here.
func TestLeaseIsNotDefaulted(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "lease",
		in:   `{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}}`,
		want: `{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}}`,
	}})
}
