// Package validation checks Events written through events.k8s.io/v1. They
// are stored as core/v1 Events, so the rules live with the core ones.
package validation

import (
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// ValidateEvent validates an events.k8s.io/v1 event on create: the legacy
// core rules plus the strict ones of the newer API.
var ValidateEvent = corevalidation.ValidateEventV1

// ValidateEventUpdate validates an events.k8s.io/v1 event update: only the
// series (and metadata) may change.
var ValidateEventUpdate = corevalidation.ValidateEventV1Update
