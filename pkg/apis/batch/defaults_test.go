package batch_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

func decode(t *testing.T, doc string, defaulting bool) runtime.Object {
	t.Helper()
	d := apis.Codecs.UniversalDeserializer()
	if defaulting {
		d = apis.Codecs.UniversalDecoder()
	}
	obj, _, err := d.Decode([]byte(doc), nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return obj
}

func wire(t *testing.T, obj runtime.Object) map[string]interface{} {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	return m
}

type defaultingCase struct{ name, in, want string }

func runDefaultingCases(t *testing.T, cases []defaultingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(t, tc.in, true)
			if d := cmp.Diff(wire(t, decode(t, tc.want, false)), wire(t, got)); d != "" {
				t.Errorf("defaulted object differs from upstream's (-want +got):\n%s", d)
			}
			again := got.DeepCopyObject()
			apis.Scheme.Default(again)
			if d := cmp.Diff(wire(t, got), wire(t, again)); d != "" {
				t.Errorf("defaulting twice differs from once (-once +twice):\n%s", d)
			}
		})
	}
}

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

func TestJobDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "minimal takes its labels from the template",
		in: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    metadata: {labels: {app: j}}` + template,
		want: `
apiVersion: batch/v1
kind: Job
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
    metadata: {labels: {app: j}}` + templateSpec,
	}, {
		name: "completions only and a pod failure policy",
		in: `
apiVersion: batch/v1
kind: Job
metadata: {name: j, labels: {own: x}}
spec:
  completions: 3
  podFailurePolicy:
    rules:
    - {action: Ignore, onPodConditions: [{type: DisruptionTarget}, {type: Other, status: "False"}]}
    - {action: FailJob, onExitCodes: {operator: In, values: [42]}}
  template:
    metadata: {labels: {app: j}}` + template,
		want: `
apiVersion: batch/v1
kind: Job
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
    metadata: {labels: {app: j}}` + templateSpec,
	}, {
		name: "backoff limit per index",
		in: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  completions: 3
  completionMode: Indexed
  backoffLimitPerIndex: 1
  template:` + template,
		want: `
apiVersion: batch/v1
kind: Job
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
  template:` + templateSpec,
	}, {
		name: "explicit values kept",
		in: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  parallelism: 4
  backoffLimit: 0
  suspend: true
  manualSelector: true
  podReplacementPolicy: Failed
  template:` + template,
		want: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  parallelism: 4
  backoffLimit: 0
  completionMode: NonIndexed
  suspend: true
  manualSelector: true
  podReplacementPolicy: Failed
  template:` + templateSpec,
	}})
}

// deeper indents a template for a CronJob's jobTemplate.
func deeper(s string) string { return strings.ReplaceAll(s, "\n    ", "\n    "+"    ") }

func TestCronJobDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "minimal; the job template gets no Job defaults",
		in: `
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      podFailurePolicy:
        rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]
      template:` + deeper(template),
		want: `
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Allow
  suspend: false
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      podFailurePolicy:
        rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget, status: "True"}]}]
      template:` + deeper(templateSpec),
	}, {
		name: "explicit values kept",
		in: `
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "@daily"
  concurrencyPolicy: Forbid
  suspend: true
  successfulJobsHistoryLimit: 0
  failedJobsHistoryLimit: 5
  jobTemplate:
    spec:
      template:` + deeper(template),
		want: `
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "@daily"
  concurrencyPolicy: Forbid
  suspend: true
  successfulJobsHistoryLimit: 0
  failedJobsHistoryLimit: 5
  jobTemplate:
    spec:
      template:` + deeper(templateSpec),
	}})
}

func TestBatchListsDefaultTheirItems(t *testing.T) {
	for _, sample := range []runtime.Object{&batchv1.Job{}, &batchv1.CronJob{}} {
		gvks, _, err := apis.Scheme.ObjectKinds(sample)
		if err != nil {
			t.Fatal(err)
		}
		gvk := gvks[0]
		one := sample.DeepCopyObject()
		apis.Scheme.Default(one)
		if d := cmp.Diff(wire(t, sample), wire(t, one)); d == "" {
			t.Errorf("%s has no defaulter", gvk.Kind)
		}
		list, err := apis.Scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err != nil {
			t.Fatal(err)
		}
		if err := meta.SetList(list, []runtime.Object{sample.DeepCopyObject()}); err != nil {
			t.Fatal(err)
		}
		apis.Scheme.Default(list)
		items, err := meta.ExtractList(list)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(wire(t, one), wire(t, items[0])); d != "" {
			t.Errorf("%sList does not default its items (-want +got):\n%s", gvk.Kind, d)
		}
	}
}
