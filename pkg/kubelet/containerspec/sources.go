package containerspec

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// ClientSources reads configMaps and secrets from the API server. A
// missing one is reported as upstream's kubelet reports it
// (`configmap "x" not found`, `secret "x" not found`: its managers name the
// resource in the singular), not as the API server does.
func ClientSources(client kubernetes.Interface) Sources { return clientSources{client} }

type clientSources struct{ client kubernetes.Interface }

func (s clientSources) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	cm, err := s.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, NotFound("configmap", name)
	}
	return cm, err
}

func (s clientSources) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	secret, err := s.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, NotFound("secret", name)
	}
	return secret, err
}

// NotFound is the error a Sources returns for a missing object:
// NotFound("configmap", "x") reads `configmap "x" not found`.
func NotFound(resource, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
}
