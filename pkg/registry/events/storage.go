// Package events builds the storage of events.k8s.io/v1 events: the core
// Events seen through the newer API (the apiserver stores both in one place).
package events

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corefields "github.com/skiff-dev/skiff/pkg/apis/core"
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	eventsvalidation "github.com/skiff-dev/skiff/pkg/apis/events/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Resource is the events.k8s.io events resource.
var Resource = schema.GroupResource{Group: eventsv1.GroupName, Resource: "events"}

// Resources describes every events.k8s.io/v1 resource.
var Resources = []store.Resource{
	{Resource: Resource, Singular: "event", Namespaced: true, ShortNames: []string{"ev"}, AllowCreateOnUpdate: true, Fields: corefields.Fields["Event"],
		New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
		Validate: corevalidation.ForCreate(eventsvalidation.ValidateEvent), ValidateUpdate: corevalidation.ForUpdate(eventsvalidation.ValidateEventUpdate)},
}
