// Command summary reads the JUnit report of a conformance run and prints
// "N passed, M failed, K skipped" with a count per SIG.
//
//	go run ./hack/conformance/summary <junit.xml>
package main

import (
	"encoding/xml"
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

type testCase struct {
	Name    string    `xml:"name,attr"`
	Skipped *struct{} `xml:"skipped"`
	Failure *struct{} `xml:"failure"`
	Error   *struct{} `xml:"error"`
}

type counts struct{ passed, failed, skipped int }

var sigPattern = regexp.MustCompile(`\[(sig-[a-z-]+)\]`)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: summary <junit.xml>")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var report suites
	if err := xml.Unmarshal(data, &report); err != nil {
		// Some reports have a single <testsuite> root.
		var one suite
		if err2 := xml.Unmarshal(data, &one); err2 != nil {
			fmt.Fprintln(os.Stderr, "parsing JUnit report:", err)
			os.Exit(1)
		}
		report.Suites = []suite{one}
	}
	total := counts{}
	bySIG := map[string]*counts{}
	var failed []string
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			if !strings.Contains(c.Name, "[Conformance]") {
				continue
			}
			sig := "other"
			if m := sigPattern.FindStringSubmatch(c.Name); m != nil {
				sig = m[1]
			}
			if bySIG[sig] == nil {
				bySIG[sig] = &counts{}
			}
			switch {
			case c.Skipped != nil:
				total.skipped++
				bySIG[sig].skipped++
			case c.Failure != nil || c.Error != nil:
				total.failed++
				bySIG[sig].failed++
				failed = append(failed, c.Name)
			default:
				total.passed++
				bySIG[sig].passed++
			}
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
	if len(failed) > 0 {
		sort.Strings(failed)
		fmt.Println("\nFailed:")
		for _, name := range failed {
			fmt.Println("  " + name)
		}
	}
	fmt.Printf("\nconformance: %d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped)
}
