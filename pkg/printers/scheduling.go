package printers

import (
	schedulingv1 "k8s.io/api/scheduling/v1"
)

var priorityClassTable = newTable(
	cols(
		nameColumn(),
		column("Value", "integer", schedulingv1.PriorityClass{}.SwaggerDoc()["value"]),
		column("Global-Default", "boolean", schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"]),
		ageColumn(),
		column("PreemptionPolicy", "string", schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"]),
	),
	func(pc *schedulingv1.PriorityClass) []any {
		var preemptionPolicy string
		if pc.PreemptionPolicy != nil {
			preemptionPolicy = string(*pc.PreemptionPolicy)
		}
		return []any{pc.Name, int64(pc.Value), pc.GlobalDefault, age(pc.CreationTimestamp), preemptionPolicy}
	},
)
