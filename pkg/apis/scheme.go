// Package apis holds the scheme of every type skiff serves.
package apis

import (
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/pkg/apis/apps"
	"github.com/skiff-dev/skiff/pkg/apis/autoscaling"
	"github.com/skiff-dev/skiff/pkg/apis/batch"
	"github.com/skiff-dev/skiff/pkg/apis/certificates"
	"github.com/skiff-dev/skiff/pkg/apis/core"
	"github.com/skiff-dev/skiff/pkg/apis/discovery"
	"github.com/skiff-dev/skiff/pkg/apis/events"
	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
	"github.com/skiff-dev/skiff/pkg/apis/metrics"
	"github.com/skiff-dev/skiff/pkg/apis/networking"
	"github.com/skiff-dev/skiff/pkg/apis/node"
	"github.com/skiff-dev/skiff/pkg/apis/policy"
	"github.com/skiff-dev/skiff/pkg/apis/rbac"
	"github.com/skiff-dev/skiff/pkg/apis/scheduling"
	"github.com/skiff-dev/skiff/pkg/apis/storage"
)

var (
	// Scheme knows every served kind, external and internal.
	Scheme = runtime.NewScheme()
	// Codecs serialise Scheme's kinds as JSON, YAML and protobuf.
	Codecs = serializer.NewCodecFactory(Scheme)
	// ExternalScheme knows only the external kinds; the OpenAPI definition
	// namer uses it so x-kubernetes-group-version-kind lists no internal GVKs.
	ExternalScheme = runtime.NewScheme()
)

// externalAddToSchemes are the k8s.io/api groups behind Scheme.
var externalAddToSchemes = []func(*runtime.Scheme) error{
	corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, eventsv1.AddToScheme,
	coordinationv1.AddToScheme, discoveryv1.AddToScheme, policyv1.AddToScheme, autoscalingv1.AddToScheme,
	rbacv1.AddToScheme, networkingv1.AddToScheme, schedulingv1.AddToScheme, storagev1.AddToScheme,
	nodev1.AddToScheme, certificatesv1.AddToScheme, authenticationv1.AddToScheme,
	authorizationv1.AddToScheme, autoscalingv2.AddToScheme, metricsv1beta1.AddToScheme,
}

func init() {
	utilruntime.Must(Install(Scheme))
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Scheme.AddUnversionedTypes(schema.GroupVersion{Group: "", Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})

	for _, add := range externalAddToSchemes {
		utilruntime.Must(add(ExternalScheme))
	}
}

// Install adds every served group to scheme.
func Install(scheme *runtime.Scheme) error {
	// policy/v1 Eviction is the body of pods/eviction (policy.Install also
	// serves PodDisruptionBudgets); storage needs core's defaulters;
	// autoscaling/v1 Scale (autoscaling.Install) is the body of every scale
	// subresource.
	for _, install := range []func(*runtime.Scheme) error{core.Install, apps.Install, batch.Install, events.Install,
		rbac.Install, networking.Install, policy.Install, scheduling.Install, storage.Install, node.Install, certificates.Install,
		autoscaling.Install, metrics.Install} {
		if err := install(scheme); err != nil {
			return err
		}
	}
	for _, g := range []struct {
		add    func(*runtime.Scheme) error
		gv     schema.GroupVersion
		sample runtime.Object
	}{
		{coordinationv1.AddToScheme, coordinationv1.SchemeGroupVersion, &coordinationv1.Lease{}},
		{discoveryv1.AddToScheme, discoveryv1.SchemeGroupVersion, &discoveryv1.EndpointSlice{}},
		// authentication.k8s.io/v1: tokenreviews, selfsubjectreviews, and
		// TokenRequest, the body of serviceaccounts/token.
		{authenticationv1.AddToScheme, authenticationv1.SchemeGroupVersion, &authenticationv1.TokenRequest{}},
		// authorization.k8s.io/v1: the access and rules reviews.
		{authorizationv1.AddToScheme, authorizationv1.SchemeGroupVersion, &authorizationv1.SubjectAccessReview{}},
	} {
		if err := internalversion.Install(scheme, g.add, g.gv, g.sample); err != nil {
			return err
		}
	}
	// coordination.k8s.io/v1 has no defaulters upstream.
	discovery.RegisterDefaults(scheme)
	return nil
}
