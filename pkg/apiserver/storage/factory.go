// Package storage points the API server's resources at etcd: upstream's key
// layout and encodings (protobuf, events.k8s.io stored as core Events), one
// backend config for every etcd client of the server, and the guard around
// every resource's storage.
package storage

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	flowcontrolrequest "k8s.io/apiserver/pkg/util/flowcontrol/request"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/registry/events"
)

// protobuf is how objects are stored in etcd, as upstream.
const protobuf = runtime.ContentTypeProtobuf

// Apply points the config's REST storage at etcd, storing protobuf under
// upstream's key layout (/registry/pods/<ns>/<name>, ...).
func Apply(cfg *genericapiserver.Config, etcdTransport storagebackend.TransportConfig) error {
	backend := BackendConfig(etcdTransport, cfg.StorageObjectCountTracker)
	etcdOptions := genericoptions.NewEtcdOptions(backend)
	etcdOptions.DefaultStorageMediaType = protobuf

	encoding := serverstorage.NewDefaultResourceEncodingConfigForEffectiveVersion(apis.Scheme, cfg.EffectiveVersion)
	// events.k8s.io Events are core Events, stored as core/v1.
	encoding.SetResourceEncoding(events.Resource, corev1.SchemeGroupVersion,
		schema.GroupVersion{Version: runtime.APIVersionInternal})
	enabled := serverstorage.NewResourceConfig()
	for _, gv := range apis.Scheme.PreferredVersionAllGroups() {
		enabled.EnableVersions(gv)
	}
	factory := serverstorage.NewDefaultStorageFactory(backend.ForResource(schema.GroupResource{}).Config, protobuf,
		apis.Codecs, encoding, enabled, upstreamKeyPrefixes)
	factory.AddCohabitatingResources(schema.GroupResource{Resource: "events"}, schema.GroupResource{Group: eventsv1.GroupName, Resource: "events"})
	if err := etcdOptions.ApplyWithStorageFactoryTo(factory, cfg); err != nil {
		return err
	}
	cfg.RESTOptionsGetter = Guard(cfg.RESTOptionsGetter)
	return nil
}

// upstreamKeyPrefixes are kube-apiserver's etcd key prefixes that differ
// from the resource name.
var upstreamKeyPrefixes = map[schema.GroupResource]string{
	{Resource: "replicationcontrollers"}:                     "controllers",
	{Resource: "endpoints"}:                                  "services/endpoints",
	{Resource: "nodes"}:                                      "minions",
	{Resource: "services"}:                                   "services/specs",
	{Group: "networking.k8s.io", Resource: "ingresses"}:      "ingress",
	{Group: "networking.k8s.io", Resource: "ingressclasses"}: "ingressclasses",
}

// BackendConfig is the storage config every etcd client of the server is
// made from (skiff's resources, the service allocators, apiextensions),
// with the default (JSON) codec for the caller to replace.
func BackendConfig(transport storagebackend.TransportConfig, tracker flowcontrolrequest.StorageObjectCountTracker) *storagebackend.Config {
	backend := storagebackend.NewDefaultConfig("/registry", nil)
	backend.Transport = transport
	backend.StorageObjectCountTracker = tracker
	return backend
}
