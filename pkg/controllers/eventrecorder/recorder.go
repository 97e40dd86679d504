// Package eventrecorder gives a controller its core/v1 event recorder, as
// kube-controller-manager's controllers have: events under the
// controller's component name, written with its own client while the
// manager runs, and logged at -v=3.
package eventrecorder

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// New returns a recorder whose events (source component) reach the API
// through core from the manager's start until it stops.
func New(mgr manager.Manager, core kubernetes.Interface, component string) (record.EventRecorder, error) {
	b := record.NewBroadcaster()
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
	err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		b.StartStructuredLogging(3)
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: core.CoreV1().Events("")})
		<-ctx.Done()
		b.Shutdown()
		return nil
	}))
	return rec, err
}
