package differential

// KNOWN.md: the accepted differences, one a line:
//
//	<case>/<op> <json-path-or-*> — <reason>
//
// e.g. "services/basic/create spec.type — defaulting not implemented".
// A leading "- " (a Markdown list) is allowed; lines that do not have this
// shape (headings, prose) are ignored. <case>/<op> may use * within a path
// segment ("services/*/create"). The path covers its subtree:
// "spec.template" also accepts "spec.template.spec.dnsPolicy"; "*" accepts
// every path, and a path ending in * is a prefix.

import (
	"bufio"
	"os"
	"path"
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
		entries = append(entries, &knownEntry{Line: n, CaseOp: m[1], Path: m[2], Reason: m[3]})
	}
	return entries, sc.Err()
}

// matchKnown returns the entry that accepts the difference at diffPath of
// caseOp ("services/basic/create"), or nil.
func matchKnown(entries []*knownEntry, caseOp, diffPath string) *knownEntry {
	for _, e := range entries {
		if ok, _ := path.Match(e.CaseOp, caseOp); ok && pathCovers(e.Path, diffPath) {
			e.used = true
			return e
		}
	}
	return nil
}

func pathCovers(pattern, p string) bool {
	if pattern == "*" || pattern == p {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(p, prefix)
	}
	return strings.HasPrefix(p, pattern+".") || strings.HasPrefix(p, pattern+"[")
}
