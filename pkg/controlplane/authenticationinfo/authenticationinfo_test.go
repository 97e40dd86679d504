package authenticationinfo

import (
	"os"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/pkg/pki"
)

// The published bundle keeps every server's CA once, the caller's first.
func TestCombineCABundles(t *testing.T) {
	var cas []string
	for i := 0; i < 2; i++ {
		ca, err := pki.EnsureCA(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(ca.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, strings.TrimSpace(string(data)))
	}
	got := combineCABundles(cas[0]+"\n", cas[1]+"\n"+cas[0]+"\n")
	if want := cas[0] + "\n" + cas[1] + "\n"; got != want {
		t.Errorf("combined bundle\n%s\nwant\n%s", got, want)
	}
	if got := combineCABundles(cas[0], "garbage"); got != cas[0]+"\n" {
		t.Errorf("with a broken existing bundle: %q", got)
	}
}
