package cronjob

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func newCronJob(schedule string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: "ns", UID: "cj-uid", CreationTimestamp: metav1.NewTime(t0.Add(-30 * time.Second))},
		Spec: batchv1.CronJobSpec{Schedule: schedule, ConcurrencyPolicy: batchv1.AllowConcurrent,
			SuccessfulJobsHistoryLimit: ptr.To[int32](3), FailedJobsHistoryLimit: ptr.To[int32](1),
			JobTemplate: batchv1.JobTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}}},
	}
}

// harness syncs cj once at now against the Jobs given (the cache and the
// API hold the same) and returns the API's Jobs, the CronJob's status, the
// events and the requeue.
func syncOnce(t *testing.T, cj *batchv1.CronJob, now time.Time, jobs ...*batchv1.Job) ([]batchv1.Job, batchv1.CronJobStatus, []string, time.Duration) {
	t.Helper()
	objs := []client.Object{cj}
	for _, j := range jobs {
		objs = append(objs, j)
	}
	cache := crfake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).
		WithIndex(&batchv1.Job{}, jobOwnerIndex, func(o client.Object) []string {
			if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
				return []string{string(ref.UID)}
			}
			return nil
		}).Build()
	core := fake.NewClientset(cj)
	for _, j := range jobs {
		if err := core.Tracker().Add(j); err != nil {
			t.Fatal(err)
		}
	}
	rec := record.NewFakeRecorder(20)
	r := &Reconciler{Client: cache, Core: core, Recorder: rec, Now: func() time.Time { return now }}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "cj"}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := core.BatchV1().Jobs("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := core.BatchV1().CronJobs("ns").Get(context.Background(), "cj", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for len(rec.Events) > 0 {
		evs = append(evs, <-rec.Events)
	}
	return list.Items, got.Status, evs, res.RequeueAfter
}

func childJob(name string, scheduled time.Time, cond batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid"),
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "cj", UID: "cj-uid", Controller: ptr.To(true)}}},
		Status: batchv1.JobStatus{StartTime: &metav1.Time{Time: scheduled}}}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
		if cond == batchv1.JobComplete {
			j.Status.CompletionTime = &metav1.Time{Time: scheduled.Add(time.Second)}
		}
	}
	return j
}

func TestCreatesJobOfScheduleTime(t *testing.T) {
	cj := newCronJob("*/5 * * * *")
	cj.Spec.TimeZone = ptr.To("Europe/Berlin")
	now := t0.Add(90 * time.Second)
	jobs, st, evs, requeue := syncOnce(t, cj, now)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	j := jobs[0]
	// 10:00 UTC is 12:00 in Berlin, a multiple of 5 minutes in both.
	if want := "cj-29631480"; j.Name != want {
		t.Errorf("job name %q, want %q", j.Name, want)
	}
	if ts := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; ts != "2026-05-04T12:00:00+02:00" {
		t.Errorf("scheduled timestamp %q", ts)
	}
	if j.Labels["app"] != "x" || !metav1.IsControlledBy(&j, cj) {
		t.Errorf("job labels %v, owners %v", j.Labels, j.OwnerReferences)
	}
	if st.LastScheduleTime == nil || !st.LastScheduleTime.Time.Equal(t0) || len(st.Active) != 1 || st.Active[0].Name != j.Name || st.Active[0].Kind != "Job" {
		t.Errorf("status %+v", st)
	}
	if len(evs) != 1 || evs[0] != "Normal SuccessfulCreate Created job "+j.Name {
		t.Errorf("events %q", evs)
	}
	// Next at 10:05:00.1.
	if want := t0.Add(5*time.Minute + nextScheduleDelta).Sub(now); requeue != want {
		t.Errorf("requeue after %v, want %v", requeue, want)
	}
}

func TestForbidAndReplace(t *testing.T) {
	prev := t0.Add(-time.Minute)
	running := childJob("cj-old", prev, "")
	for _, policy := range []batchv1.ConcurrencyPolicy{batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent} {
		cj := newCronJob("* * * * *")
		cj.Spec.ConcurrencyPolicy = policy
		cj.Status.LastScheduleTime = &metav1.Time{Time: prev}
		cj.Status.Active = []corev1.ObjectReference{{Kind: "Job", Namespace: "ns", Name: "cj-old", UID: running.UID}}
		jobs, st, evs, _ := syncOnce(t, cj, t0.Add(time.Second), running.DeepCopy())
		switch policy {
		case batchv1.ForbidConcurrent:
			if len(jobs) != 1 || len(st.Active) != 1 || len(evs) != 1 || !strings.Contains(evs[0], "JobAlreadyActive") {
				t.Errorf("Forbid: jobs %d, active %v, events %q", len(jobs), st.Active, evs)
			}
		case batchv1.ReplaceConcurrent:
			if len(jobs) != 1 || jobs[0].Name == "cj-old" || len(st.Active) != 1 || st.Active[0].Name != jobs[0].Name {
				t.Errorf("Replace: jobs %v, active %v", jobs, st.Active)
			}
			if len(evs) != 2 || evs[0] != "Normal SuccessfulDelete Deleted job cj-old" {
				t.Errorf("Replace events %q", evs)
			}
		}
	}
}

func TestHistoryAndCompletedJobs(t *testing.T) {
	cj := newCronJob("0 0 1 1 *")
	var jobs []*batchv1.Job
	for i, c := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobComplete, batchv1.JobComplete, batchv1.JobComplete, batchv1.JobFailed, batchv1.JobFailed} {
		jobs = append(jobs, childJob("cj-"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Minute), c))
	}
	cj.Status.Active = []corev1.ObjectReference{{Kind: "Job", Namespace: "ns", Name: "cj-d", UID: "cj-d-uid"}}
	left, st, evs, _ := syncOnce(t, cj, t0.Add(time.Hour), jobs...)
	var names []string
	for _, j := range left {
		names = append(names, j.Name)
	}
	// The oldest successful (a) and failed (e) go.
	if strings.Join(names, ",") != "cj-b,cj-c,cj-d,cj-f" {
		t.Errorf("jobs left %v", names)
	}
	if len(st.Active) != 0 || st.LastSuccessfulTime == nil || !st.LastSuccessfulTime.Time.Equal(t0.Add(3*time.Minute+time.Second)) {
		t.Errorf("status %+v", st)
	}
	if !strings.Contains(strings.Join(evs, "\n"), "Normal SawCompletedJob Saw completed job: cj-d, condition: Complete") {
		t.Errorf("events %q", evs)
	}
}

func TestStartingDeadlineAndBadSchedule(t *testing.T) {
	cj := newCronJob("0 * * * *")
	cj.Spec.StartingDeadlineSeconds = ptr.To[int64](10)
	if jobs, _, _, _ := syncOnce(t, cj, t0.Add(time.Minute)); len(jobs) != 0 {
		t.Errorf("a Job %v past its starting deadline", jobs[0].Name)
	}
	if jobs, _, _, _ := syncOnce(t, cj, t0.Add(5*time.Second)); len(jobs) != 1 {
		t.Errorf("%d jobs within the starting deadline", len(jobs))
	}
	cj = newCronJob("@every 2m")
	if jobs, _, _, _ := syncOnce(t, cj, t0.Add(2*time.Minute)); len(jobs) != 1 {
		t.Errorf("@every 2m: %d jobs", len(jobs))
	}
	cj = newCronJob("TZ=")
	if _, _, evs, _ := syncOnce(t, cj, t0); !strings.Contains(strings.Join(evs, "\n"), "Warning UnparseableSchedule") {
		t.Errorf("events %q", evs)
	}
}
