package serviceaccount

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// newPlugin runs the plugin against a fake API holding objs.
func newPlugin(t *testing.T, objs ...*corev1.ServiceAccount) *Plugin {
	t.Helper()
	client := fake.NewClientset()
	for _, sa := range objs {
		if _, err := client.CoreV1().ServiceAccounts(sa.Namespace).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	p := New(client, factory)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	p.generateName = func(prefix string) string { return prefix + "abcde" }
	return p
}

func sa(name string, automount *bool) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, AutomountServiceAccountToken: automount}
}

func admit(t *testing.T, p *Plugin, pod *corev1.Pod) error {
	t.Helper()
	a := admission.NewAttributesRecord(pod, nil, corev1.SchemeGroupVersion.WithKind("Pod"), "ns", pod.Name,
		corev1.SchemeGroupVersion.WithResource("pods"), "", admission.Create, &metav1.CreateOptions{}, false, nil)
	var chain admission.Interface = admission.NewChainHandler(p)
	return chain.(admission.MutationInterface).Admit(context.Background(), a, nil)
}

func newPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "i"}},
			Containers:     []corev1.Container{{Name: "a", Image: "i"}, {Name: "b", Image: "i"}},
		},
	}
}

func TestDefaultServiceAccountAndVolume(t *testing.T) {
	p := newPlugin(t, sa("default", nil))
	pod := newPod()
	if err := admit(t, p, pod); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != "default" || pod.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("serviceAccountName %q serviceAccount %q", pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount)
	}
	want := corev1.Volume{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
	if len(pod.Spec.Volumes) != 1 || !equality.Semantic.DeepEqual(pod.Spec.Volumes[0], want) {
		t.Errorf("volumes %+v", pod.Spec.Volumes)
	}
	mount := corev1.VolumeMount{Name: "kube-api-access-abcde", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if len(c.VolumeMounts) != 1 || !equality.Semantic.DeepEqual(c.VolumeMounts[0], mount) {
			t.Errorf("container %s mounts %+v", c.Name, c.VolumeMounts)
		}
	}
}

func TestOptOutAndExistingMounts(t *testing.T) {
	p := newPlugin(t, sa("default", nil), sa("quiet", ptr.To(false)))

	pod := newPod()
	pod.Spec.AutomountServiceAccountToken = ptr.To(false)
	if err := admit(t, p, pod); err != nil || len(pod.Spec.Volumes) != 0 {
		t.Errorf("pod opting out: err %v volumes %v", err, pod.Spec.Volumes)
	}

	pod = newPod()
	pod.Spec.ServiceAccountName = "quiet"
	if err := admit(t, p, pod); err != nil || len(pod.Spec.Volumes) != 0 {
		t.Errorf("service account opting out: err %v volumes %v", err, pod.Spec.Volumes)
	}

	// The pod's choice wins over its ServiceAccount's.
	pod = newPod()
	pod.Spec.ServiceAccountName = "quiet"
	pod.Spec.AutomountServiceAccountToken = ptr.To(true)
	if err := admit(t, p, pod); err != nil || len(pod.Spec.Volumes) != 1 {
		t.Errorf("pod opting in: err %v volumes %v", err, pod.Spec.Volumes)
	}

	// A container with its own mount at the token path keeps it.
	pod = newPod()
	own := corev1.VolumeMount{Name: "mine", MountPath: DefaultAPITokenMountPath}
	pod.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{own}
	if err := admit(t, p, pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Containers[0].VolumeMounts) != 1 || len(pod.Spec.Containers[1].VolumeMounts) != 1 || len(pod.Spec.Volumes) != 2 {
		t.Errorf("mounts %v / %v, volumes %v", pod.Spec.Containers[0].VolumeMounts, pod.Spec.Containers[1].VolumeMounts, pod.Spec.Volumes)
	}
}

func TestMissingServiceAccount(t *testing.T) {
	p := newPlugin(t)
	pod := newPod()
	pod.Spec.ServiceAccountName = "robot"
	err := admit(t, p, pod)
	if !apierrors.IsForbidden(err) {
		t.Fatalf("err %v, want forbidden", err)
	}
	want := `pods "p" is forbidden: error looking up service account ns/robot: serviceaccount "robot" not found`
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
}

func TestImagePullSecretsAndMountableSecrets(t *testing.T) {
	withPull := sa("default", nil)
	withPull.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
	strict := sa("strict", nil)
	strict.Annotations = map[string]string{EnforceMountableSecretsAnnotation: "true"}
	strict.Secrets = []corev1.ObjectReference{{Name: "allowed"}}
	p := newPlugin(t, withPull, strict)

	pod := newPod()
	if err := admit(t, p, pod); err != nil || len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != "registry" {
		t.Errorf("err %v imagePullSecrets %v", err, pod.Spec.ImagePullSecrets)
	}

	pod = newPod()
	pod.Spec.ServiceAccountName = "strict"
	pod.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "other"}}}}
	if err := admit(t, p, pod); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "does not reference that secret") {
		t.Errorf("err %v, want forbidden", err)
	}
}

func TestMirrorPods(t *testing.T) {
	p := newPlugin(t)
	pod := newPod()
	pod.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
	if err := admit(t, p, pod); err != nil || pod.Spec.ServiceAccountName != "" || len(pod.Spec.Volumes) != 0 {
		t.Errorf("mirror pod: err %v spec %+v", err, pod.Spec)
	}
	pod.Spec.ServiceAccountName = "default"
	if err := admit(t, p, pod); !apierrors.IsForbidden(err) {
		t.Errorf("mirror pod with a service account: err %v", err)
	}
}
