// Package differential compares skiff with upstream kube-apiserver v1.37.2:
// TestDifferential starts both (test/harness), sends each case of the corpus
// in testdata/<type>/<case>.yaml to both servers — the same requests, in the
// same fresh namespace per type — and compares the answers after
// normalising what each server chooses by itself (uids, resourceVersions,
// timestamps, generated names, allocated cluster IPs and node ports).
// Successes are compared field by field, errors by status code, reason and
// the set of details.causes[].field.
//
// KNOWN.md lists the accepted differences; any other difference fails the
// test. At the end the test prints a table per type: cases, ops, differing
// ops, known, unknown.
//
// The test skips unless hack/upstream.sh has built kube-apiserver. Run it
// with hack/differential.sh, or
//
//	go test -count=1 -v ./test/differential/
//
// DIFF_REPORT=<file> writes every difference found, one line each in
// KNOWN.md form, for triage; DIFF_TRACE=<file> writes every op with both
// answers' status codes. The case format is described in corpus_test.go.
package differential
