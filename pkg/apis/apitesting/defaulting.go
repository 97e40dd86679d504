// Package apitesting holds helpers for the tests of pkg/apis and its
// subpackages: decoding objects as the apiserver does, checking defaulting
// against expected objects, and comparing validation errors. Only tests
// import it.
package apitesting

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// Defaulted decodes doc (YAML or JSON) as the apiserver does: through the
// universal decoder, which runs the scheme's defaulters.
func Defaulted(t testing.TB, doc string) runtime.Object {
	t.Helper()
	return decode(t, apis.Codecs.UniversalDecoder(), doc)
}

// Literal decodes doc without defaulting.
func Literal(t testing.TB, doc string) runtime.Object {
	t.Helper()
	return decode(t, apis.Codecs.UniversalDeserializer(), doc)
}

func decode(t testing.TB, d runtime.Decoder, doc string) runtime.Object {
	t.Helper()
	obj, _, err := d.Decode([]byte(doc), nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return obj
}

// Wire is obj as JSON would carry it, without its apiVersion and kind.
func Wire(t testing.TB, obj runtime.Object) map[string]interface{} {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	return m
}

// DefaultingCase says that decoding In as the apiserver does gives Want
// (decoded without defaulting). Both are YAML or JSON documents.
type DefaultingCase struct {
	Name, In, Want string
}

// Frame is what the documents of a table of DefaultingCases share, so that
// each row shows only what differs: Head comes before each In and Want,
// InTail after each In and WantTail after each Want.
type Frame struct {
	Head, InTail, WantTail string
}

// Cases returns the cases with their documents put in the frame.
func (f Frame) Cases(cases []DefaultingCase) []DefaultingCase {
	out := make([]DefaultingCase, len(cases))
	for i, tc := range cases {
		out[i] = DefaultingCase{Name: tc.Name, In: f.Head + tc.In + f.InTail, Want: f.Head + tc.Want + f.WantTail}
	}
	return out
}

// RunDefaultingCases runs each case as a subtest: the defaulted In must be
// Want on the wire, and defaulting it again must change nothing.
func RunDefaultingCases(t *testing.T, cases []DefaultingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			got := Defaulted(t, tc.In)
			if d := cmp.Diff(Wire(t, Literal(t, tc.Want)), Wire(t, got)); d != "" {
				t.Errorf("defaulted object differs from upstream's (-want +got):\n%s", d)
			}
			ExpectIdempotentDefaulting(t, got)
		})
	}
}

// ExpectIdempotentDefaulting fails t if defaulting a copy of the already
// defaulted obj changes it.
func ExpectIdempotentDefaulting(t testing.TB, obj runtime.Object) {
	t.Helper()
	again := obj.DeepCopyObject()
	apis.Scheme.Default(again)
	if d := cmp.Diff(Wire(t, obj), Wire(t, again)); d != "" {
		t.Errorf("defaulting twice differs from once (-once +twice):\n%s", d)
	}
}

// ExpectDefaultersRegistered checks each sample in a subtest named by its
// kind: defaulting the sample changes it on the wire, and defaulting a list
// of two copies of it defaults each item the same way.
func ExpectDefaultersRegistered(t *testing.T, samples ...runtime.Object) {
	t.Helper()
	for _, sample := range samples {
		gvks, _, err := apis.Scheme.ObjectKinds(sample)
		if err != nil {
			t.Fatal(err)
		}
		gvk := gvks[0]
		t.Run(gvk.Kind, func(t *testing.T) {
			one := sample.DeepCopyObject()
			apis.Scheme.Default(one)
			if d := cmp.Diff(Wire(t, sample), Wire(t, one)); d == "" {
				t.Errorf("%s has no defaulter", gvk.Kind)
			}
			for _, item := range DefaultedListItems(t, sample, 2) {
				if d := cmp.Diff(Wire(t, one), Wire(t, item)); d != "" {
					t.Errorf("%sList does not default its items (-want +got):\n%s", gvk.Kind, d)
				}
			}
		})
	}
}

// DefaultedListItems puts n copies of sample into a new list of its kind
// (<Kind>List), defaults the list and returns its items.
func DefaultedListItems(t testing.TB, sample runtime.Object, n int) []runtime.Object {
	t.Helper()
	gvks, _, err := apis.Scheme.ObjectKinds(sample)
	if err != nil {
		t.Fatal(err)
	}
	list, err := apis.Scheme.New(gvks[0].GroupVersion().WithKind(gvks[0].Kind + "List"))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]runtime.Object, n)
	for i := range items {
		items[i] = sample.DeepCopyObject()
	}
	if err := meta.SetList(list, items); err != nil {
		t.Fatal(err)
	}
	apis.Scheme.Default(list)
	items, err = meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != n {
		t.Fatalf("%sList holds %d items after defaulting, want %d", gvks[0].Kind, len(items), n)
	}
	return items
}
