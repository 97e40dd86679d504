package printers

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

var jobTable = newTable(
	columns(
		cols(
			nameColumn(),
			column("Status", "string", "Status of the job."),
			column("Completions", "string", batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
			column("Duration", "string", "Time required to complete the job."),
			ageColumn(),
		),
		templateColumns(batchv1.JobSpec{}.SwaggerDoc()["selector"]),
	),
	func(j *batchv1.Job) []any {
		var completions string
		switch parallelism := deref(j.Spec.Parallelism); {
		case j.Spec.Completions != nil:
			completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
		case parallelism > 1:
			completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, parallelism)
		default:
			completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
		}

		var jobDuration string
		switch {
		case j.Status.StartTime == nil:
		case j.Status.CompletionTime == nil:
			jobDuration = duration.HumanDuration(now().Sub(j.Status.StartTime.Time))
		default:
			jobDuration = duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
		}

		return append([]any{j.Name, jobStatus(j), completions, jobDuration, age(j.CreationTimestamp)},
			templateCells(&j.Spec.Template, metav1.FormatLabelSelector(j.Spec.Selector))...)
	},
)

func jobStatus(j *batchv1.Job) string {
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}
	switch {
	case has(batchv1.JobComplete):
		return "Complete"
	case has(batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case has(batchv1.JobSuspended):
		return "Suspended"
	case has(batchv1.JobFailureTarget):
		return "FailureTarget"
	default:
		return "Running"
	}
}

var cronJobTable = newTable(
	columns(
		cols(
			nameColumn(),
			column("Schedule", "string", batchv1beta1.CronJobSpec{}.SwaggerDoc()["schedule"]),
			column("Timezone", "string", batchv1beta1.CronJobSpec{}.SwaggerDoc()["timeZone"]),
			column("Suspend", "boolean", batchv1beta1.CronJobSpec{}.SwaggerDoc()["suspend"]),
			column("Active", "integer", batchv1beta1.CronJobStatus{}.SwaggerDoc()["active"]),
			column("Last Schedule", "string", batchv1beta1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]),
			ageColumn(),
		),
		templateColumns(batchv1.JobSpec{}.SwaggerDoc()["selector"]),
	),
	func(cj *batchv1.CronJob) []any {
		lastSchedule := none
		if cj.Status.LastScheduleTime != nil {
			lastSchedule = age(*cj.Status.LastScheduleTime)
		}
		jobSpec := &cj.Spec.JobTemplate.Spec
		return append([]any{cj.Name, cj.Spec.Schedule, strPtrOr(cj.Spec.TimeZone, none), boolPtrString(cj.Spec.Suspend),
			int64(len(cj.Status.Active)), lastSchedule, age(cj.CreationTimestamp)},
			templateCells(&jobSpec.Template, metav1.FormatLabelSelector(jobSpec.Selector))...)
	},
)
