// Package authenticationinfo publishes, as kube-apiserver, the CA of the
// client certificates the API server accepts in kube-system's
// extension-apiserver-authentication ConfigMap.
package authenticationinfo

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// ConfigMapName is kube-system's ConfigMap in which, as
// kube-apiserver, skiff publishes the CA of the client certificates it
// accepts (client-ca-file): components that delegate authentication to the
// API server (kube-controller-manager's /metrics, aggregated API servers)
// read it to accept the same certificates.
const ConfigMapName = "extension-apiserver-authentication"

// Install adds the post-start hook that publishes the client CA in caFile, retrying
// until kube-system exists.
func Install(server *genericapiserver.GenericAPIServer, caFile string) {
	server.AddPostStartHookOrDie("start-cluster-authentication-info-controller", func(hookCtx genericapiserver.PostStartHookContext) error {
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("client CA: %w", err)
		}
		client, err := kubernetes.NewForConfig(hookCtx.LoopbackClientConfig)
		if err != nil {
			return err
		}
		return wait.PollUntilContextTimeout(hookCtx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			if err := publishClientCA(ctx, client, string(ca)); err != nil {
				klog.V(2).InfoS("Publishing the authentication info failed, will retry", "configmap", ConfigMapName, "err", err)
				return false, nil
			}
			return true, nil
		})
	})
}

// publishClientCA adds ca to the published client CAs. As upstream's
// controller, it keeps the CAs other API servers on the same etcd put
// there: each server's clients must stay accepted.
func publishClientCA(ctx context.Context, client kubernetes.Interface, ca string) error {
	configMaps := client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cm, err := configMaps.Get(ctx, ConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = configMaps.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: ConfigMapName},
			Data:       map[string]string{"client-ca-file": ca},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	combined := combineCABundles(ca, cm.Data["client-ca-file"])
	if cm.Data["client-ca-file"] == combined {
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["client-ca-file"] = combined
	_, err = configMaps.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// combineCABundles is the PEM certificates of own and then those of
// existing that own lacks; blocks that are no certificates are dropped.
func combineCABundles(own, existing string) string {
	var out []byte
	seen := map[string]bool{}
	for _, bundle := range []string{own, existing} {
		rest := []byte(bundle)
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" || seen[string(block.Bytes)] {
				continue
			}
			seen[string(block.Bytes)] = true
			out = append(out, pem.EncodeToMemory(block)...)
		}
	}
	return string(out)
}
