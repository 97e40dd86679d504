// Package selectable describes the fields of an object that field selectors
// may use (`kubectl get pods --field-selector spec.nodeName=n1`). One table per
// kind feeds both the scheme's field-label conversion (which rejects unknown
// fields with 400, as upstream) and the registry's attribute function.
package selectable

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Fields maps a field selector key to the function reading it from an object.
// metadata.name and metadata.namespace are always selectable and need no entry.
type Fields map[string]func(runtime.Object) string

// Of adapts a typed getter to the untyped form Fields holds.
func Of[T runtime.Object](get func(T) string) func(runtime.Object) string {
	return func(obj runtime.Object) string {
		t, ok := obj.(T)
		if !ok {
			return ""
		}
		return get(t)
	}
}

// Register teaches the scheme which field labels kind accepts in each of the
// given versions.
func (f Fields) Register(scheme *runtime.Scheme, kind string, versions ...schema.GroupVersion) error {
	for _, gv := range versions {
		err := scheme.AddFieldLabelConversionFunc(gv.WithKind(kind), func(label, value string) (string, string, error) {
			if label == "metadata.name" || label == "metadata.namespace" {
				return label, value, nil
			}
			if _, ok := f[label]; ok {
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label not supported: %s", label)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Set returns the selectable field values of obj.
func (f Fields) Set(obj runtime.Object, namespaced bool) (fields.Set, error) {
	accessor, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	set := fields.Set{"metadata.name": accessor.GetName()}
	if namespaced {
		set["metadata.namespace"] = accessor.GetNamespace()
	}
	for key, get := range f {
		set[key] = get(obj)
	}
	return set, nil
}
