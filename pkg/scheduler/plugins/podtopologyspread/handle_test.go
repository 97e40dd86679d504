package podtopologyspread

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

// newFakeHandle: a test Handle over nodes whose listers hold objs
// (Services, ReplicationControllers, ReplicaSets, StatefulSets), put
// straight into the informers' indexers.
func newFakeHandle(nodes []*framework.NodeInfo, objs ...runtime.Object) *testhandle.Handle {
	h := testhandle.New(nodes)
	f := h.Informers
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *v1.Service:
			err = f.Core().V1().Services().Informer().GetIndexer().Add(o)
		case *v1.ReplicationController:
			err = f.Core().V1().ReplicationControllers().Informer().GetIndexer().Add(o)
		case *appsv1.ReplicaSet:
			err = f.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *appsv1.StatefulSet:
			err = f.Apps().V1().StatefulSets().Informer().GetIndexer().Add(o)
		default:
			err = fmt.Errorf("unexpected %T", o)
		}
		if err != nil {
			panic(err)
		}
	}
	return h
}
