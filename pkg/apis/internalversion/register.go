// Package internalversion registers the versioned k8s.io/api types a second
// time as the internal version of their group. The generic registry works on
// internal objects; with the same Go type under both versions the scheme
// converts between them by copying, so skiff needs no internal types and no
// conversion code.
package internalversion

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Register adds every type of gv that was declared in the same Go package as
// sample (the group's own kinds, not the meta/v1 option types) under the
// internal version of gv's group.
func Register(scheme *runtime.Scheme, gv schema.GroupVersion, sample runtime.Object) error {
	pkg := reflect.TypeOf(sample).Elem().PkgPath()
	internal := schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
	known := scheme.KnownTypes(gv)
	if len(known) == 0 {
		return fmt.Errorf("no types registered for %s", gv)
	}
	for kind, t := range known {
		if t.PkgPath() != pkg {
			continue
		}
		scheme.AddKnownTypeWithName(internal.WithKind(kind), reflect.New(t).Interface().(runtime.Object))
	}
	return nil
}

// Install adds a group version (addToScheme is its k8s.io/api AddToScheme),
// registers its kinds as the internal version too, and makes it the group's
// preferred (and storage) version.
func Install(scheme *runtime.Scheme, addToScheme func(*runtime.Scheme) error, gv schema.GroupVersion, sample runtime.Object) error {
	if err := addToScheme(scheme); err != nil {
		return err
	}
	if err := Register(scheme, gv, sample); err != nil {
		return err
	}
	return scheme.SetVersionPriority(gv)
}
