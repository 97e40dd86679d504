package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/pkg/admission/serviceaccount"
)

// newAdmission builds the admission chain, in upstream's plugin order:
// today NamespaceLifecycle (no objects in missing or terminating namespaces;
// the system namespaces cannot be deleted), then ServiceAccount (pods run as
// an existing ServiceAccount, `default` unless named, and get its token
// volume). The plugins read through client and the informers of factory,
// which the caller starts once the server runs.
func newAdmission(client kubernetes.Interface, factory informers.SharedInformerFactory) (admission.Interface, error) {
	namespaces, err := lifecycle.NewLifecycle(sets.New(metav1.NamespaceDefault, metav1.NamespaceSystem,
		metav1.NamespacePublic, corev1.NamespaceNodeLease))
	if err != nil {
		return nil, err
	}
	namespaces.SetExternalKubeClientSet(client)
	namespaces.SetExternalKubeInformerFactory(factory)
	if err := namespaces.ValidateInitialization(); err != nil {
		return nil, err
	}
	return admission.NewChainHandler(namespaces, serviceaccount.New(client, factory)), nil
}
