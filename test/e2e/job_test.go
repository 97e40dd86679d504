package e2e

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
)

// jobsManifest: a Job whose five pods (two at a time) exit 0 after 1 s,
// one whose pods exit 1 (backoffLimit 1: the second failure fails it),
// and a CronJob running every minute.
const jobsManifest = `
apiVersion: batch/v1
kind: Job
metadata: {name: ok}
spec:
  completions: 5
  parallelism: 2
  template:
    metadata:
      annotations: {skiff.dev/sim-exit-after: 1s, skiff.dev/sim-exit-code: "0"}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: bad}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations: {skiff.dev/sim-exit-after: 1s, skiff.dev/sim-exit-code: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {skiff.dev/sim-exit-after: 1s}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
`

// TestJobs: against skiff server and three simulated nodes, by stock
// kubectl: a Job of 5 completions, 2 in parallel, completes with 5
// succeeded pods; a failing one fails with BackoffLimitExceeded after its
// second failure (the replacement after the 10 s backoff); a CronJob
// "*/1 * * * *" creates its Job <name>-<minutes> within 70 s.
func TestJobs(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "3")
	k := newKctl(t, firstKubectl(t), srv)
	eventually(t, 20*time.Second, func() string {
		if out := k.run("get", "nodes", "--no-headers"); strings.Count(out.stdout, " Ready ") != 3 {
			return "kubectl get nodes: " + out.combined()
		}
		return ""
	})
	// The default ServiceAccount the pods need.
	eventually(t, 10*time.Second, func() string {
		if out := k.run("get", "serviceaccount", "default"); out.err != nil {
			return out.combined()
		}
		return ""
	})
	created := time.Now()
	k.okStdin(t, jobsManifest, "apply", "-f", "-")

	k.ok(t, "wait", "--for=condition=complete", "job/ok", "--timeout=60s")
	assertEqual(t, "job ok succeeded", k.jsonpath(t, "{.status.succeeded}", "job", "ok"), "5")
	// Zero counts are left out, as upstream's.
	assertEqual(t, "job ok failed/active", k.jsonpath(t, "{.status.failed}/{.status.active}", "job", "ok"), "/")
	if out := k.ok(t, "get", "pods", "-l", "batch.kubernetes.io/job-name=ok", "--no-headers"); strings.Count(out, "Completed") != 5 || len(strings.Split(strings.TrimSpace(out), "\n")) != 5 {
		t.Errorf("pods of job ok:\n%s", out)
	}
	assertContains(t, k.ok(t, "get", "job", "ok"), "5/5")
	assertContains(t, k.ok(t, "describe", "job", "ok"), "SuccessfulCreate", "Completed")

	k.ok(t, "wait", "--for=condition=failed", "job/bad", "--timeout=60s")
	reason := k.jsonpath(t, `{.status.conditions[?(@.type=="Failed")].reason}`, "job", "bad")
	assertEqual(t, "Failed reason", reason, batchv1.JobReasonBackoffLimitExceeded)
	assertEqual(t, "job bad failed", k.jsonpath(t, "{.status.failed}", "job", "bad"), "2")
	assertContains(t, k.ok(t, "get", "events", "--field-selector", "involvedObject.name=bad"), "BackoffLimitExceeded", "Job has reached the specified backoff limit")

	var name string
	eventually(t, 70*time.Second-time.Since(created), func() string {
		name = k.jsonpath(t, `{.items[?(@.metadata.ownerReferences[0].name=="tick")].metadata.name}`, "jobs")
		if name == "" {
			return "no Job of CronJob tick: " + k.run("get", "cronjob,jobs").combined()
		}
		return ""
	})
	if !strings.HasPrefix(name, "tick-") || len(name) != len("tick-")+8 {
		t.Errorf("CronJob's Job is named %q, want tick-<minutes>", name)
	}
	if ts := k.jsonpath(t, `{.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}`, "job", name); !strings.HasSuffix(ts, ":00Z") {
		t.Errorf("cronjob-scheduled-timestamp %q", ts)
	}
	eventually(t, 10*time.Second, func() string {
		if out := k.jsonpath(t, "{.status.lastScheduleTime}", "cronjob", "tick"); out == "" {
			return "no lastScheduleTime"
		}
		return ""
	})
	assertContains(t, k.ok(t, "describe", "cronjob", "tick"), "SuccessfulCreate", "Created job "+name)
}
