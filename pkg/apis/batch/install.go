// Package batch installs the batch/v1 types into a scheme.
package batch

import (
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
	"github.com/skiff-dev/skiff/pkg/apis/selectable"
)

// Install registers batch/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, batchv1.AddToScheme, batchv1.SchemeGroupVersion, &batchv1.Job{}); err != nil {
		return err
	}
	RegisterDefaults(scheme)
	if err := Fields["Job"].Register(scheme, "Job", batchv1.SchemeGroupVersion); err != nil {
		return err
	}
	return nil
}

// Fields are the field selectors of the batch kinds beyond metadata.
var Fields = map[string]selectable.Fields{
	"Job": {
		"status.successful": selectable.Of(func(j *batchv1.Job) string { return strconv.Itoa(int(j.Status.Succeeded)) }),
	},
}
