package discovery_test

import (
	"testing"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

func TestEndpointSliceDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{
		Name: "ports get an empty name and TCP",
		In: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv4
endpoints: [{addresses: [10.1.2.3]}]
ports: [{port: 80}, {name: dns, port: 53, protocol: UDP}, {}]
`,
		Want: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv4
endpoints: [{addresses: [10.1.2.3]}]
ports: [{name: "", port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}, {name: "", protocol: TCP}]
`,
	}, {
		Name: "list",
		In: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSliceList
items:
- metadata: {name: a}
  addressType: IPv4
  endpoints: []
  ports: [{port: 80}]
`,
		Want: `
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
		Name: "endpoints are not defaulted",
		In: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv6
endpoints: [{addresses: ["fd00::1"], conditions: {}}]
`,
		Want: `
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
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{
		Name: "lease",
		In:   `{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}}`,
		Want: `{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}}`,
	}})
}
