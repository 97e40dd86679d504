package printers

import (
	coordinationv1 "k8s.io/api/coordination/v1"
)

var leaseTable = newTable(
	cols(nameColumn(), column("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]), ageColumn()),
	func(l *coordinationv1.Lease) []any {
		return []any{l.Name, deref(l.Spec.HolderIdentity), age(l.CreationTimestamp)}
	},
)
