package apitesting

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FieldErrors renders errs as sorted "<Type> <field>" strings, the type
// without its "FieldValue" prefix: "Required spec.containers",
// "Invalid metadata.name", "NotSupported spec.type".
func FieldErrors(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, strings.TrimPrefix(string(e.Type), "FieldValue")+" "+e.Field)
	}
	slices.Sort(out)
	return out
}

// ExpectFieldErrors fails t unless errs are exactly want, in any order, as
// FieldErrors renders them. No want means no errors.
func ExpectFieldErrors(t testing.TB, errs field.ErrorList, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	if got := FieldErrors(errs); !slices.Equal(got, want) {
		t.Errorf("errors:\n got  %q\n want %q\n%v", got, want, errs)
	}
}

// ExpectErrorDetail fails t unless the message of one of errs contains
// substr.
func ExpectErrorDetail(t testing.TB, errs field.ErrorList, substr string) {
	t.Helper()
	for _, e := range errs {
		if strings.Contains(e.Error(), substr) {
			return
		}
	}
	t.Errorf("no error mentions %q: %v", substr, errs)
}
