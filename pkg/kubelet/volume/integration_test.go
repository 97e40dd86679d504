package volume_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/volume"
	"github.com/skiff-dev/skiff/test/integration"
)

// tmpfsMounts are the tmpfs mount points of /proc/mounts below dir.
func tmpfsMounts(t *testing.T, dir string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "tmpfs" && strings.HasPrefix(f[1], dir+"/") {
			out[f[1]] = true
		}
	}
	return out
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func perm(t *testing.T, p string) os.FileMode {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// jwtClaims decodes a JWT's payload (the signature is checked by the
// TokenReview).
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestPodVolumes against a real API server: a pod (with the
// kube-api-access volume its admission adds) gets its configMap, secret,
// downwardAPI and projected volumes with the right contents and modes,
// tokens the API server accepts for the pod's service account and
// audience, tmpfs where upstream uses it; a ConfigMap update and a label
// change show after Refresh; TearDown unmounts and removes everything.
func TestPodVolumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount tmpfs")
	}
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	ns := "default"
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, cm := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Data: map[string]string{"config.yaml": "level: 1\n", "other": "x"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\n"}},
	} {
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data: map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cret")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web", "tier": "front"}, Annotations: map[string]string{"owner": "team a"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox", VolumeMounts: []corev1.VolumeMount{
				{Name: "cfg", MountPath: "/etc/app"}, {Name: "creds", MountPath: "/etc/creds"}, {Name: "info", MountPath: "/etc/info"},
				{Name: "vault", MountPath: "/var/run/vault"}, {Name: "scratch", MountPath: "/scratch"}}}},
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
					Items: []corev1.KeyToPath{{Key: "config.yaml", Path: "conf/config.yaml", Mode: ptr.To[int32](0o640)}}}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr.To[int32](0o400)}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['owner']"}}}}}},
				{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](0o440), Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: ptr.To[int64](600)}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Items: []corev1.KeyToPath{{Key: "user", Path: "user", Mode: ptr.To[int32](0o600)}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "pod", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
				}}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var apiAccess string
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "kube-api-access-") {
			apiAccess = v.Name
		}
	}
	if apiAccess == "" {
		t.Fatal("the ServiceAccount admission added no kube-api-access volume")
	}

	root := t.TempDir()
	m := &volume.Manager{Client: cs, RootDir: root, NodeName: "node-1"}
	t.Cleanup(func() { _ = m.TearDown(context.Background(), pod.UID) })
	mounts, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	volumes := filepath.Join(root, "pods", string(pod.UID), "volumes")
	for name, want := range map[string]string{
		"cfg": "kubernetes.io~configmap/cfg", "creds": "kubernetes.io~secret/creds", "info": "kubernetes.io~downward-api/info",
		"vault": "kubernetes.io~projected/vault", apiAccess: "kubernetes.io~projected/" + apiAccess, "scratch": "kubernetes.io~empty-dir/scratch",
	} {
		got := mounts[name]
		if got.HostPath != filepath.Join(volumes, want) || got.ReadOnly != (name != "scratch") {
			t.Errorf("volume %s: %+v, want %s", name, got, want)
		}
	}

	// Contents and modes.
	cfgDir, credsDir, infoDir, vaultDir := mounts["cfg"].HostPath, mounts["creds"].HostPath, mounts["info"].HostPath, mounts["vault"].HostPath
	if got := read(t, filepath.Join(cfgDir, "conf/config.yaml")); got != "level: 1\n" || perm(t, filepath.Join(cfgDir, "conf/config.yaml")) != 0o640 {
		t.Errorf("config.yaml %q %v", got, perm(t, filepath.Join(cfgDir, "conf/config.yaml")))
	}
	if link, err := os.Readlink(filepath.Join(cfgDir, "conf")); err != nil || link != "..data/conf" {
		t.Errorf("conf is not a link into ..data: %q %v", link, err)
	}
	if read(t, filepath.Join(credsDir, "user")) != "admin" || read(t, filepath.Join(credsDir, "pass")) != "s3cret" || perm(t, filepath.Join(credsDir, "pass")) != 0o400 {
		t.Error("secret volume contents or mode")
	}
	if got := read(t, filepath.Join(infoDir, "labels")); got != "app=\"web\"\ntier=\"front\"" {
		t.Errorf("labels %q", got)
	}
	if got := read(t, filepath.Join(infoDir, "annotations")); got != "team a" {
		t.Errorf("annotation %q", got)
	}
	if read(t, filepath.Join(vaultDir, "user")) != "admin" || perm(t, filepath.Join(vaultDir, "user")) != 0o600 ||
		read(t, filepath.Join(vaultDir, "pod")) != "web" || perm(t, filepath.Join(vaultDir, "token")) != 0o440 {
		t.Error("projected volume contents or modes")
	}
	apiDir := mounts[apiAccess].HostPath
	if read(t, filepath.Join(apiDir, "namespace")) != ns || read(t, filepath.Join(apiDir, "ca.crt")) != "-----BEGIN CERTIFICATE-----\n" {
		t.Error("kube-api-access contents")
	}

	// The tokens: valid for the pod's service account, bound to the pod,
	// with the projection's audience.
	for _, tc := range []struct {
		file      string
		audiences []string
	}{{filepath.Join(vaultDir, "token"), []string{"vault"}}, {filepath.Join(apiDir, "token"), nil}} {
		token := read(t, tc.file)
		review, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: tc.audiences}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := review.Status
		if !st.Authenticated || st.User.Username != "system:serviceaccount:default:default" ||
			len(st.User.Extra["authentication.kubernetes.io/pod-uid"]) != 1 || st.User.Extra["authentication.kubernetes.io/pod-uid"][0] != string(pod.UID) {
			t.Errorf("%s: review %+v", tc.file, st)
		}
		claims := jwtClaims(t, token)
		if tc.audiences != nil {
			aud, _ := claims["aud"].([]any)
			if len(aud) != 1 || aud[0] != "vault" {
				t.Errorf("aud %v", claims["aud"])
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 600 {
				t.Errorf("lifetime %v s", exp-iat)
			}
		}
		if k8s, _ := claims["kubernetes.io"].(map[string]any); k8s == nil || k8s["pod"].(map[string]any)["uid"] != string(pod.UID) {
			t.Errorf("not bound to the pod: %v", claims["kubernetes.io"])
		}
	}
	// The same token's audience is not another's.
	review, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
		Token: read(t, filepath.Join(vaultDir, "token")), Audiences: []string{"https://kubernetes.default.svc.cluster.local"}}}, metav1.CreateOptions{})
	if err != nil || review.Status.Authenticated {
		t.Errorf("the vault token passed for the API's audience: %v %+v", err, review.Status)
	}

	// tmpfs: secret, downwardAPI, projected and the memory emptyDir; the
	// configMap on disk.
	tmpfs := tmpfsMounts(t, root)
	for _, name := range []string{"creds", "info", "vault", apiAccess, "scratch"} {
		if !tmpfs[mounts[name].HostPath] {
			t.Errorf("%s is not on tmpfs (%v)", name, tmpfs)
		}
	}
	if tmpfs[cfgDir] || len(tmpfs) != 5 {
		t.Errorf("tmpfs mounts %v", tmpfs)
	}

	// Updates: the ConfigMap's content and the pod's labels.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["config.yaml"] = "level: 2\n"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod.Labels["tier"] = "back"
	if pod, err = cs.CoreV1().Pods(ns).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Readlink(filepath.Join(cfgDir, "..data"))
	if err := m.Refresh(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(cfgDir, "conf/config.yaml")); got != "level: 2\n" {
		t.Errorf("config.yaml after the update %q", got)
	}
	if after, _ := os.Readlink(filepath.Join(cfgDir, "..data")); after == before || !strings.HasPrefix(after, "..20") {
		t.Errorf("..data %q -> %q: not swapped to a new timestamped dir", before, after)
	}
	if got := read(t, filepath.Join(infoDir, "labels")); got != "app=\"web\"\ntier=\"back\"" {
		t.Errorf("labels after the update %q", got)
	}

	if err := m.TearDown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if left := tmpfsMounts(t, root); len(left) != 0 {
		t.Errorf("still mounted after TearDown: %v", left)
	}
	if _, err := os.Lstat(volumes); !os.IsNotExist(err) {
		t.Errorf("volumes dir after TearDown: %v", err)
	}
}
