// Package config reads upstream's KubeSchedulerConfiguration
// (k8s.io/kube-scheduler/config/v1, apiVersion
// kubescheduler.config.k8s.io/v1) from a file, strictly as
// kube-scheduler's --config: unknown or duplicate fields are errors, then
// defaults upstream's v1 defaulting (the MultiPoint plugin set and weights,
// every enabled plugin's *Args) and validates.
package config

import (
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	configv1 "k8s.io/kube-scheduler/config/v1"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme, serializer.EnableStrict)
)

func init() {
	if err := configv1.AddToScheme(scheme); err != nil {
		panic(err) // a registration bug, at start
	}
}

// Load reads, defaults and validates the configuration in file.
func Load(file string) (*configv1.KubeSchedulerConfiguration, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	cfg, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, nil
}

// Decode decodes YAML or JSON, defaults and validates it.
func Decode(data []byte) (*configv1.KubeSchedulerConfiguration, error) {
	d := codecs.UniversalDeserializer()
	obj, gvk, err := d.Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	cfg, ok := obj.(*configv1.KubeSchedulerConfiguration)
	if !ok {
		return nil, fmt.Errorf("couldn't decode as KubeSchedulerConfiguration, got %s", gvk)
	}
	// The plugins' args are raw until decoded as their *Args kinds.
	if err := cfg.DecodeNestedObjects(d); err != nil {
		return nil, err
	}
	SetDefaults(cfg)
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Default is the configuration without a file: upstream's defaults.
func Default() *configv1.KubeSchedulerConfiguration {
	cfg := &configv1.KubeSchedulerConfiguration{}
	cfg.APIVersion = configv1.SchemeGroupVersion.String()
	cfg.Kind = "KubeSchedulerConfiguration"
	SetDefaults(cfg)
	return cfg
}

// NewArgs is a fresh, defaulted *Args object for plugin name; nil if the
// plugin takes none.
func NewArgs(name string) runtime.Object {
	gvk := configv1.SchemeGroupVersion.WithKind(name + "Args")
	obj, err := scheme.New(gvk)
	if err != nil {
		return nil
	}
	defaultArgs(obj)
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj
}
