package differential

// KNOWN.md: the accepted differences, one a line:
//
//	<case>/<op> <json-path> — <reason>
//
// e.g. "services/basic/create spec.type — defaulting not implemented".
// A leading "- " (a Markdown list) is allowed; lines that do not have this
// shape (headings, prose) are ignored. No wildcards: each entry names one
// op of one case and one path, which covers its subtree ("spec.template"
// also accepts "spec.template.spec.dnsPolicy"), so a new difference never
// hides behind an old entry. A reason starting "DEBT:" is a missing
// feature, not an accepted difference: the summary counts them.

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

type knownEntry struct {
	Line   int
	CaseOp string // pattern on "<case>/<op>"
	Path   string
	Reason string
	used   bool
}

var knownLine = regexp.MustCompile(`^(?:[-*] )?(\S+/\S+) (\S+) +(?:—|--) +(.+)$`)

func loadKnown(file string) ([]*knownEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var entries []*knownEntry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		m := knownLine.FindStringSubmatch(strings.TrimRight(sc.Text(), " \t"))
		if m == nil {
			continue
		}
		if strings.Contains(m[1]+m[2], "*") {
			return nil, fmt.Errorf("%s:%d: no wildcards; name each op and path: %s", file, n, sc.Text())
		}
		entries = append(entries, &knownEntry{Line: n, CaseOp: m[1], Path: m[2], Reason: m[3]})
	}
	return entries, sc.Err()
}

// matchKnown returns the entry that accepts the difference at diffPath of
// caseOp ("services/basic/create"), or nil.
func matchKnown(entries []*knownEntry, caseOp, diffPath string) *knownEntry {
	for _, e := range entries {
		if e.CaseOp == caseOp && pathCovers(e.Path, diffPath) {
			e.used = true
			return e
		}
	}
	return nil
}

// Debt: the entry stands for a missing feature.
func (e *knownEntry) Debt() bool { return strings.HasPrefix(e.Reason, "DEBT:") }

func pathCovers(pattern, p string) bool {
	if pattern == p {
		return true
	}
	return strings.HasPrefix(p, pattern+".") || strings.HasPrefix(p, pattern+"[")
}
