package storage

import (
	"errors"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/storage"
)

// TestPatchErrorsAreBadRequests: while a patch is applied, a plain error or
// a panic is a 400; API statuses stay as they are.
func TestPatchErrorsAreBadRequests(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "x"}, "n", errors.New("changed"))
	for name, tc := range map[string]struct {
		update storage.UpdateFunc
		code   int32
	}{
		"plain error": {func(runtime.Object, storage.ResponseMeta) (runtime.Object, *uint64, error) {
			return nil, nil, errors.New("unknown patch type: bogus")
		}, http.StatusBadRequest},
		"panic": {func(runtime.Object, storage.ResponseMeta) (runtime.Object, *uint64, error) {
			var m map[string]any
			m["x"] = 1
			return nil, nil, nil
		}, http.StatusBadRequest},
		"status": {func(runtime.Object, storage.ResponseMeta) (runtime.Object, *uint64, error) {
			return nil, nil, conflict
		}, http.StatusConflict},
	} {
		_, _, err := patchErrorsAreBadRequests(tc.update)(nil, storage.ResponseMeta{})
		var status apierrors.APIStatus
		if !errors.As(err, &status) || status.Status().Code != tc.code {
			t.Errorf("%s: %v, want a %d", name, err, tc.code)
		}
	}
}
