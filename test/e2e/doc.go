// Package e2e holds skiff's end-to-end tests: they build the skiff binary,
// run real `skiff server` processes and drive them with stock kubectl
// binaries (every kubectl found, see findKubectls) and with client-go.
//
// Run them with
//
//	go test ./test/e2e/ -v -timeout 20m
//
// Useful knobs:
//
//	SKIFF_BIN=/path/to/skiff     use a prebuilt skiff instead of building one
//	KUBECTL=/a/kubectl,/b/kubectl (or -kubectl=...) test only these kubectls
//
// hack/build-kubectl.sh builds the kubectl matching the served API version
// into $HOME/.cache/skiff/kubectl/; it is picked up automatically.
package e2e
