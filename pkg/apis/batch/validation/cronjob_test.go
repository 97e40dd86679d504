package validation

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func cronJob(mutate func(*batchv1.CronJob)) *batchv1.CronJob {
	spec := jobSpec()
	spec.Selector = nil
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: "default"}, Spec: batchv1.CronJobSpec{
		Schedule: "*/5 * * * *", ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptr.To(false),
		SuccessfulJobsHistoryLimit: ptr.To[int32](3), FailedJobsHistoryLimit: ptr.To[int32](1),
		JobTemplate: batchv1.JobTemplateSpec{Spec: spec},
	}}
	if mutate != nil {
		mutate(cj)
	}
	return cj
}

func TestValidateCronJob(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*batchv1.CronJob)
		want   []string
	}{
		{"valid", nil, nil},
		{"time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr.To("Etc/UTC") }, nil},
		{"no schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "" }, []string{"Required spec.schedule"}},
		{"bad schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" }, []string{"Invalid spec.schedule"}},
		{"TZ in schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" }, []string{"Invalid spec.schedule"}},
		{"bad time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr.To("Mars/Olympus_Mons") }, []string{"Invalid spec.timeZone"}},
		{"local time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr.To("Local") }, []string{"Invalid spec.timeZone"}},
		{"concurrency", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }, []string{"NotSupported spec.concurrencyPolicy"}},
		{"history limits", func(c *batchv1.CronJob) {
			c.Spec.SuccessfulJobsHistoryLimit, c.Spec.FailedJobsHistoryLimit = ptr.To[int32](-1), ptr.To[int32](-1)
			c.Spec.StartingDeadlineSeconds = ptr.To[int64](-1)
		}, []string{"Invalid spec.successfulJobsHistoryLimit", "Invalid spec.failedJobsHistoryLimit", "Invalid spec.startingDeadlineSeconds"}},
		{"job template selector", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
			c.Spec.JobTemplate.Spec.ManualSelector = ptr.To(true)
		}, []string{"Invalid spec.jobTemplate.spec.selector", "NotSupported spec.jobTemplate.spec.manualSelector"}},
		{"job template restart policy", func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = "" },
			[]string{"Required spec.jobTemplate.spec.template.spec.restartPolicy", "Required spec.jobTemplate.spec.template.spec.restartPolicy"}},
		{"long name", func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) }, []string{"Invalid metadata.name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { apitesting.ExpectFieldErrors(t, ValidateCronJob(cronJob(tc.mutate)), tc.want...) })
	}
	// Long names stay updatable; TZ stays allowed when it was there.
	old := cronJob(func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 60); c.Spec.Schedule = "TZ=UTC 0 * * * *" })
	apitesting.ExpectFieldErrors(t, ValidateCronJobUpdate(old.DeepCopy(), old))
}

func TestParseCronSchedule(t *testing.T) {
	valid := []string{"* * * * *", "*/5 * * * *", "0 0 1 1 *", "0 9-17/2 * * mon-fri", "0 0 * JAN,jul sun", "? * * * ?", "5 * * * 6",
		"@hourly", "@daily", "@every 1h30m", "TZ=UTC 0 * * * *", "CRON_TZ=Europe/Paris 0 0 * * *", "0,15,30,45 * * * *", "3/10 * * * *"}
	for _, s := range valid {
		if err := parseCronSchedule(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	invalid := map[string]string{
		"":                       "empty spec string",
		"* * * *":                "expected exactly 5 fields, found 4: [* * * *]",
		"* * * * * *":            "expected exactly 5 fields, found 6",
		"60 * * * *":             "end of range (60) above maximum (59): 60",
		"* 24 * * *":             "end of range (24) above maximum (23)",
		"* * 0 * *":              "beginning of range (0) below minimum (1): 0",
		"* * * 13 *":             "above maximum (12)",
		"* * * * 7":              "end of range (7) above maximum (6): 7",
		"5-1 * * * *":            "beginning of range (5) beyond end of range (1): 5-1",
		"*/0 * * * *":            "step of range should be a positive number: */0",
		"1-2-3 * * * *":          "too many hyphens: 1-2-3",
		"*/2/3 * * * *":          "too many slashes: */2/3",
		"x * * * *":              "failed to parse int from x",
		"@sometimes":             "unrecognized descriptor: @sometimes",
		"@every forever":         "failed to parse duration @every forever",
		"TZ=Nowhere/X 0 * * * *": "provided bad location Nowhere/X",
	}
	for s, want := range invalid {
		err := parseCronSchedule(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", s, err, want)
		}
	}
}
