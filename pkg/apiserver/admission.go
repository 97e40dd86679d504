package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// newAdmission builds the admission chain, in upstream's plugin order:
// today NamespaceLifecycle (no objects in missing or terminating namespaces;
// the system namespaces cannot be deleted). The informers it reads start in
// a post-start hook.
func newAdmission(server *genericapiserver.Config) (admission.Interface, informers.SharedInformerFactory, error) {
	client, err := kubernetes.NewForConfig(server.LoopbackClientConfig)
	if err != nil {
		return nil, nil, err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	namespaces, err := lifecycle.NewLifecycle(sets.New(metav1.NamespaceDefault, metav1.NamespaceSystem,
		metav1.NamespacePublic, corev1.NamespaceNodeLease))
	if err != nil {
		return nil, nil, err
	}
	namespaces.SetExternalKubeClientSet(client)
	namespaces.SetExternalKubeInformerFactory(factory)
	if err := namespaces.ValidateInitialization(); err != nil {
		return nil, nil, err
	}
	return admission.NewChainHandler(namespaces), factory, nil
}
