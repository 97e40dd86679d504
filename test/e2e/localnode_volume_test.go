package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// testVolumes: configMap, secret, downwardAPI and projected volumes (and
// the service account's token volume) have their content with the modes
// asked (defaultMode, items' mode), and follow changes of their objects.
func (ln *localNode) testVolumes(t *testing.T) {
	// Modes in decimal: 256 = 0400, 288 = 0440, 384 = 0600.
	ln.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: one, b: two}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {user: admin}
---
apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels: {tier: one}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: [sleep, "3600"]
    resources: {limits: {cpu: 500m, memory: 64Mi}}
    volumeMounts:
    - {name: cm, mountPath: /cm}
    - {name: cmitems, mountPath: /cmi}
    - {name: sec, mountPath: /sec}
    - {name: dapi, mountPath: /dapi}
    - {name: proj, mountPath: /proj}
  volumes:
  - name: cm
    configMap: {name: cfg, defaultMode: 256}
  - name: cmitems
    configMap: {name: cfg, items: [{key: a, path: sub/x, mode: 384}]}
  - name: sec
    secret: {secretName: sec, defaultMode: 288}
  - name: dapi
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}, mode: 384}
  - name: proj
    projected:
      defaultMode: 288
      sources:
      - configMap: {name: cfg, items: [{key: a, path: cm-a}]}
      - secret: {name: sec, items: [{key: user, path: sec-user, mode: 256}]}
      - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
`, nodeimages.BusyboxImage))
	t.Cleanup(func() { ln.k.run("delete", "pod", "vols", "--wait=false") })
	ln.waitPod(t, "vols", 60*time.Second, podAllReady)

	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	want := map[string]struct{ mode, content string }{
		"/cm/a":          {"400", "one"},
		"/cm/b":          {"400", "two"},
		"/cmi/sub/x":     {"600", "one"},
		"/sec/user":      {"440", "admin"},
		"/dapi/labels":   {"644", `tier="one"`},
		"/dapi/name":     {"644", "vols"},
		"/dapi/cpu":      {"600", "500"},
		"/proj/cm-a":     {"440", "one"},
		"/proj/sec-user": {"400", "admin"},
		"/proj/ns":       {"440", ln.k.ns},
		"/proj/token":    {"440", "eyJ"},
		sa + "token":     {"644", "eyJ"},
		sa + "namespace": {"644", ln.k.ns},
		sa + "ca.crt":    {"644", "-----BEGIN CERTIFICATE-----"},
	}
	files := ln.volumeFiles(t, want)
	for path, w := range want {
		got := files[path]
		if got.mode != w.mode || !strings.HasPrefix(got.content, w.content) {
			t.Errorf("%s: mode %s, content %q; want mode %s, content %q", path, got.mode, got.content, w.mode, w.content)
		}
	}
	if ls := ln.k.ok(t, "exec", "vols", "--", "ls", "/cmi"); ls != "sub" {
		t.Errorf("configMap volume with items: ls shows %q, want only the items' paths (sub)", ls)
	}

	// Changes of the objects show within the agent's refresh period
	// (10 s), atomically and with the same modes; a change of the pod's
	// labels as well.
	ln.k.ok(t, "patch", "configmap", "cfg", "--type=merge", "-p", `{"data":{"a":"uno"}}`)
	ln.k.ok(t, "patch", "secret", "sec", "--type=merge", "-p", `{"stringData":{"user":"root"}}`)
	ln.waitVolumeFiles(t, 30*time.Second, map[string]struct{ mode, content string }{
		"/cm/a":          {"400", "uno"},
		"/cm/b":          {"400", "two"},
		"/cmi/sub/x":     {"600", "uno"},
		"/proj/cm-a":     {"440", "uno"},
		"/sec/user":      {"440", "root"},
		"/proj/sec-user": {"400", "root"},
	})
	ln.k.ok(t, "label", "pod", "vols", "tier=two", "--overwrite")
	ln.waitVolumeFiles(t, 30*time.Second, map[string]struct{ mode, content string }{
		"/dapi/labels": {"644", `tier="two"`},
	})
}

// waitVolumeFiles waits until the files of pod vols have the modes and
// contents wanted.
func (ln *localNode) waitVolumeFiles(t *testing.T, timeout time.Duration, want map[string]struct{ mode, content string }) {
	t.Helper()
	start := time.Now()
	eventually(t, timeout, func() string {
		files := ln.volumeFiles(t, want)
		for path, w := range want {
			if got := files[path]; got.mode != w.mode || got.content != w.content {
				return fmt.Sprintf("%s: mode %s, content %q; want mode %s, content %q", path, got.mode, got.content, w.mode, w.content)
			}
		}
		return ""
	})
	t.Logf("volumes updated %s after the change", time.Since(start).Round(100*time.Millisecond))
}

type volumeFile struct{ mode, content string }

// volumeFiles reads the mode (of the file a symlink points to) and the
// first line of each file in pod vols.
func (ln *localNode) volumeFiles(t *testing.T, paths map[string]struct{ mode, content string }) map[string]volumeFile {
	t.Helper()
	var list []string
	for p := range paths {
		list = append(list, p)
	}
	script := `for f in "$@"; do echo "$f $(stat -L -c %a "$f") $(head -n 1 "$f")"; done`
	out := ln.k.ok(t, append([]string{"exec", "vols", "--", "sh", "-c", script, "sh"}, list...)...)
	files := map[string]volumeFile{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) == 3 {
			files[f[0]] = volumeFile{mode: f[1], content: f[2]}
		}
	}
	return files
}
