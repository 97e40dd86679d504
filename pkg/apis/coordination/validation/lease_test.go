package validation

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateLease(t *testing.T) {
	cases := []struct {
		name string
		spec coordinationv1.LeaseSpec
		want []string
	}{
		{"empty", coordinationv1.LeaseSpec{}, nil},
		{"valid", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-1"), LeaseDurationSeconds: ptr.To[int32](40), LeaseTransitions: ptr.To[int32](0)}, nil},
		{"strategy", coordinationv1.LeaseSpec{Strategy: ptr.To(coordinationv1.OldestEmulationVersion), PreferredHolder: ptr.To("a")}, nil},
		{"custom strategy", coordinationv1.LeaseSpec{Strategy: ptr.To[coordinationv1.CoordinatedLeaseStrategy]("example.com/mine")}, nil},
		{"duration", coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr.To[int32](0)}, []string{"Invalid spec.leaseDurationSeconds"}},
		{"transitions", coordinationv1.LeaseSpec{LeaseTransitions: ptr.To[int32](-1)}, []string{"Invalid spec.leaseTransitions"}},
		{"unknown strategy", coordinationv1.LeaseSpec{Strategy: ptr.To[coordinationv1.CoordinatedLeaseStrategy]("Newest")},
			[]string{"NotSupported spec.strategy.strategy"}},
		{"bad qualified strategy", coordinationv1.LeaseSpec{Strategy: ptr.To[coordinationv1.CoordinatedLeaseStrategy]("a/b/c")},
			[]string{"Invalid spec.strategy.strategy"}},
		{"preferred holder without strategy", coordinationv1.LeaseSpec{PreferredHolder: ptr.To("a")}, []string{"Forbidden spec.preferredHolder"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &coordinationv1.Lease{Spec: tc.spec}
			apitesting.ExpectFieldErrors(t, ValidateLease(l), tc.want...)
		})
	}
}
