// Package node is upstream's Node authorizer: a kubelet (user
// system:node:<name> in group system:nodes) may read the secrets,
// configmaps, claims, volumes and service accounts that pods bound to it
// use, its own Node and Lease, and what upstream's system:node rules allow
// of everything else. Which objects a node may reach is kept in a Graph
// fed by the server's informers. Requests of other users get no opinion.
package node

import (
	"slices"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
)

// userPrefix starts the user name of every node's credentials.
const userPrefix = "system:node:"

// Identity returns the name of the node u is, as upstream's node
// identifier: u is a node when it is in system:nodes and its name is
// system:node:<name>; the name may be empty (a node without a name).
func Identity(u user.Info) (name string, isNode bool) {
	if u == nil || !strings.HasPrefix(u.GetName(), userPrefix) {
		return "", false
	}
	if !slices.Contains(u.GetGroups(), user.NodesGroup) {
		return "", false
	}
	return strings.TrimPrefix(u.GetName(), userPrefix), true
}
