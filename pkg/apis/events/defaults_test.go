package events_test

import (
	"testing"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// events.k8s.io/v1 Events, like core/v1 ones, have no defaulters upstream.
func TestEventsAreNotDefaulted(t *testing.T) {
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{
		Name: "events.k8s.io/v1",
		In: `
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: e, namespace: ns}
eventTime: "2026-01-02T03:04:05.000000Z"
regarding: {kind: Pod, name: p, namespace: ns}
reason: Started
action: Start
type: Normal
reportingController: kubelet
reportingInstance: node-1
`,
		// The universal decoder gives the internal (core) Event.
		Want: `
apiVersion: v1
kind: Event
metadata: {name: e, namespace: ns}
eventTime: "2026-01-02T03:04:05.000000Z"
involvedObject: {kind: Pod, name: p, namespace: ns}
reason: Started
action: Start
type: Normal
reportingComponent: kubelet
reportingInstance: node-1
source: {}
firstTimestamp: null
lastTimestamp: null
`,
	}})
}
