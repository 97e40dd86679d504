// Package certificates builds the storage of certificates.k8s.io/v1
// certificatesigningrequests with their /status and /approval
// subresources, following upstream's strategies: a CSR's spec is fixed at
// creation (the requesting user filled in from the request), the main
// resource never changes the status, /status sets the certificate and
// other conditions, /approval only the conditions (Approved, Denied).
//
// Signing is pkg/controllers/csrsigning's, approval of kubelet client
// requests pkg/controllers/csrapproving's. Not yet: the admission plugins that guard
// approval and signing per signer (CertificateApproval, CertificateSigning,
// CertificateSubjectRestriction); today only system:masters writes.
package certificates

import (
	"context"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	certificatesfields "github.com/skiff-dev/skiff/pkg/apis/certificates"
	certificatesvalidation "github.com/skiff-dev/skiff/pkg/apis/certificates/validation"
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Resource is certificatesigningrequests' group and resource.
var Resource = schema.GroupResource{Group: certificatesv1.GroupName, Resource: "certificatesigningrequests"}

// Resources describes the main certificatesigningrequests resource; Storage
// adds what a table cannot express.
var Resources = []store.Resource{
	{Resource: Resource, Singular: "certificatesigningrequest", ShortNames: []string{"csr"}, HasStatus: true,
		Fields:       certificatesfields.Fields["CertificateSigningRequest"],
		ValidateName: func(string, bool) []string { return nil }, // any name
		PrepareForUpdate: func(obj, old runtime.Object) {
			obj.(*certificatesv1.CertificateSigningRequest).Spec = old.(*certificatesv1.CertificateSigningRequest).Spec
		},
		New: func() runtime.Object { return &certificatesv1.CertificateSigningRequest{} }, NewList: func() runtime.Object { return &certificatesv1.CertificateSigningRequestList{} },
		Validate:       corevalidation.ForCreate(certificatesvalidation.ValidateCertificateSigningRequest),
		ValidateUpdate: corevalidation.ForUpdate(certificatesvalidation.ValidateCertificateSigningRequestUpdate)},
}

// Storage returns the certificates.k8s.io/v1 storage map, subresources
// included.
func Storage(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	m, err := store.Build(Resources, optsGetter)
	if err != nil {
		return nil, err
	}
	main := m[Resource.Resource].(*store.REST)
	main.Store.CreateStrategy = createStrategy{main.Store.CreateStrategy}
	// Server-side apply attributes neither spec nor status to writers of the
	// main resource.
	main.Store.ResetFieldsStrategy = resetFields{"spec", "status"}
	m[Resource.Resource+"/status"] = newSubresource(main.Store, updateStrategy{
		RESTUpdateStrategy: main.Store.UpdateStrategy,
		prepare:            prepareStatusUpdate,
		validate:           certificatesvalidation.ValidateCertificateSigningRequestStatusUpdate,
		resets:             resetFields{"spec", "status.conditions"},
	})
	m[Resource.Resource+"/approval"] = newSubresource(main.Store, updateStrategy{
		RESTUpdateStrategy: main.Store.UpdateStrategy,
		prepare:            prepareApprovalUpdate,
		validate:           certificatesvalidation.ValidateCertificateSigningRequestApprovalUpdate,
		resets:             resetFields{"spec", "status.certificate"},
	})
	return m, nil
}

// createStrategy fills the requesting user into the spec: whatever the
// request says about username, uid, groups and extra is replaced.
type createStrategy struct {
	rest.RESTCreateStrategy
}

func (s createStrategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	s.RESTCreateStrategy.PrepareForCreate(ctx, obj)
	csr := obj.(*certificatesv1.CertificateSigningRequest)
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = "", "", nil, nil
	if user, ok := genericapirequest.UserFrom(ctx); ok {
		csr.Spec.Username = user.GetName()
		csr.Spec.UID = user.GetUID()
		csr.Spec.Groups = user.GetGroups()
		if extra := user.GetExtra(); len(extra) > 0 {
			csr.Spec.Extra = map[string]certificatesv1.ExtraValue{}
			for k, v := range extra {
				csr.Spec.Extra[k] = v
			}
		}
	}
}

// prepareStatusUpdate keeps the spec and the stored Approved and Denied
// conditions (adding or removing one fails validation) and stamps the
// conditions' times.
func prepareStatusUpdate(csr, old *certificatesv1.CertificateSigningRequest) {
	csr.Spec = old.Spec
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
		oldIdx, newIdx := conditionIndices(old, t), conditionIndices(csr, t)
		if len(oldIdx) != len(newIdx) {
			continue
		}
		for i, o := range oldIdx {
			csr.Status.Conditions[newIdx[i]] = old.Status.Conditions[o]
		}
	}
	stampConditions(csr, old)
}

// prepareApprovalUpdate takes only the conditions from the request.
func prepareApprovalUpdate(csr, old *certificatesv1.CertificateSigningRequest) {
	stampConditions(csr, old)
	conditions := csr.Status.Conditions
	csr.Spec = old.Spec
	csr.Status = old.Status
	csr.Status.Conditions = conditions
}

func conditionIndices(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []int {
	var out []int
	for i, c := range csr.Status.Conditions {
		if c.Type == t {
			out = append(out, i)
		}
	}
	return out
}

// stampConditions sets lastUpdateTime to now where missing, and a missing
// lastTransitionTime to the stored one of the same type and status, else
// now.
func stampConditions(csr, old *certificatesv1.CertificateSigningRequest) {
	now := metav1.Now()
	for i := range csr.Status.Conditions {
		c := &csr.Status.Conditions[i]
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = now
		}
		if !c.LastTransitionTime.IsZero() {
			continue
		}
		c.LastTransitionTime = now
		for _, o := range old.Status.Conditions {
			if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
				c.LastTransitionTime = o.LastTransitionTime
				break
			}
		}
	}
}

// updateStrategy is the update behaviour of a CSR subresource.
type updateStrategy struct {
	rest.RESTUpdateStrategy
	prepare  func(csr, old *certificatesv1.CertificateSigningRequest)
	validate func(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList
	resets   resetFields
}

func (s updateStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	s.prepare(obj.(*certificatesv1.CertificateSigningRequest), old.(*certificatesv1.CertificateSigningRequest))
}

func (s updateStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	newMeta, err1 := meta.Accessor(obj)
	oldMeta, err2 := meta.Accessor(old)
	if err1 != nil || err2 != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), fmt.Errorf("no object metadata"))}
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessorUpdate(newMeta, oldMeta, field.NewPath("metadata"))
	return append(errs, s.validate(obj.(*certificatesv1.CertificateSigningRequest), old.(*certificatesv1.CertificateSigningRequest))...)
}

func (s updateStrategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return s.resets.GetResetFields()
}

// resetFields are the field paths (dot-separated) that server-side apply
// does not attribute to a writer.
type resetFields []string

func (r resetFields) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	set := fieldpath.NewSet()
	for _, f := range r {
		var path []interface{}
		for _, segment := range strings.Split(f, ".") {
			path = append(path, segment)
		}
		set.Insert(fieldpath.MakePathOrDie(path...))
	}
	return map[fieldpath.APIVersion]*fieldpath.Set{fieldpath.APIVersion(certificatesv1.SchemeGroupVersion.String()): set}
}

// subresource serves an update-only CSR subresource on a copy of the main
// store with its own update strategy.
type subresource struct {
	store *genericregistry.Store
}

var _ rest.Patcher = &subresource{}

func newSubresource(main *genericregistry.Store, s updateStrategy) *subresource {
	sub := *main
	sub.UpdateStrategy = s
	sub.ResetFieldsStrategy = s
	return &subresource{store: &sub}
}

// New returns an empty CertificateSigningRequest.
func (r *subresource) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the main resource owns the storage.
func (r *subresource) Destroy() {}

// Get returns the whole object.
func (r *subresource) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update applies the subresource's part of the update; it never creates.
func (r *subresource) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// GetResetFields tells server-side apply what the subresource does not own.
func (r *subresource) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// ConvertToTable prints the object like the main resource.
func (r *subresource) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}
