package validation

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func expectErrors(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	got := make([]string, 0, len(errs))
	for _, e := range errs {
		got = append(got, strings.TrimPrefix(string(e.Type), "FieldValue")+" "+e.Field)
	}
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("errors:\n got  %q\n want %q\n%v", got, want, errs)
	}
}

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
			expectErrors(t, ValidateLease(l), tc.want...)
		})
	}
}
