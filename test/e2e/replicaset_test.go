package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const rsWebYAML = `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web, tier: front}
      annotations: {example.com/from: template}
    spec:
      containers:
      - {name: nginx, image: nginx}
`

const rsAdoptYAML = `
apiVersion: v1
kind: Pod
metadata:
  name: stray
  labels: {app: adopt}
spec:
  containers:
  - {name: nginx, image: nginx}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: adopt}
spec:
  replicas: 2
  selector: {matchLabels: {app: adopt}}
  template:
    metadata: {labels: {app: adopt}}
    spec:
      containers:
      - {name: nginx, image: nginx}
`

const rcYAML = `
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  selector: {app: legacy}
  template:
    metadata: {labels: {app: legacy}}
    spec:
      containers:
      - {name: nginx, image: nginx}
`

var rsPodName = regexp.MustCompile(`^web-[a-z0-9]{5}$`)

// TestReplicaSetController: with skiff server and three simulated nodes,
// through stock kubectl: a ReplicaSet of 3 is 3/3/3 Ready with pods named
// web-<5 chars> that it controls; scaled to 5 and back to 2, the newest
// (ready the shortest) pods go; a pod relabelled away is released and
// replaced; an orphan matching a selector is adopted; a
// ReplicationController of 2 is 2/2/2 and scales down.
func TestReplicaSetController(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "3")
	k := newKctl(t, firstKubectl(t), srv)
	eventually(t, 30*time.Second, func() string {
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 3 {
			return "nodes:\n" + out
		}
		return ""
	})

	k.okStdin(t, rsWebYAML, "apply", "-f", "-")
	waitRS(t, k, "rs", "web", "3", "3", "3")
	original := rsPods(t, k, "app=web")
	for _, p := range original {
		if !rsPodName.MatchString(p) {
			t.Errorf("pod %q is not named web-<5 chars>", p)
		}
	}
	owner := k.jsonpath(t, `{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion}|{.metadata.labels.tier}|{.metadata.annotations.example\.com/from}`, "pod", original[0])
	assertEqual(t, "owner|label|annotation of "+original[0], owner, "ReplicaSet/web/true/true|front|template")
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "reason=SuccessfulCreate,involvedObject.name=web", "-o", `jsonpath={range .items[*]}{.source.component}: {.message}{"\n"}{end}`)
		for _, p := range original {
			if !strings.Contains(out, "replicaset-controller: Created pod: "+p) {
				return "SuccessfulCreate events:\n" + out
			}
		}
		return ""
	})
	out := k.ok(t, "describe", "rs", "web")
	assertMatches(t, out, `Replicas:\s+3 current / 3 desired`, `Pods Status:\s+3 Running / 0 Waiting / 0 Succeeded / 0 Failed`)

	// The pods added are ready later than the first three: on the way
	// down they are deleted first (their readiness is younger on upstream's
	// logarithmic scale).
	time.Sleep(4 * time.Second)
	k.ok(t, "scale", "rs", "web", "--replicas=5")
	waitRS(t, k, "rs", "web", "5", "5", "5")
	k.ok(t, "scale", "rs", "web", "--replicas=2")
	waitRS(t, k, "rs", "web", "2", "2", "2")
	var left []string
	eventually(t, 20*time.Second, func() string {
		if left = rsPods(t, k, "app=web"); len(left) != 2 {
			return fmt.Sprintf("pods %v", left)
		}
		return ""
	})
	for _, p := range left {
		if !slices.Contains(original, p) {
			t.Errorf("after scaling 5 -> 2, %s is left: one of the two added last, want two of the first %v", p, original)
		}
	}
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "reason=SuccessfulDelete,involvedObject.name=web", "-o", `jsonpath={range .items[*]}{.message}{"\n"}{end}`)
		if strings.Count(out, "Deleted pod: web-") != 3 {
			return "SuccessfulDelete events:\n" + out
		}
		return ""
	})

	// Relabelled away: released, and replaced.
	k.ok(t, "label", "pod", left[0], "app=debug", "--overwrite")
	eventually(t, 20*time.Second, func() string {
		if refs := k.jsonpath(t, "{.metadata.ownerReferences}", "pod", left[0]); refs != "" {
			return "the relabelled pod's ownerReferences: " + refs
		}
		pods := rsPods(t, k, "app=web")
		if len(pods) != 2 || slices.Contains(pods, left[0]) {
			return fmt.Sprintf("pods of web: %v", pods)
		}
		return ""
	})
	waitRS(t, k, "rs", "web", "2", "2", "2")

	// An orphan the selector matches is adopted.
	k.okStdin(t, rsAdoptYAML, "apply", "-f", "-")
	waitRS(t, k, "rs", "adopt", "2", "2", "2")
	assertEqual(t, "the orphan's controller", k.jsonpath(t, "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}", "pod", "stray"), "ReplicaSet/adopt/true")
	if pods := rsPods(t, k, "app=adopt"); len(pods) != 2 || !slices.Contains(pods, "stray") {
		t.Errorf("pods of adopt: %v, want stray and one more", pods)
	}

	// A ReplicationController.
	k.okStdin(t, rcYAML, "apply", "-f", "-")
	waitRS(t, k, "rc", "legacy", "2", "2", "2")
	pods := rsPods(t, k, "app=legacy")
	assertEqual(t, "controller of "+pods[0], k.jsonpath(t, "{.metadata.ownerReferences[0].apiVersion}/{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}", "pod", pods[0]), "v1/ReplicationController/legacy")
	k.ok(t, "scale", "rc", "legacy", "--replicas=1")
	waitRS(t, k, "rc", "legacy", "1", "1", "1")
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "involvedObject.kind=ReplicationController,involvedObject.name=legacy", "-o", `jsonpath={range .items[*]}{.source.component}|{.reason}|{.message}{"\n"}{end}`)
		if strings.Count(out, "replication-controller|SuccessfulCreate|Created pod: legacy-") != 2 || strings.Count(out, "replication-controller|SuccessfulDelete|Deleted pod: legacy-") != 1 {
			return "events of the RC:\n" + out
		}
		return ""
	})
}

// waitRS waits for `kubectl get <kind> <name>` to show DESIRED, CURRENT and
// READY.
func waitRS(t *testing.T, k *kctl, kind, name, desired, current, ready string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		out := k.ok(t, "get", kind, name)
		assertHeaders(t, out, "NAME DESIRED CURRENT READY AGE")
		if row := tableRow(out, name); len(row) < 4 || row[1] != desired || row[2] != current || row[3] != ready {
			return fmt.Sprintf("want %s/%s/%s:\n%s", desired, current, ready, out)
		}
		return ""
	})
}

// rsPods are the names of the pods the selector matches that are not being
// deleted, sorted.
func rsPods(t *testing.T, k *kctl, selector string) []string {
	t.Helper()
	out := k.jsonpath(t, `{range .items[?(@.metadata.deletionTimestamp)]}-{.metadata.name} {end}{range .items[*]}{.metadata.name} {end}`, "pods", "-l", selector)
	var names []string
	deleting := map[string]bool{}
	for _, f := range strings.Fields(out) {
		if n, ok := strings.CutPrefix(f, "-"); ok {
			deleting[n] = true
		} else if !deleting[f] {
			names = append(names, f)
		}
	}
	slices.Sort(names)
	return names
}
