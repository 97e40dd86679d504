package batch

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Labels upstream puts on a Job's pods to select them by the Job's UID.
const (
	controllerUIDLabel       = "batch.kubernetes.io/controller-uid"
	jobNameLabel             = "batch.kubernetes.io/job-name"
	legacyControllerUIDLabel = "controller-uid"
	legacyJobNameLabel       = "job-name"
)

// prepareJobForCreate clears the status and, unless the Job chose its own
// selector (manualSelector), generates the selector from the Job's UID and
// labels the pod template to match, as upstream's strategy does.
func prepareJobForCreate(obj runtime.Object) {
	job := obj.(*batchv1.Job)
	if job.Spec.ManualSelector != nil && *job.Spec.ManualSelector {
		return
	}
	uid := string(job.UID)
	if job.Spec.Template.Labels == nil {
		job.Spec.Template.Labels = map[string]string{}
	}
	labels := job.Spec.Template.Labels
	for key, value := range map[string]string{
		controllerUIDLabel: uid, jobNameLabel: job.Name,
		legacyControllerUIDLabel: uid, legacyJobNameLabel: job.Name,
	} {
		if _, set := labels[key]; !set {
			labels[key] = value
		}
	}
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{controllerUIDLabel: uid}}
	}
}
