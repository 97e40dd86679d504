package batch_test

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

const (
	template = `
    spec:
      restartPolicy: Never
      containers: [{name: a, image: busybox}]
`
	templateSpec = `
    spec:
      restartPolicy: Never
      containers:
      - {name: a, image: busybox, imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
      terminationGracePeriodSeconds: 30
      dnsPolicy: ClusterFirst
      securityContext: {}
      schedulerName: default-scheduler
`
)

// job frames a table of Jobs: a row ends with the pod template's key (and
// its metadata), and the frame adds template in and templateSpec out.
var job = apitesting.Frame{Head: "apiVersion: batch/v1\nkind: Job\n", InTail: template, WantTail: templateSpec}

func TestJobDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, job.Cases([]apitesting.DefaultingCase{{
		Name: "minimal takes its labels from the template",
		In: `
metadata: {name: j}
spec:
  template:
    metadata: {labels: {app: j}}`,
		Want: `
metadata: {name: j, labels: {app: j}}
spec:
  completions: 1
  parallelism: 1
  backoffLimit: 6
  completionMode: NonIndexed
  suspend: false
  manualSelector: false
  podReplacementPolicy: TerminatingOrFailed
  template:
    metadata: {labels: {app: j}}`,
	}, {
		Name: "completions only and a pod failure policy",
		In: `
metadata: {name: j, labels: {own: x}}
spec:
  completions: 3
  podFailurePolicy:
    rules:
    - {action: Ignore, onPodConditions: [{type: DisruptionTarget}, {type: Other, status: "False"}]}
    - {action: FailJob, onExitCodes: {operator: In, values: [42]}}
  template:
    metadata: {labels: {app: j}}`,
		Want: `
metadata: {name: j, labels: {own: x}}
spec:
  completions: 3
  parallelism: 1
  backoffLimit: 6
  completionMode: NonIndexed
  suspend: false
  manualSelector: false
  podReplacementPolicy: Failed
  podFailurePolicy:
    rules:
    - {action: Ignore, onPodConditions: [{type: DisruptionTarget, status: "True"}, {type: Other, status: "False"}]}
    - {action: FailJob, onExitCodes: {operator: In, values: [42]}}
  template:
    metadata: {labels: {app: j}}`,
	}, {
		Name: "backoff limit per index",
		In: `
metadata: {name: j}
spec:
  completions: 3
  completionMode: Indexed
  backoffLimitPerIndex: 1
  template:`,
		Want: `
metadata: {name: j}
spec:
  completions: 3
  parallelism: 1
  backoffLimit: 2147483647
  backoffLimitPerIndex: 1
  completionMode: Indexed
  suspend: false
  manualSelector: false
  podReplacementPolicy: TerminatingOrFailed
  template:`,
	}, {
		Name: "explicit values kept",
		In: `
metadata: {name: j}
spec:
  parallelism: 4
  backoffLimit: 0
  suspend: true
  manualSelector: true
  podReplacementPolicy: Failed
  template:`,
		Want: `
metadata: {name: j}
spec:
  parallelism: 4
  backoffLimit: 0
  completionMode: NonIndexed
  suspend: true
  manualSelector: true
  podReplacementPolicy: Failed
  template:`,
	}}))
}

// deeper indents a template for a CronJob's jobTemplate.
func deeper(s string) string { return strings.ReplaceAll(s, "\n    ", "\n    "+"    ") }

// cronJob frames a table of CronJobs: a row ends with the job template's
// pod template key, and the frame adds template in and templateSpec out.
var cronJob = apitesting.Frame{
	Head:   "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n",
	InTail: deeper(template), WantTail: deeper(templateSpec),
}

func TestCronJobDefaults(t *testing.T) {
	const explicit = `
  schedule: "@daily"
  concurrencyPolicy: Forbid
  suspend: true
  successfulJobsHistoryLimit: 0
  failedJobsHistoryLimit: 5
  jobTemplate:
    spec:
      template:`
	apitesting.RunDefaultingCases(t, cronJob.Cases([]apitesting.DefaultingCase{{
		Name: "minimal; the job template gets no Job defaults",
		In: `
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      podFailurePolicy:
        rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]
      template:`,
		Want: `
  schedule: "*/1 * * * *"
  concurrencyPolicy: Allow
  suspend: false
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      podFailurePolicy:
        rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget, status: "True"}]}]
      template:`,
	}, {
		Name: "explicit values kept",
		In:   explicit,
		Want: explicit,
	}}))
}

// Every batch kind has a defaulter, and its list defaults each item the
// same way.
func TestBatchListsDefaultTheirItems(t *testing.T) {
	apitesting.ExpectDefaultersRegistered(t, &batchv1.Job{}, &batchv1.CronJob{})
}
