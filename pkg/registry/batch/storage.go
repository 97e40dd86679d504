// Package batch builds the storage of the batch/v1 resources.
package batch

import (
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	batchfields "github.com/skiff-dev/skiff/pkg/apis/batch"
	batchvalidation "github.com/skiff-dev/skiff/pkg/apis/batch/validation"
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

func gr(resource string) schema.GroupResource {
	return schema.GroupResource{Group: batchv1.GroupName, Resource: resource}
}

// Resources describes every batch/v1 resource.
var Resources = []store.Resource{
	{Resource: gr("jobs"), PrepareForCreate: prepareJobForCreate, DeleteWarning: jobDeleteWarning, Generation: store.GenerationOnSpec, OrphanByDefault: true, Singular: "job", Namespaced: true, Categories: []string{"all"}, HasStatus: true, AllowCreateOnUpdate: true,
		Fields: batchfields.Fields["Job"],
		New:    func() runtime.Object { return &batchv1.Job{} }, NewList: func() runtime.Object { return &batchv1.JobList{} },
		Validate: corevalidation.ForCreate(batchvalidation.ValidateJob), ValidateUpdate: corevalidation.ForUpdate(batchvalidation.ValidateJobUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(batchvalidation.ValidateJobStatusUpdate)},
	{Resource: gr("cronjobs"), Generation: store.GenerationOnSpec, Singular: "cronjob", Namespaced: true, ShortNames: []string{"cj"}, Categories: []string{"all"}, HasStatus: true, AllowCreateOnUpdate: true,
		New: func() runtime.Object { return &batchv1.CronJob{} }, NewList: func() runtime.Object { return &batchv1.CronJobList{} },
		Validate: corevalidation.ForCreate(batchvalidation.ValidateCronJob), ValidateUpdate: corevalidation.ForUpdate(batchvalidation.ValidateCronJobUpdate),
		// Upstream's cronjobs/status validates nothing.
		ValidateStatusUpdate: func(_, _ runtime.Object) field.ErrorList { return nil }},
}

// jobDeleteWarning: batch/v1 Jobs orphan their pods unless told otherwise.
const jobDeleteWarning = "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"
