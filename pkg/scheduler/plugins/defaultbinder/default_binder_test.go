package defaultbinder

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

func TestBind(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "foo", UID: "uid-1"}}
	tests := []struct {
		name    string
		errs    []error // answers to successive bind calls
		wantErr bool
		calls   int
	}{
		{name: "success", calls: 1},
		{name: "forbidden is not retried", errs: []error{apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "foo", errors.New("no"))}, wantErr: true, calls: 1},
		{name: "internal error retried", errs: []error{apierrors.NewInternalError(errors.New("boom")), nil}, calls: 2},
		{name: "conflict is not retried", errs: []error{apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "foo", errors.New("bound"))}, wantErr: true, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testhandle.New(nil)
			var got []*v1.Binding
			h.Client.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "binding" {
					return false, nil, nil
				}
				got = append(got, a.(clienttesting.CreateAction).GetObject().(*v1.Binding))
				if i := len(got) - 1; i < len(tt.errs) && tt.errs[i] != nil {
					return true, nil, tt.errs[i]
				}
				return true, nil, nil
			})
			p, err := New(context.Background(), nil, h)
			if err != nil {
				t.Fatal(err)
			}
			st := p.(framework.BindPlugin).Bind(context.Background(), framework.NewCycleState(), pod, "node1")
			if (st.Code() == framework.Error) != tt.wantErr || (!tt.wantErr && !st.IsSuccess()) {
				t.Errorf("Bind = %v, want error %v", st, tt.wantErr)
			}
			if len(got) != tt.calls {
				t.Fatalf("%d bind calls, want %d", len(got), tt.calls)
			}
			b := got[0]
			if b.Namespace != "ns" || b.Name != "foo" || b.UID != "uid-1" || b.Target.Kind != "Node" || b.Target.Name != "node1" {
				t.Errorf("binding = %+v", b)
			}
		})
	}
}
