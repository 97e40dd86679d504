package storage_test

import (
	"testing"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

func TestStorageClassDefaults(t *testing.T) {
	f := apitesting.Frame{Head: "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: sc}\nprovisioner: example.com/p\n"}
	apitesting.RunDefaultingCases(t, f.Cases([]apitesting.DefaultingCase{
		{Name: "delete, immediate", In: "", Want: "reclaimPolicy: Delete\nvolumeBindingMode: Immediate\n"},
		{Name: "explicit values stay", In: "reclaimPolicy: Retain\nvolumeBindingMode: WaitForFirstConsumer\n",
			Want: "reclaimPolicy: Retain\nvolumeBindingMode: WaitForFirstConsumer\n"},
	}))
}

func TestCSIDriverDefaults(t *testing.T) {
	f := apitesting.Frame{Head: "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: d.example.com}\n"}
	apitesting.RunDefaultingCases(t, f.Cases([]apitesting.DefaultingCase{{
		Name: "empty spec",
		In:   "spec: {}\n",
		Want: `spec:
  attachRequired: true
  fsGroupPolicy: ReadWriteOnceWithFSType
  podInfoOnMount: false
  preventPodSchedulingIfMissing: false
  requiresRepublish: false
  seLinuxMount: false
  storageCapacity: false
  volumeLifecycleModes: [Persistent]
`,
	}, {
		Name: "explicit values stay",
		In:   "spec: {attachRequired: false, fsGroupPolicy: File, podInfoOnMount: true, preventPodSchedulingIfMissing: true, requiresRepublish: true, seLinuxMount: true, storageCapacity: true, volumeLifecycleModes: [Ephemeral]}\n",
		Want: "spec: {attachRequired: false, fsGroupPolicy: File, podInfoOnMount: true, preventPodSchedulingIfMissing: true, requiresRepublish: true, seLinuxMount: true, storageCapacity: true, volumeLifecycleModes: [Ephemeral]}\n",
	}}))
}

func TestVolumeAttachmentDefaults(t *testing.T) {
	f := apitesting.Frame{Head: "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata: {name: va}\n"}
	apitesting.RunDefaultingCases(t, f.Cases([]apitesting.DefaultingCase{{
		Name: "persistent volume name",
		In:   "spec: {attacher: d.example.com, nodeName: n1, source: {persistentVolumeName: pv}}\n",
		Want: "spec: {attacher: d.example.com, nodeName: n1, source: {persistentVolumeName: pv}}\n",
	}, {
		// Only the volume source and capacity are defaulted, not the
		// PersistentVolume's reclaim policy or volume mode.
		Name: "inline volume spec",
		In:   "spec: {attacher: d.example.com, nodeName: n1, source: {inlineVolumeSpec: {capacity: {storage: 1.0001m}, hostPath: {path: /x}}}}\n",
		Want: `spec: {attacher: d.example.com, nodeName: n1, source: {inlineVolumeSpec: {capacity: {storage: 2m}, hostPath: {path: /x, type: ""}}}}` + "\n",
	}, {
		Name: "inline rbd",
		In:   "spec: {attacher: d.example.com, nodeName: n1, source: {inlineVolumeSpec: {rbd: {monitors: [m], image: i}}}}\n",
		Want: "spec: {attacher: d.example.com, nodeName: n1, source: {inlineVolumeSpec: {rbd: {monitors: [m], image: i, pool: rbd, user: admin, keyring: /etc/ceph/keyring}}}}\n",
	}}))
}

func TestCSINodeIsNotDefaulted(t *testing.T) {
	doc := `{"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": "n"}, "spec": {"drivers": [{"name": "d", "nodeID": "n"}]}}`
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{Name: "csinode", In: doc, Want: doc}})
}
