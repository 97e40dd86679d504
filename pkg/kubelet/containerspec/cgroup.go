package containerspec

import (
	"path"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/qos"
)

// CgroupParent is the pod's cgroup under the cgroupfs driver, as upstream's
// QoS container manager lays them out: /kubepods/pod<uid> for Guaranteed,
// /kubepods/burstable/pod<uid> and /kubepods/besteffort/pod<uid>.
func CgroupParent(pod *corev1.Pod) string {
	podDir := "pod" + string(pod.UID)
	switch qos.PodQOS(pod) {
	case corev1.PodQOSGuaranteed:
		return path.Join("/kubepods", podDir)
	case corev1.PodQOSBurstable:
		return path.Join("/kubepods", "burstable", podDir)
	default:
		return path.Join("/kubepods", "besteffort", podDir)
	}
}
