package printers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Placeholders used by upstream for empty cells.
const (
	none    = "<none>"
	unknown = "<unknown>"
	unset   = "<unset>"
)

// now is the clock used for ages; tests may replace it.
var now = time.Now

var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

// Column helpers. Upstream column names are title case ("Name", "Age");
// kubectl upper-cases them when printing.

func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wideColumn is a priority-1 column, shown only by `kubectl get -o wide`.
func wideColumn(name, typ, description string) metav1.TableColumnDefinition {
	c := column(name, typ, description)
	c.Priority = 1
	return c
}

func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
}

func ageColumn() metav1.TableColumnDefinition {
	return column("Age", "string", objectMetaDoc["creationTimestamp"])
}

// templateColumns are the wide CONTAINERS and IMAGES columns of workloads,
// followed by SELECTOR when selectorDescription is not empty.
func templateColumns(selectorDescription string) []metav1.TableColumnDefinition {
	cols := []metav1.TableColumnDefinition{
		wideColumn("Containers", "string", "Names of each container in the template."),
		wideColumn("Images", "string", "Images referenced by each container in the template."),
	}
	if selectorDescription != "" {
		cols = append(cols, wideColumn("Selector", "string", selectorDescription))
	}
	return cols
}

// columns concatenates column groups.
func columns(groups ...[]metav1.TableColumnDefinition) []metav1.TableColumnDefinition {
	var out []metav1.TableColumnDefinition
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// cols turns single column definitions into a group for columns().
func cols(c ...metav1.TableColumnDefinition) []metav1.TableColumnDefinition { return c }

// Cell helpers.

// age formats the time elapsed since t like upstream's translateTimestampSince.
func age(t metav1.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now().Sub(t.Time))
}

func microAge(t metav1.MicroTime) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now().Sub(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func boolPtrString(b *bool) string {
	switch {
	case b == nil:
		return unset
	case *b:
		return "True"
	default:
		return "False"
	}
}

// containerCells lays out container names and images on one line each.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	i := make([]string, len(containers))
	for idx, c := range containers {
		n[idx], i[idx] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

// templateCells returns the wide CONTAINERS, IMAGES (and SELECTOR) cells.
func templateCells(spec *corev1.PodTemplateSpec, selector ...string) []any {
	var containers []corev1.Container
	if spec != nil {
		containers = spec.Spec.Containers
	}
	names, images := containerCells(containers)
	cells := []any{names, images}
	for _, s := range selector {
		cells = append(cells, s)
	}
	return cells
}

// truncatedList joins the first max entries of a list, appending
// " + N more..." when the list was longer, or "<unset>" when it was empty.
type truncatedList struct {
	max, count int
	items      []string
}

func (l *truncatedList) add(s string) {
	if len(l.items) < l.max {
		l.items = append(l.items, s)
	}
	l.count++
}

func (l *truncatedList) String() string {
	ret := strings.Join(l.items, ",")
	if l.count > l.max {
		return fmt.Sprintf("%s + %d more...", ret, l.count-l.max)
	}
	if ret == "" {
		return unset
	}
	return ret
}
