package staticpod

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/test/integration"
)

// TestMirrorPods against a real API server, as the node itself (Node
// authorizer, NodeRestriction): a static pod's mirror is created with
// upstream's annotation and owner, recreated when deleted or when its
// static pod changed, and deleted when its manifest went; a pod of the
// API by that name is left alone.
func TestMirrorPods(t *testing.T) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const nodeName = "static-node"
	node, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodeCfg := restclient.CopyConfig(cfg)
	nodeCfg.Impersonate = restclient.ImpersonationConfig{UserName: "system:node:" + nodeName, Groups: []string{"system:nodes", "system:authenticated"}}
	nodeClient := kubernetes.NewForConfigOrDie(nodeCfg)

	dir := t.TempDir()
	manifest := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(manifest, []byte(podYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(Options{Path: dir, NodeName: nodeName, CheckFrequency: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go src.Run(ctx)
	go NewMirrors(nodeClient, nodeName).Run(ctx, src, 200*time.Millisecond)

	name := "web-" + nodeName
	mirror := func() (*corev1.Pod, string) {
		p, err := admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err.Error()
		}
		return p, ""
	}
	var first *corev1.Pod
	integration.Eventually(t, 10*time.Second, func() string {
		var problem string
		first, problem = mirror()
		return problem
	})
	static := src.Pods()[0]
	if first.Annotations[ConfigMirrorAnnotation] != string(static.UID) || first.Annotations[ConfigHashAnnotation] != string(static.UID) ||
		first.Annotations[ConfigSourceAnnotation] != "file" || first.Annotations[ConfigSeenAnnotation] == "" {
		t.Errorf("mirror pod annotations %v, want the static pod's with config.mirror %s", first.Annotations, static.UID)
	}
	if refs := first.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].Name != nodeName || refs[0].UID != node.UID || refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("owner references %+v, want the Node as controller", refs)
	}
	if first.Spec.NodeName != nodeName {
		t.Errorf("mirror pod's nodeName %q", first.Spec.NodeName)
	}
	if !IsMirrorPodOf(first, static) {
		t.Errorf("IsMirrorPodOf(mirror, static) = false")
	}

	// Deleted through the API: back.
	if err := admin.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		p, problem := mirror()
		if problem != "" {
			return problem
		}
		if p.UID == first.UID {
			return "the deleted mirror pod is still there"
		}
		return ""
	})

	// The static pod changed: a new mirror with the new hash.
	if err := os.WriteFile(manifest, []byte(strings.Replace(podYAML, "3600", "60", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		p, problem := mirror()
		if problem != "" {
			return problem
		}
		pods := src.Pods()
		if len(pods) != 1 || p.Annotations[ConfigMirrorAnnotation] != string(pods[0].UID) || pods[0].UID == static.UID {
			return fmt.Sprintf("mirror pod of hash %s, static pod %v", p.Annotations[ConfigMirrorAnnotation], pods)
		}
		if p.Spec.Containers[0].Command[1] != "60" {
			return fmt.Sprintf("mirror pod's command %v", p.Spec.Containers[0].Command)
		}
		return ""
	})

	// A pod of the API with a static pod's name stays.
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	other, err := admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-" + nodeName},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db.yaml"), []byte(strings.Replace(podYAML, "name: web", "name: db", 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The manifest went: its mirror goes.
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		if _, err := admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("mirror pod of a removed manifest: %v", err)
		}
		return ""
	})
	got, err := admin.CoreV1().Pods("default").Get(ctx, other.Name, metav1.GetOptions{})
	if err != nil || got.UID != other.UID || IsMirrorPod(got) {
		t.Errorf("the API's pod named as a static pod: %v %v", got, err)
	}
}
