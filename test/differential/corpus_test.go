package differential

// The corpus: testdata/<type>/<case>.yaml, one case per file. <type> is the
// resource as kubectl names it (pods, deployments.apps, leases.coordination.k8s.io);
// the case is "<type>/<file name without .yaml>".
//
// A case file:
//
//	object:            # the object to create (metadata.namespace is set by the test;
//	                   # ${NAMESPACE} anywhere in the file is replaced by it)
//	  apiVersion: v1
//	  kind: Service
//	  ...
//	expect: invalid    # optional: upstream must reject the create; the ops default to [dryrun, create]
//	update: {...}      # optional arguments of the ops of the same name, replacing
//	status: {...}      #   their defaults (see defaultArgs); e.g. update: a JSON merge
//	patch-json: [...]  #   patch the test applies to the object it read before the PUT
//	delete: Foreground
//	ops: [create, get, {update: {...}}, delete]   # optional: a sequence other than the default one
//	                   # (deletecollection, with a label selector as argument, only here;
//	                   # so are the subresources: {scale: 3} PUTs /scale with spec.replicas 3,
//	                   # {binding: node-1} POSTs /binding, eviction POSTs /eviction, its
//	                   # argument the deleteOptions)
//
// The default sequence of a valid case is
//
//	dryrun create get update patch-json patch-merge patch-strategic apply [status] delete get
//
// (status only where the type has /status). An op that appears again is
// named "<op>#2", "<op>#3", ...: the final get is "get#2".

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Case is one corpus file.
type Case struct {
	Name    string         // "<type>/<file>"
	Type    string         // the directory: "services", "deployments.apps"
	Object  map[string]any // what create sends
	Invalid bool           // expect: invalid
	Ops     []Op
}

// Op is one step of a case, sent alike to both servers.
type Op struct {
	ID   string // "update", "get#2"
	Kind string // one of opKinds
	Arg  any    // the op's argument (a patch, a policy), nil for none
}

// opKinds are the ops a case may use.
var opKinds = []string{"dryrun", "create", "get", "update", "patch-json", "patch-merge", "patch-strategic", "apply", "status", "delete", "deletecollection",
	"scale", "binding", "eviction"}

// defaultArgs are the arguments of ops the case file does not give: small
// metadata changes every type accepts.
var defaultArgs = map[string]any{
	"update":          map[string]any{"metadata": map[string]any{"labels": map[string]any{"diff-updated": "true"}}},
	"patch-json":      []any{map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]any{"diff-json": "true"}}},
	"patch-merge":     map[string]any{"metadata": map[string]any{"annotations": map[string]any{"diff-merge": "true"}}},
	"patch-strategic": map[string]any{"metadata": map[string]any{"labels": map[string]any{"diff-strategic": "true"}}},
	// apply: the test sends apiVersion, kind and metadata.name(space) with this merged in.
	"apply": map[string]any{"metadata": map[string]any{"labels": map[string]any{"diff-applied": "true"}}},
	// status: nil is a PUT to /status of the object as read.
	// delete: "" sends no propagationPolicy.
	// deletecollection: a label selector (required: the test will not empty a whole collection).
}

// namespaceFor names the namespace of the cases of a type: the same on both
// servers, fresh for each run.
func namespaceFor(typ string) string {
	ns := "diff-" + strings.ReplaceAll(typ, ".", "-")
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	return ns
}

// loadCorpus reads every testdata/<type>/*.yaml. hasStatus tells whether a
// type ("services") has a /status subresource.
func loadCorpus(dir string, hasStatus func(typ string) bool) ([]*Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var cases []*Case
	for _, file := range files {
		c, err := loadCase(file, hasStatus)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func loadCase(file string, hasStatus func(string) bool) (*Case, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	typ := filepath.Base(filepath.Dir(file))
	data = []byte(strings.ReplaceAll(string(data), "${NAMESPACE}", namespaceFor(typ)))
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	c := &Case{Name: typ + "/" + strings.TrimSuffix(filepath.Base(file), ".yaml"), Type: typ}
	args := map[string]any{}
	for k, v := range raw {
		switch {
		case k == "object":
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("object is not a map")
			}
			c.Object = obj
		case k == "expect":
			if v != "invalid" && v != "valid" {
				return nil, fmt.Errorf("expect: %v, want valid or invalid", v)
			}
			c.Invalid = v == "invalid"
		case k == "ops":
		case slices.Contains(opKinds, k):
			args[k] = v
		default:
			return nil, fmt.Errorf("unknown key %q", k)
		}
	}
	if c.Object == nil {
		return nil, fmt.Errorf("no object")
	}

	var seq []any
	switch ops, ok := raw["ops"]; {
	case ok:
		if seq, ok = ops.([]any); !ok {
			return nil, fmt.Errorf("ops is not a list")
		}
	case c.Invalid:
		seq = []any{"dryrun", "create"}
	default:
		seq = []any{"dryrun", "create", "get", "update", "patch-json", "patch-merge", "patch-strategic", "apply"}
		if hasStatus(typ) {
			seq = append(seq, "status")
		}
		seq = append(seq, "delete", "get")
	}
	seen := map[string]int{}
	for _, entry := range seq {
		var op Op
		switch e := entry.(type) {
		case string:
			op.Kind = e
			if a, ok := args[e]; ok {
				op.Arg = a
			} else {
				op.Arg = defaultArgs[e]
			}
		case map[string]any:
			if len(e) != 1 {
				return nil, fmt.Errorf("op %v: want one key", e)
			}
			for k, v := range e {
				op.Kind, op.Arg = k, v
			}
		default:
			return nil, fmt.Errorf("op %v: want a name or {name: argument}", entry)
		}
		if !slices.Contains(opKinds, op.Kind) {
			return nil, fmt.Errorf("unknown op %q (known: %s)", op.Kind, strings.Join(opKinds, ", "))
		}
		if sel, _ := op.Arg.(string); op.Kind == "deletecollection" && sel == "" {
			return nil, fmt.Errorf("deletecollection needs a label selector")
		}
		seen[op.Kind]++
		op.ID = op.Kind
		if n := seen[op.Kind]; n > 1 {
			op.ID = fmt.Sprintf("%s#%d", op.Kind, n)
		}
		c.Ops = append(c.Ops, op)
	}
	return c, nil
}
