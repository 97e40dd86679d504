// Package admission builds the API server's admission chain from the
// plugins of pkg/admission and k8s.io/apiserver, in upstream's order.
package admission

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	genericadmission "k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle"
	"k8s.io/apiserver/pkg/admission/plugin/resourcequota"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	certapproval "github.com/skiff-dev/skiff/pkg/admission/certificates/approval"
	certsigning "github.com/skiff-dev/skiff/pkg/admission/certificates/signing"
	certsubjectrestriction "github.com/skiff-dev/skiff/pkg/admission/certificates/subjectrestriction"
	"github.com/skiff-dev/skiff/pkg/admission/defaultstorageclass"
	"github.com/skiff-dev/skiff/pkg/admission/defaulttolerationseconds"
	"github.com/skiff-dev/skiff/pkg/admission/limitranger"
	"github.com/skiff-dev/skiff/pkg/admission/noderestriction"
	"github.com/skiff-dev/skiff/pkg/admission/nodetaint"
	"github.com/skiff-dev/skiff/pkg/admission/persistentvolumeclaimresize"
	"github.com/skiff-dev/skiff/pkg/admission/podtopologylabels"
	"github.com/skiff-dev/skiff/pkg/admission/priority"
	"github.com/skiff-dev/skiff/pkg/admission/runtimeclass"
	"github.com/skiff-dev/skiff/pkg/admission/serviceaccount"
	"github.com/skiff-dev/skiff/pkg/admission/storageobjectinuseprotection"
	quotacore "github.com/skiff-dev/skiff/pkg/quota/core"
)

// quotaWorkers is how many requests ResourceQuota admission evaluates at
// once (upstream's default).
const quotaWorkers = 5

// New builds the admission chain, in upstream's plugin order:
// NamespaceLifecycle (no objects in missing or terminating namespaces;
// default, kube-system and kube-public cannot be deleted), LimitRanger (LimitRange
// defaults and bounds), ServiceAccount (pods run as an existing
// ServiceAccount, `default` unless named, and get its token volume),
// NodeRestriction (a node writes only its own Node, Lease, mirror pods,
// pods' status and tokens), TaintNodesByCondition (new nodes are
// not-ready:NoSchedule), Priority
// (pods' priority from their PriorityClass), DefaultTolerationSeconds
// (not-ready/unreachable NoExecute tolerations of 300s), DefaultStorageClass
// (class-less claims get the default StorageClass),
// StorageObjectInUseProtection (new PVs and PVCs get the pv-protection and
// pvc-protection finalizers), PersistentVolumeClaimResize (a claim grows
// only when Bound and its class allows expansion), RuntimeClass (pods
// name an existing RuntimeClass and get its overhead and scheduling
// constraints), CertificateApproval
// and CertificateSigning (approving or signing a CSR needs "approve" or
// "sign" on its signer, asked of authz, the server's authorizer),
// CertificateSubjectRestriction (no kube-apiserver-client CSRs for
// system:masters), PodTopologyLabels (a pod bound to a node gets its zone
// and region labels) and ResourceQuota (k8s.io/apiserver's plugin with skiff's
// evaluators; the ResourceQuota controller keeps status.used). The plugins
// read through client and the informers of factory, which the caller starts
// once the server runs; drained ends ResourceQuota's workers.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, authz authorizer.Authorizer, drained <-chan struct{}) (genericadmission.Interface, error) {
	// kube-node-lease may be deleted, as upstream (it is created again).
	namespaces, err := lifecycle.NewLifecycle(sets.New(metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic))
	if err != nil {
		return nil, err
	}
	namespaces.SetExternalKubeClientSet(client)
	namespaces.SetExternalKubeInformerFactory(factory)
	if err := namespaces.ValidateInitialization(); err != nil {
		return nil, err
	}

	quota, err := resourcequota.NewResourceQuota(nil, quotaWorkers)
	if err != nil {
		return nil, err
	}
	quota.SetDrainedNotification(drained)
	quota.SetExternalKubeClientSet(client)
	quota.SetExternalKubeInformerFactory(factory)
	quota.SetQuotaConfiguration(quotacore.NewConfiguration())
	if err := quota.ValidateInitialization(); err != nil {
		return nil, err
	}

	return genericadmission.NewChainHandler(
		namespaces,
		limitranger.New(client, factory),
		serviceaccount.New(client, factory),
		noderestriction.New(factory, authz),
		nodetaint.New(),
		priority.New(client, factory),
		defaulttolerationseconds.New(),
		defaultstorageclass.New(factory),
		storageobjectinuseprotection.New(),
		persistentvolumeclaimresize.New(factory),
		runtimeclass.New(client, factory),
		certapproval.New(authz),
		certsigning.New(authz),
		certsubjectrestriction.New(),
		podtopologylabels.New(factory),
		quota,
	), nil
}
