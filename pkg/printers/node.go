package printers

import (
	nodev1 "k8s.io/api/node/v1"
)

var runtimeClassTable = newTable(
	// Upstream looks "handler" up in the ObjectMeta docs, which yields "".
	cols(nameColumn(), column("Handler", "string", objectMetaDoc["handler"]), ageColumn()),
	func(rc *nodev1.RuntimeClass) []any {
		return []any{rc.Name, rc.Handler, age(rc.CreationTimestamp)}
	},
)
