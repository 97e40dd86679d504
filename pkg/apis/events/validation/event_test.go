package validation

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateEvent(t *testing.T) {
	e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"},
		EventTime:      metav1.NewMicroTime(time.Now()), Type: corev1.EventTypeWarning,
		ReportingController: "kubelet", ReportingInstance: "node-1", Action: "Pull", Reason: "Failed"}
	if errs := ValidateEvent(e); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	bad := e.DeepCopy()
	bad.EventTime = metav1.MicroTime{}
	bad.Type = "Info"
	errs := ValidateEvent(bad)
	if len(errs) != 2 || errs[0].Field != "eventTime" || errs[1].Field != "type" {
		t.Fatalf("got %v", errs)
	}
	upd := e.DeepCopy()
	upd.Action = "Other"
	if errs := ValidateEventUpdate(upd, e); len(errs) != 1 || errs[0].Field != "action" {
		t.Fatalf("got %v", errs)
	}
}
