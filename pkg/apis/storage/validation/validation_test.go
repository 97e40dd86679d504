package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func storageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		Provisioner:       "example.com/p",
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
}

func TestValidateStorageClass(t *testing.T) {
	zone := func(key string, values ...string) corev1.TopologySelectorLabelRequirement {
		return corev1.TopologySelectorLabelRequirement{Key: key, Values: values}
	}
	cases := []struct {
		name   string
		change func(*storagev1.StorageClass)
		want   []string
	}{
		{"valid", func(*storagev1.StorageClass) {}, nil},
		{"topologies", func(sc *storagev1.StorageClass) {
			sc.AllowedTopologies = []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{zone("zone", "a", "b")}}}
		}, nil},
		{"no provisioner", func(sc *storagev1.StorageClass) { sc.Provisioner = "" }, []string{"Required provisioner"}},
		{"bad provisioner", func(sc *storagev1.StorageClass) { sc.Provisioner = "a/b/c" }, []string{"Invalid provisioner"}},
		{"policies", func(sc *storagev1.StorageClass) {
			sc.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimRecycle)
			sc.VolumeBindingMode = ptr.To[storagev1.VolumeBindingMode]("Later")
		}, []string{"NotSupported reclaimPolicy", "NotSupported volumeBindingMode"}},
		{"no binding mode", func(sc *storagev1.StorageClass) { sc.VolumeBindingMode = nil }, []string{"Required volumeBindingMode"}},
		{"parameters", func(sc *storagev1.StorageClass) { sc.Parameters = map[string]string{"": "x"} }, []string{"Invalid parameters"}},
		{"huge parameters", func(sc *storagev1.StorageClass) {
			sc.Parameters = map[string]string{"k": strings.Repeat("x", 256*1024)}
		},
			[]string{"TooLong parameters"}},
		{"bad topologies", func(sc *storagev1.StorageClass) {
			sc.AllowedTopologies = []corev1.TopologySelectorTerm{
				{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{zone("zone"), zone("zone", "a", "a")}},
				{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{zone("bad key", "a")}},
			}
		}, []string{"Required allowedTopologies[0].matchLabelExpressions[0].values", "Duplicate allowedTopologies[0].matchLabelExpressions[1].key",
			"Duplicate allowedTopologies[0].matchLabelExpressions[1].values[1]", "Invalid allowedTopologies[1].matchLabelExpressions[0].key"}},
		{"duplicate terms", func(sc *storagev1.StorageClass) {
			term := corev1.TopologySelectorTerm{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{zone("zone", "a")}}
			sc.AllowedTopologies = []corev1.TopologySelectorTerm{term, term}
		}, []string{"Duplicate allowedTopologies[1].matchLabelExpressions"}},
		// As upstream: an empty term equals the placeholders its duplicate
		// check starts with.
		{"empty term", func(sc *storagev1.StorageClass) { sc.AllowedTopologies = []corev1.TopologySelectorTerm{{}} },
			[]string{"Duplicate allowedTopologies[0].matchLabelExpressions"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := storageClass()
			tc.change(sc)
			apitesting.ExpectFieldErrors(t, ValidateStorageClass(sc), tc.want...)
		})
	}
}

func TestValidateStorageClassUpdate(t *testing.T) {
	old := storageClass()
	sc := storageClass()
	sc.Parameters = map[string]string{"a": "b"}
	sc.Provisioner = "example.com/other"
	sc.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimRetain)
	sc.VolumeBindingMode = ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)
	sc.AllowVolumeExpansion = ptr.To(true)
	sc.MountOptions = []string{"debug"}
	apitesting.ExpectFieldErrors(t, ValidateStorageClassUpdate(sc, old),
		"Invalid parameters", "Invalid provisioner", "Invalid reclaimPolicy", "Invalid volumeBindingMode")
}

func csiDriver() *storagev1.CSIDriver {
	return &storagev1.CSIDriver{Spec: storagev1.CSIDriverSpec{
		AttachRequired: ptr.To(true), PodInfoOnMount: ptr.To(false), StorageCapacity: ptr.To(false), RequiresRepublish: ptr.To(false),
		SELinuxMount: ptr.To(false), PreventPodSchedulingIfMissing: ptr.To(false),
		FSGroupPolicy:        ptr.To(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy),
		VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
	}}
}

func TestValidateCSIDriver(t *testing.T) {
	cases := []struct {
		name   string
		change func(*storagev1.CSIDriverSpec)
		want   []string
	}{
		{"defaulted", func(*storagev1.CSIDriverSpec) {}, nil},
		{"token requests", func(s *storagev1.CSIDriverSpec) {
			s.TokenRequests = []storagev1.TokenRequest{{Audience: "a", ExpirationSeconds: ptr.To[int64](600)}, {Audience: ""}}
			s.ServiceAccountTokenInSecrets = ptr.To(true)
		}, nil},
		{"not defaulted", func(s *storagev1.CSIDriverSpec) { *s = storagev1.CSIDriverSpec{} },
			[]string{"Required spec.attachedRequired", "Required spec.podInfoOnMount", "Required spec.storageCapacity",
				"Required spec.seLinuxMount", "Required spec.preventPodSchedulingIfMissing"}},
		{"bad values", func(s *storagev1.CSIDriverSpec) {
			s.FSGroupPolicy = ptr.To[storagev1.FSGroupPolicy]("Sometimes")
			s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{"Forever"}
			s.NodeAllocatableUpdatePeriodSeconds = ptr.To[int64](5)
			s.ServiceAccountTokenInSecrets = ptr.To(true)
		}, []string{"NotSupported spec.fsGroupPolicy", "NotSupported spec.volumeLifecycleModes",
			"Invalid spec.nodeAllocatableUpdatePeriodSeconds", "Invalid spec.serviceAccountTokenInSecrets"}},
		{"bad token requests", func(s *storagev1.CSIDriverSpec) {
			s.TokenRequests = []storagev1.TokenRequest{{Audience: "a", ExpirationSeconds: ptr.To[int64](60)}, {Audience: "a"}, {Audience: "b", ExpirationSeconds: ptr.To[int64](1<<32 + 1)}}
		}, []string{"Invalid spec.tokenRequests[0].expirationSeconds", "Duplicate spec.tokenRequests[1].audience", "Invalid spec.tokenRequests[2].expirationSeconds"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := csiDriver()
			tc.change(&d.Spec)
			apitesting.ExpectFieldErrors(t, ValidateCSIDriver(d), tc.want...)
		})
	}
	d := csiDriver()
	d.Spec.AttachRequired = ptr.To(false)
	d.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}
	d.Spec.PodInfoOnMount = ptr.To(true)
	apitesting.ExpectFieldErrors(t, ValidateCSIDriverUpdate(d, csiDriver()), "Invalid spec.attachedRequired", "Invalid spec.volumeLifecycleModes")
}

func TestValidateCSINode(t *testing.T) {
	n := &storagev1.CSINode{Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
		{Name: "d.example.com", NodeID: "n1", TopologyKeys: []string{"topology.kubernetes.io/zone"}, Allocatable: &storagev1.VolumeNodeResources{Count: ptr.To[int32](10)}},
	}}}
	apitesting.ExpectFieldErrors(t, ValidateCSINode(n))

	bad := &storagev1.CSINode{Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
		{Name: "Bad_Driver", TopologyKeys: []string{"", "zone", "zone"}, Allocatable: &storagev1.VolumeNodeResources{Count: ptr.To[int32](-1)}},
		{Name: "Bad_Driver", NodeID: strings.Repeat("n", 257)},
	}}}
	apitesting.ExpectFieldErrors(t, ValidateCSINode(bad),
		"Invalid spec.drivers[0].name", "Required spec.drivers[0].nodeID", "Invalid spec.drivers[0].allocatable.count",
		"Required spec.drivers[0]", "Invalid spec.drivers[0]", "Invalid spec.drivers[0]", "Duplicate spec.drivers[0]", // the empty key
		"Invalid spec.drivers[1].name", "Invalid spec.drivers[1].nodeID", "Duplicate spec.drivers[1].name")

	t.Run("update", func(t *testing.T) {
		count := n.DeepCopy()
		count.Spec.Drivers[0].Allocatable.Count = ptr.To[int32](20)
		count.Spec.Drivers = append(count.Spec.Drivers, storagev1.CSINodeDriver{Name: "other.example.com", NodeID: "x"})
		apitesting.ExpectFieldErrors(t, ValidateCSINodeUpdate(count, n))
		nodeID := n.DeepCopy()
		nodeID.Spec.Drivers[0].NodeID = "n2"
		apitesting.ExpectFieldErrors(t, ValidateCSINodeUpdate(nodeID, n), "Invalid spec.drivers")
	})
}

func TestValidateVolumeAttachment(t *testing.T) {
	pv := func(name string) storagev1.VolumeAttachmentSource {
		return storagev1.VolumeAttachmentSource{PersistentVolumeName: &name}
	}
	inline := func(spec corev1.PersistentVolumeSpec) storagev1.VolumeAttachmentSource {
		return storagev1.VolumeAttachmentSource{InlineVolumeSpec: &spec}
	}
	csi := &corev1.CSIPersistentVolumeSource{Driver: "d.example.com", VolumeHandle: "h"}
	cases := []struct {
		name string
		spec storagev1.VolumeAttachmentSpec
		want []string
	}{
		{"persistent volume", storagev1.VolumeAttachmentSpec{Attacher: "d.example.com", NodeName: "n1", Source: pv("pv-1")}, nil},
		{"inline", storagev1.VolumeAttachmentSpec{Attacher: "d.example.com", NodeName: "n1", Source: inline(corev1.PersistentVolumeSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: csi}})}, nil},
		{"nothing", storagev1.VolumeAttachmentSpec{}, []string{"Required spec.attacher", "Required spec.source", "Invalid spec.nodeName"}},
		{"two sources", storagev1.VolumeAttachmentSpec{Attacher: "Bad_Attacher", NodeName: "n1", Source: storagev1.VolumeAttachmentSource{
			PersistentVolumeName: ptr.To("Bad_PV"), InlineVolumeSpec: &corev1.PersistentVolumeSpec{}}},
			[]string{"Invalid spec.attacher", "Forbidden spec.source", "Invalid spec.source.persistentVolumeName"}},
		{"empty volume name", storagev1.VolumeAttachmentSpec{Attacher: "d.example.com", NodeName: "n1", Source: pv("")},
			[]string{"Required spec.source.persistentVolumeName", "Invalid spec.source.persistentVolumeName"}},
		{"bad inline", storagev1.VolumeAttachmentSpec{Attacher: "d.example.com", NodeName: "n1", Source: inline(corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &corev1.ObjectReference{Name: "c"},
			NodeAffinity:                  &corev1.VolumeNodeAffinity{},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s", Path: "/p"}},
		})}, []string{"Forbidden spec.source.inlineVolumeSpec.claimRef", "Forbidden spec.source.inlineVolumeSpec.capacity",
			"Required spec.source.inlineVolumeSpec.csi", "Forbidden spec.source.inlineVolumeSpec.persistentVolumeReclaimPolicy",
			"Forbidden spec.source.inlineVolumeSpec.nodeAffinity", "Required spec.source.inlineVolumeSpec.accessModes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateVolumeAttachment(&storagev1.VolumeAttachment{Spec: tc.spec}), tc.want...)
		})
	}

	t.Run("status and update", func(t *testing.T) {
		old := &storagev1.VolumeAttachment{Spec: cases[0].spec}
		va := old.DeepCopy()
		va.Spec.NodeName = "n2"
		va.Status.AttachError = &storagev1.VolumeError{Message: strings.Repeat("x", 1025), ErrorCode: ptr.To[int32](-1)}
		va.Status.AttachmentMetadata = map[string]string{"k": strings.Repeat("x", 256*1024)}
		apitesting.ExpectFieldErrors(t, ValidateVolumeAttachmentUpdate(va, old), "Invalid spec",
			"TooLong status.attachError.message", "Invalid status.attachError.errorCode", "TooLong status.attachmentMetadata")
	})
}
