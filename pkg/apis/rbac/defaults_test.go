package rbac_test

import (
	"testing"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

func TestBindingDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{
		Name: "role binding: roleRef and User/Group subjects get the RBAC group",
		In: `
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: default}
roleRef: {kind: Role, name: r}
subjects: [{kind: User, name: u}, {kind: Group, name: g}, {kind: ServiceAccount, name: s}, {kind: Robot, name: o}, {kind: User, name: x, apiGroup: example.com}]
`,
		Want: `
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: u}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: g}
- {kind: ServiceAccount, name: s}
- {kind: Robot, name: o}
- {apiGroup: example.com, kind: User, name: x}
`,
	}, {
		Name: "cluster role binding list",
		In: `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBindingList
items:
- metadata: {name: crb}
  roleRef: {kind: ClusterRole, name: view}
  subjects: [{kind: Group, name: g}]
`,
		Want: `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBindingList
metadata: {}
items:
- metadata: {name: crb}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: g}]
`,
	}, {
		Name: "roles are not defaulted",
		In:   `{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "c"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}]}`,
		Want: `{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "c"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}]}`,
	}})
}
