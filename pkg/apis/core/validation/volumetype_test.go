package validation

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// Exactly one volume type: none is Required on the source, a second one is
// Forbidden on its own field, and only the first set one is validated.
func TestValidateOneVolumeType(t *testing.T) {
	path := field.NewPath("spec", "volumes").Index(0)
	invalid := func(p *field.Path) field.ErrorList { return field.ErrorList{field.Invalid(p.Child("x"), "", "bad")} }
	cases := []struct {
		name  string
		types []volumeType
		want  []string
	}{
		{"none", []volumeType{{"emptyDir", false, nil}, {"secret", false, nil}}, []string{"Required spec.volumes[0]"}},
		{"one", []volumeType{{"emptyDir", true, nil}, {"secret", false, nil}}, nil},
		{"two", []volumeType{{"emptyDir", true, nil}, {"secret", true, invalid}}, []string{"Forbidden spec.volumes[0].secret"}},
		{"validated", []volumeType{{"emptyDir", false, nil}, {"secret", true, invalid}}, []string{"Invalid spec.volumes[0].secret.x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, validateOneVolumeType(tc.types, path), tc.want...)
		})
	}
}
