package volume

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func newManager(t *testing.T, objs ...runtime.Object) (*Manager, *fake.Clientset) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("10Gi")}}}
	cs := fake.NewClientset(append(objs, node)...)
	m := &Manager{Client: cs, RootDir: t.TempDir(), NodeName: "n1", Clock: testingclock.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))}
	t.Cleanup(func() {
		// Unmount whatever a failing test left behind.
		mounts, _ := mountsUnder(m.RootDir)
		for _, mp := range mounts {
			_ = unmount(mp)
		}
	})
	return m, cs
}

func testPod(volumes ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1",
			Labels: map[string]string{"b": "2", "a": "1"}, Annotations: map[string]string{"note": `say "hi"`}},
		Spec: corev1.PodSpec{Volumes: volumes, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func modeOf(t *testing.T, p string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode()
}

func gidOf(t *testing.T, p string) uint32 {
	t.Helper()
	info, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Gid
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount, chown)")
	}
}

func TestConfigMapVolume(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"},
		Data: map[string]string{"a": "A", "b": "B"}, BinaryData: map[string][]byte{"bin": {0, 1, 2}}}
	m, cs := newManager(t, cm)
	ctx := context.Background()
	pod := testPod(
		corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To[int32](0o600)}}},
		corev1.Volume{Name: "items", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
			Items:                []corev1.KeyToPath{{Key: "a", Path: "dir/x", Mode: ptr.To[int32](0o400)}, {Key: "bin", Path: "y"}}}}},
	)
	mounts, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	all := filepath.Join(m.RootDir, "pods/uid-1/volumes/kubernetes.io~configmap/all")
	if mounts["all"].HostPath != all || !mounts["all"].ReadOnly {
		t.Fatalf("mount %+v", mounts["all"])
	}
	if got := readFile(t, filepath.Join(all, "a")); got != "A" {
		t.Fatalf("a = %q", got)
	}
	if got := readFile(t, filepath.Join(all, "bin")); got != "\x00\x01\x02" {
		t.Fatalf("bin = %q", got)
	}
	if mode := modeOf(t, filepath.Join(all, "b")); mode.Perm() != 0o600 {
		t.Fatalf("b mode %v", mode)
	}
	if mode := modeOf(t, all); mode.Perm() != 0o777 {
		t.Fatalf("volume dir mode %v", mode)
	}
	items := mounts["items"].HostPath
	if got := readFile(t, filepath.Join(items, "dir/x")); got != "A" || modeOf(t, filepath.Join(items, "dir/x")).Perm() != 0o400 {
		t.Fatalf("dir/x = %q mode %v", got, modeOf(t, filepath.Join(items, "dir/x")))
	}
	if modeOf(t, filepath.Join(items, "y")).Perm() != 0o644 {
		t.Fatal("default mode is not 0644")
	}
	if _, err := os.Lstat(filepath.Join(items, "b")); !os.IsNotExist(err) {
		t.Fatal("a key not in items was written")
	}

	// An update: b changes, a goes; Refresh shows it.
	cm.Data = map[string]string{"b": "B2"}
	cm.BinaryData = nil
	if _, err := cs.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = m.Refresh(ctx, pod)
	var verr *Error
	if !errors.As(err, &verr) || len(verr.Volumes) != 1 || verr.Volumes[0].Volume != "items" ||
		!strings.Contains(err.Error(), "configmap references non-existent config key: a") {
		t.Fatalf("refresh: %v", err)
	}
	if got := readFile(t, filepath.Join(all, "b")); got != "B2" {
		t.Fatalf("b after refresh = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(all, "a")); !os.IsNotExist(err) {
		t.Fatal("a removed key is still visible")
	}
	// The failed volume kept its last contents.
	if got := readFile(t, filepath.Join(items, "dir/x")); got != "A" {
		t.Fatalf("dir/x = %q", got)
	}
}

func TestMissingObjects(t *testing.T) {
	m, _ := newManager(t)
	pod := testPod(
		corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}}}},
		corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "y"}}},
		corev1.Volume{Name: "opt", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "z", Optional: ptr.To(true)}}},
	)
	mounts, err := m.SetUp(context.Background(), pod)
	var verr *Error
	if !errors.As(err, &verr) || len(verr.Volumes) != 2 {
		t.Fatalf("err %v", err)
	}
	if got := verr.Volumes[0].Error(); got != `MountVolume.SetUp failed for volume "cm" : configmap "x" not found` {
		t.Errorf("configMap: %s", got)
	}
	if got := verr.Volumes[1].Error(); got != `MountVolume.SetUp failed for volume "s" : secret "y" not found` {
		t.Errorf("secret: %s", got)
	}
	if _, ok := mounts["opt"]; !ok {
		t.Fatal("optional missing secret not set up")
	}
	if _, err := os.Lstat(filepath.Join(m.RootDir, "pods/uid-1/volumes/kubernetes.io~configmap/cm")); !os.IsNotExist(err) {
		t.Fatal("a failed volume left a dir")
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestSecretOnTmpfsAndTearDown(t *testing.T) {
	needRoot(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}, Data: map[string][]byte{"pw": []byte("hunter2")}}
	m, _ := newManager(t, secret)
	pod := testPod(corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr.To[int32](0o400)}}},
		corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("8Mi"))}}})
	mounts, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s", "mem"} {
		if fsType, err := mountOf(mounts[name].HostPath); err != nil || fsType != "tmpfs" {
			t.Fatalf("%s: mounted %q (%v), want tmpfs", name, fsType, err)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mounts["mem"].HostPath, &st); err != nil {
		t.Fatal(err)
	}
	if size := int64(st.Blocks) * st.Bsize; size != 8<<20 {
		t.Fatalf("tmpfs size %d, want the sizeLimit", size)
	}
	if got := readFile(t, filepath.Join(mounts["s"].HostPath, "pw")); got != "hunter2" || modeOf(t, filepath.Join(mounts["s"].HostPath, "pw")).Perm() != 0o400 {
		t.Fatalf("pw = %q", got)
	}
	// SetUp again: nothing stacked.
	if _, err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	mounts2, _ := mountsUnder(filepath.Join(m.RootDir, "pods"))
	if len(mounts2) != 2 {
		t.Fatalf("mounts after a second SetUp: %v", mounts2)
	}
	if err := os.WriteFile(filepath.Join(mounts["mem"].HostPath, "f"), make([]byte, 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	if u := m.Usage(pod.UID)["mem"]; u < 100000 {
		t.Fatalf("usage %d", u)
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if left, _ := mountsUnder(m.RootDir); len(left) != 0 {
		t.Fatalf("still mounted: %v", left)
	}
	if _, err := os.Lstat(filepath.Join(m.RootDir, "pods/uid-1/volumes")); !os.IsNotExist(err) {
		t.Fatal("volumes dir not removed")
	}
}

func TestDownwardAPIVolume(t *testing.T) {
	m, _ := newManager(t)
	pod := testPod(corev1.Volume{Name: "d", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}, Mode: ptr.To[int32](0o400)},
		{Path: "one", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['a']"}},
		{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
		{Path: "cpu_m", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
		{Path: "cpu_limit", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c", Resource: "limits.cpu"}},
		{Path: "mem_mi", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
	}}}})
	mounts, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := mounts["d"].HostPath
	for file, want := range map[string]string{
		"labels": "a=\"1\"\nb=\"2\"", "annotations": `note="say \"hi\""`, "one": "1", "name": "p", "uid": "uid-1",
		"cpu_m": "250", "cpu_limit": "2", "mem_mi": "4096",
	} {
		if got := readFile(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if modeOf(t, filepath.Join(dir, "annotations")).Perm() != 0o400 || modeOf(t, filepath.Join(dir, "labels")).Perm() != 0o644 {
		t.Error("item modes")
	}
	pod.Labels["c"] = "3"
	if err := m.Refresh(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "labels")); got != "a=\"1\"\nb=\"2\"\nc=\"3\"" {
		t.Errorf("labels after refresh = %q", got)
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestProjectedTokenRotation(t *testing.T) {
	m, cs := newManager(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "CA"}})
	clk := m.Clock.(*testingclock.FakeClock)
	var requests []*authenticationv1.TokenRequest
	cs.PrependReactor("create", "serviceaccounts", func(a clienttesting.Action) (bool, runtime.Object, error) {
		tr := a.(clienttesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		requests = append(requests, tr)
		tr.Status.Token = "token-" + string(rune('0'+len(requests)))
		tr.Status.ExpirationTimestamp = metav1.NewTime(clk.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
		return true, tr, nil
	})
	pod := testPod(corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: ptr.To[int64](1000)}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}})
	pod.Spec.ServiceAccountName = "robot"
	mounts, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := mounts["kube-api-access"].HostPath
	if readFile(t, filepath.Join(dir, "token")) != "token-1" || readFile(t, filepath.Join(dir, "ca.crt")) != "CA" || readFile(t, filepath.Join(dir, "namespace")) != "ns" {
		t.Fatal("projected contents")
	}
	if len(requests) != 1 {
		t.Fatalf("%d token requests", len(requests))
	}
	spec := requests[0].Spec
	if len(spec.Audiences) != 1 || spec.Audiences[0] != "vault" || *spec.ExpirationSeconds != 1000 ||
		spec.BoundObjectRef.Kind != "Pod" || spec.BoundObjectRef.Name != "p" || spec.BoundObjectRef.UID != "uid-1" {
		t.Fatalf("token request %+v", spec)
	}
	// Before 80 % of its lifetime the token stays, after it is renewed.
	clk.Step(790 * time.Second)
	if err := m.Refresh(context.Background(), pod); err != nil || len(requests) != 1 {
		t.Fatalf("refresh at 79%%: %v, %d requests", err, len(requests))
	}
	clk.Step(20 * time.Second)
	if err := m.Refresh(context.Background(), pod); err != nil || len(requests) != 2 {
		t.Fatalf("refresh at 81%%: %v, %d requests", err, len(requests))
	}
	if got := readFile(t, filepath.Join(dir, "token")); got != "token-2" {
		t.Fatalf("token after rotation %q", got)
	}
	// A one-year token is renewed after a day.
	if !(&cachedToken{issued: clk.Now(), expires: clk.Now().Add(365 * 24 * time.Hour)}).stale(clk.Now().Add(24 * time.Hour)) {
		t.Fatal("a day-old token is not stale")
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(m.tokens) != 0 {
		t.Fatal("tokens kept after TearDown")
	}
}

func TestFSGroup(t *testing.T) {
	needRoot(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"a": "A", "b": "B"}}
	m, _ := newManager(t, cm)
	pod := testPod(
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "a", Path: "a", Mode: ptr.To[int32](0o400)}, {Key: "b", Path: "b"}}}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](4321)}
	mounts, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mounts["cfg"].HostPath
	for _, p := range []string{cfg, filepath.Join(cfg, "a"), filepath.Join(cfg, "b"), filepath.Join(cfg, "..data")} {
		if gid := gidOf(t, p); gid != 4321 {
			t.Errorf("%s: gid %d", p, gid)
		}
	}
	// Read-only volumes get group read: 0400 becomes 0440, as upstream.
	if mode := modeOf(t, filepath.Join(cfg, "a")); mode.Perm() != 0o440 {
		t.Errorf("a mode %v", mode)
	}
	if mode := modeOf(t, cfg); mode&fs.ModeSetgid == 0 {
		t.Errorf("volume dir mode %v, want setgid", mode)
	}
	scratch := mounts["scratch"].HostPath
	if gid := gidOf(t, scratch); gid != 4321 || modeOf(t, scratch)&fs.ModeSetgid == 0 || modeOf(t, scratch).Perm() != 0o777 {
		t.Errorf("emptyDir gid %d mode %v", gid, modeOf(t, scratch))
	}
	// A file the container made keeps its group: the ownership is given once.
	f := filepath.Join(scratch, "mine")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if gidOf(t, f) != 0 {
		t.Error("a second SetUp re-owned the emptyDir")
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestTearDownDoesNotFollowSymlinks(t *testing.T) {
	m, _ := newManager(t)
	pod := testPod(corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	mounts, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(mounts["scratch"].HostPath, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(keep, filepath.Join(mounts["scratch"].HostPath, "file")); err != nil {
		t.Fatal(err)
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a file outside the pod was removed: %v", err)
	}
	if _, err := os.Lstat(mounts["scratch"].HostPath); !os.IsNotExist(err) {
		t.Fatal("emptyDir not removed")
	}
	if err := m.TearDown(context.Background(), types.UID("../..")); err == nil {
		t.Fatal("a uid with .. was accepted")
	}
}

func TestHostPathTypes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	typ := func(t corev1.HostPathType) *corev1.HostPathType { return &t }
	for _, tc := range []struct {
		path    string
		typ     *corev1.HostPathType
		wantErr string
	}{
		{filepath.Join(dir, "missing"), nil, ""},
		{filepath.Join(dir, "missing"), typ(""), ""},
		{dir, typ(corev1.HostPathDirectory), ""},
		{file, typ(corev1.HostPathDirectory), "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{filepath.Join(dir, "nope"), typ(corev1.HostPathDirectory), "hostPath type check failed, " + filepath.Join(dir, "nope") + " is not a directory, unable to determine its type: path \"" + filepath.Join(dir, "nope") + "\" does not exist"},
		{file, typ(corev1.HostPathDirectoryOrCreate), "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{file, typ(corev1.HostPathFile), ""},
		{dir, typ(corev1.HostPathFile), "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{dir, typ(corev1.HostPathFileOrCreate), "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{sock, typ(corev1.HostPathSocket), ""},
		{file, typ(corev1.HostPathSocket), "hostPath type check failed: " + file + " is not a socket file, it's a File"},
		{"/dev/null", typ(corev1.HostPathCharDev), ""},
		{"/dev/null", typ(corev1.HostPathBlockDev), "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"},
		{file, typ(corev1.HostPathCharDev), "hostPath type check failed: " + file + " is not a character device, it's a File"},
		{dir, typ("Weird"), "Weird is an invalid volume type"},
		{"/a/../b", nil, "invalid HostPath `/a/../b`: must not contain '..'"},
	} {
		err := checkHostPath(tc.path, tc.typ)
		if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
			t.Errorf("%s %v: %v, want %q", tc.path, ptr.Deref(tc.typ, "<nil>"), err, tc.wantErr)
		}
	}
	made := filepath.Join(dir, "made/deep")
	if err := checkHostPath(made, typ(corev1.HostPathDirectoryOrCreate)); err != nil || !modeOf(t, made).IsDir() || modeOf(t, made).Perm() != 0o755 {
		t.Fatalf("DirectoryOrCreate: %v", err)
	}
	newFile := filepath.Join(dir, "new")
	if err := checkHostPath(newFile, typ(corev1.HostPathFileOrCreate)); err != nil || !modeOf(t, newFile).IsRegular() || modeOf(t, newFile).Perm() != 0o644 {
		t.Fatalf("FileOrCreate: %v", err)
	}
}

func TestPersistentVolumeClaims(t *testing.T) {
	base := t.TempDir()
	bound := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "claim-1"},
		Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-claim-1"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-claim-1"}, Spec: corev1.PersistentVolumeSpec{
		ClaimRef:               &corev1.ObjectReference{Namespace: "ns", Name: "data", UID: "claim-1"},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(base, "pvc-claim-1"), Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}}}
	localClaim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "local", UID: "claim-2"},
		Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "local-pv"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	localPV := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "local-pv"}, Spec: corev1.PersistentVolumeSpec{
		ClaimRef:               &corev1.ObjectReference{Namespace: "ns", Name: "local", UID: "claim-2"},
		PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: base}}}}
	pending := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pending"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	m, _ := newManager(t, bound, pv, localClaim, localPV, pending)
	pod := testPod(
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data", ReadOnly: true}}},
		corev1.Volume{Name: "local", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "local"}}},
		corev1.Volume{Name: "wait", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pending"}}},
		corev1.Volume{Name: "gone", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "missing"}}},
	)
	mounts, err := m.SetUp(context.Background(), pod)
	var verr *Error
	if !errors.As(err, &verr) || len(verr.Volumes) != 2 {
		t.Fatalf("err %v", err)
	}
	if got := verr.Volumes[0].Error(); got != "error processing PVC ns/pending: PVC is not bound" {
		t.Errorf("pending claim: %s", got)
	}
	if got := verr.Volumes[1].Error(); !strings.HasPrefix(got, "error processing PVC ns/missing: failed to fetch PVC from API server: ") {
		t.Errorf("missing claim: %s", got)
	}
	if got := mounts["data"]; got.HostPath != filepath.Join(base, "pvc-claim-1") || !got.ReadOnly || !modeOf(t, got.HostPath).IsDir() {
		t.Errorf("hostPath PV mount %+v", got)
	}
	if got := mounts["local"]; got.HostPath != base || got.ReadOnly {
		t.Errorf("local PV mount %+v", got)
	}
}

func TestSubPath(t *testing.T) {
	needRoot(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"config.yaml": "x: 1"}}
	m, _ := newManager(t, cm)
	pod := testPod(
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	mounts, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	// A configMap key (a symlink into ..data, inside the volume).
	file, err := m.SubPath(pod, "c", 0, "cfg", mounts["cfg"].HostPath, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if file != filepath.Join(m.RootDir, "pods/uid-1/volume-subpaths/cfg/c/0") || readFile(t, file) != "x: 1" {
		t.Fatalf("subPath file %s", file)
	}
	if fsType, _ := mountOf(file); fsType == "" {
		t.Fatal("subPath not bind-mounted")
	}
	// A missing dir is made with the volume root's mode.
	dir, err := m.SubPath(pod, "c", 1, "scratch", mounts["scratch"].HostPath, "logs/p")
	if err != nil {
		t.Fatal(err)
	}
	if modeOf(t, filepath.Join(mounts["scratch"].HostPath, "logs/p")).Perm() != 0o777 {
		t.Fatal("subPath dir mode")
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("via bind"), 0o644); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(mounts["scratch"].HostPath, "logs/p/f")) != "via bind" {
		t.Fatal("the bind is not the volume's dir")
	}
	// Again (a restarted container): no stacked mounts.
	if _, err := m.SubPath(pod, "c", 1, "scratch", mounts["scratch"].HostPath, "logs/p"); err != nil {
		t.Fatal(err)
	}
	// Symlinks out of the volume are refused, in the path or on the way.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(mounts["scratch"].HostPath, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"escape", "escape/x", "logs/../escape"} {
		if _, err := m.SubPath(pod, "c", 2, "scratch", mounts["scratch"].HostPath, sub); err == nil {
			t.Errorf("subPath %s: %v", sub, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatal("something was made outside the volume")
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if left, _ := mountsUnder(m.RootDir); len(left) != 0 {
		t.Fatalf("still mounted: %v", left)
	}
	if _, err := os.Lstat(filepath.Join(m.RootDir, "pods/uid-1/volume-subpaths")); !os.IsNotExist(err) {
		t.Fatal("volume-subpaths not removed")
	}
}

func TestSetUpKeepsContentsOfADeletedObject(t *testing.T) {
	m, cs := newManager(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"a": "A"}})
	pod := testPod(corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
	ctx := context.Background()
	mounts, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps("ns").Delete(ctx, "cfg", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err := m.SetUp(ctx, pod)
	if err != nil || again["cfg"] != mounts["cfg"] {
		t.Fatalf("SetUp of a set-up volume whose object went: %v %+v", err, again)
	}
	if got := readFile(t, filepath.Join(mounts["cfg"].HostPath, "a")); got != "A" {
		t.Fatalf("a = %q", got)
	}
	if err := m.Refresh(ctx, pod); err == nil || !strings.Contains(err.Error(), `configmap "cfg" not found`) {
		t.Fatalf("Refresh: %v", err)
	}
}
