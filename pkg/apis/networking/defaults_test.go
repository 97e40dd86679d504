package networking_test

import (
	"testing"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

func TestNetworkPolicyDefaults(t *testing.T) {
	f := apitesting.Frame{Head: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\n"}
	apitesting.RunDefaultingCases(t, f.Cases([]apitesting.DefaultingCase{{
		Name: "ingress only",
		In:   "spec: {podSelector: {}}\n",
		Want: "spec: {podSelector: {}, policyTypes: [Ingress]}\n",
	}, {
		Name: "egress rules make it an egress policy too; ports default to TCP",
		In:   "spec: {podSelector: {}, ingress: [{ports: [{port: 80}]}], egress: [{ports: [{port: 53, protocol: UDP}, {}]}]}\n",
		Want: "spec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: TCP}]}], egress: [{ports: [{port: 53, protocol: UDP}, {protocol: TCP}]}], policyTypes: [Ingress, Egress]}\n",
	}, {
		Name: "explicit policy types stay",
		In:   "spec: {podSelector: {}, egress: [{}], policyTypes: [Egress]}\n",
		Want: "spec: {podSelector: {}, egress: [{}], policyTypes: [Egress]}\n",
	}}))
}

func TestIngressClassDefaults(t *testing.T) {
	f := apitesting.Frame{Head: "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: ic}\n"}
	apitesting.RunDefaultingCases(t, f.Cases([]apitesting.DefaultingCase{{
		Name: "parameters are cluster-scoped",
		In:   "spec: {controller: example.com/c, parameters: {kind: K, name: params}}\n",
		Want: "spec: {controller: example.com/c, parameters: {kind: K, name: params, scope: Cluster}}\n",
	}, {
		Name: "explicit scope stays",
		In:   "spec: {controller: example.com/c, parameters: {kind: K, name: params, scope: Namespace, namespace: ns}}\n",
		Want: "spec: {controller: example.com/c, parameters: {kind: K, name: params, scope: Namespace, namespace: ns}}\n",
	}, {
		Name: "no parameters",
		In:   "spec: {controller: example.com/c}\n",
		Want: "spec: {controller: example.com/c}\n",
	}}))
}

func TestIngressIsNotDefaulted(t *testing.T) {
	doc := `{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}`
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{Name: "ingress", In: doc, Want: doc}})
}
