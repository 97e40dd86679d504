package openapi

import (
	"testing"

	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Every definition a served type refers to must be generated too, or the
// apiserver refuses to start ("cannot find model definition").
func TestDefinitionsAreClosed(t *testing.T) {
	defs := GetOpenAPIDefinitions(func(path string) spec.Ref { return spec.MustCreateRef("#/definitions/" + path) })
	for name, def := range defs {
		for _, dep := range def.Dependencies {
			if _, ok := defs[dep]; !ok {
				t.Errorf("%s depends on %s, which is not generated: add its package to hack/update-codegen.sh", name, dep)
			}
		}
	}
}
