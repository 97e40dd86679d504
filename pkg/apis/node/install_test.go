package node_test

import (
	"testing"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// node.k8s.io/v1 has no defaulters upstream.
func TestRuntimeClassIsNotDefaulted(t *testing.T) {
	doc := `{"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "r"}, "handler": "runc", "scheduling": {"tolerations": [{"key": "k"}]}}`
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{Name: "runtimeclass", In: doc, Want: doc}})
}
