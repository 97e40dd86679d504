package simulated

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseBehaviour(t *testing.T) {
	b, problems := parseBehaviour(map[string]string{
		AnnotationReady: "false", AnnotationExitAfter: "5s", AnnotationExitCode: "3", AnnotationUsage: "cpu=250m,memory=64Mi",
	})
	if len(problems) > 0 || b.ready || b.exitAfter != 5*time.Second || b.exitCode != 3 ||
		b.usage.Cpu().MilliValue() != 250 || b.usage.Memory().Value() != 64<<20 {
		t.Errorf("parsed %+v %v", b, problems)
	}
	b, problems = parseBehaviour(nil)
	if len(problems) > 0 || !b.ready || b.exitAfter != 0 || b.exitCode != 0 || b.usage != nil {
		t.Errorf("defaults %+v %v", b, problems)
	}
	b, problems = parseBehaviour(map[string]string{
		AnnotationReady: "maybe", AnnotationExitAfter: "-1s", AnnotationExitCode: "300", AnnotationUsage: "cpu=lots",
	})
	if len(problems) != 4 || !b.ready || b.exitAfter != 0 || b.exitCode != 0 || b.usage != nil {
		t.Errorf("bad values: %+v %v", b, problems)
	}
	if !strings.Contains(problems[0], `annotation skiff.dev/sim-ready: "maybe"`) || !strings.HasSuffix(problems[1], "using never exit") {
		t.Errorf("problems %q", problems)
	}
	if _, problems = parseBehaviour(map[string]string{AnnotationExitAfter: "soon"}); len(problems) != 1 {
		t.Errorf("unparsable duration: %v", problems)
	}
}

func TestReady(t *testing.T) {
	for v, want := range map[string]bool{"false": false, "true": true, "": true, "junk": true} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationReady: v}}}
		if got := Ready(pod, "c"); got != want {
			t.Errorf("%q: %v", v, got)
		}
	}
}
