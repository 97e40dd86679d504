// Command summary reads the JUnit reports of a conformance run and prints
// "N passed, M failed, K skipped" with a count per SIG, then the failed specs
// with the first line of their failure message.
//
//	go run ./hack/conformance/summary [-results FILE] <junit.xml>...
//
// Several reports (a parallel pass and a serial pass) are merged by spec
// name: a spec that ran in any of them counts with that result (a failure
// wins over a pass), a spec is skipped only if every report skipped it.
// -results writes one line per spec: "passed|failed|skipped<TAB>name<TAB>message".
package main

import (
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

type suites struct {
	Suites []suite `xml:"testsuite"`
}

type suite struct {
	Cases []testCase `xml:"testcase"`
}

type message struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

type testCase struct {
	Name    string   `xml:"name,attr"`
	Skipped *message `xml:"skipped"`
	Failure *message `xml:"failure"`
	Error   *message `xml:"error"`
}

type state int

const (
	skipped state = iota
	passed
	failed
)

func (s state) String() string { return [...]string{"skipped", "passed", "failed"}[s] }

type result struct {
	state   state
	message string
}

type counts struct{ passed, failed, skipped int }

var sigPattern = regexp.MustCompile(`\[(sig-[a-z-]+)\]`)

func main() {
	resultsFile := flag.String("results", "", "write one line per spec (state, name, message) to this file")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: summary [-results FILE] <junit.xml>...") }
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	results := map[string]result{}
	for _, file := range flag.Args() {
		if err := read(file, results); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}

	names := make([]string, 0, len(results))
	for name := range results {
		names = append(names, name)
	}
	sort.Strings(names)
	total := counts{}
	bySIG := map[string]*counts{}
	var failedNames []string
	for _, name := range names {
		sig := "other"
		if m := sigPattern.FindStringSubmatch(name); m != nil {
			sig = m[1]
		}
		if bySIG[sig] == nil {
			bySIG[sig] = &counts{}
		}
		switch results[name].state {
		case skipped:
			total.skipped++
			bySIG[sig].skipped++
		case failed:
			total.failed++
			bySIG[sig].failed++
			failedNames = append(failedNames, name)
		default:
			total.passed++
			bySIG[sig].passed++
		}
	}
	if *resultsFile != "" {
		var b strings.Builder
		for _, name := range names {
			r := results[name]
			fmt.Fprintf(&b, "%s\t%s\t%s\n", r.state, name, r.message)
		}
		if err := os.WriteFile(*resultsFile, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}

	sigs := make([]string, 0, len(bySIG))
	for sig := range bySIG {
		sigs = append(sigs, sig)
	}
	sort.Strings(sigs)
	fmt.Println("| SIG | passed | failed | skipped |")
	fmt.Println("|---|---|---|---|")
	for _, sig := range sigs {
		c := bySIG[sig]
		fmt.Printf("| %s | %d | %d | %d |\n", sig, c.passed, c.failed, c.skipped)
	}
	if len(failedNames) > 0 {
		fmt.Println("\nFailed:")
		for _, name := range failedNames {
			fmt.Println("  " + name)
			if m := results[name].message; m != "" {
				fmt.Println("      " + m)
			}
		}
	}
	fmt.Printf("\nconformance: %d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped)
}

// read adds the [Conformance] specs of one JUnit report to results.
func read(file string, results map[string]result) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var report suites
	if err := xml.Unmarshal(data, &report); err != nil || len(report.Suites) == 0 {
		// Some reports have a single <testsuite> root.
		var one suite
		if err2 := xml.Unmarshal(data, &one); err2 != nil {
			return fmt.Errorf("parsing JUnit report %s: %v", file, err)
		}
		report.Suites = []suite{one}
	}
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			// Ginkgo names a case "[It] <text>" unless the leaf node type is omitted.
			name := strings.TrimPrefix(c.Name, "[It] ")
			if !strings.Contains(name, "[Conformance]") {
				continue
			}
			r := result{state: passed}
			switch {
			case c.Failure != nil:
				r = result{state: failed, message: firstLine(c.Failure)}
			case c.Error != nil:
				r = result{state: failed, message: firstLine(c.Error)}
			case c.Skipped != nil:
				r = result{state: skipped, message: firstLine(c.Skipped)}
			}
			if old, ok := results[name]; !ok || r.state > old.state {
				results[name] = r
			}
		}
	}
	return nil
}

// firstLine is the first non-empty line of a failure (or skip) message, or
// of its body when the message attribute is empty, cut to 300 bytes.
func firstLine(m *message) string {
	for _, text := range []string{m.Message, m.Body} {
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line == "skipped" {
				continue
			}
			if len(line) > 300 {
				line = line[:300] + "..."
			}
			return line
		}
	}
	return ""
}
