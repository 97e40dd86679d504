package apiserver_test

import (
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/apiserver"
)

// The server publishes the CA of the client certificates it accepts in
// kube-system/extension-apiserver-authentication, as kube-apiserver, for
// components that delegate authentication to it.
func TestAuthenticationInfoConfigMap(t *testing.T) {
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(testCtx(t), apiserver.AuthenticationInfoConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(srvOpts.PKIDir(), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["client-ca-file"] != string(ca) {
		t.Errorf("client-ca-file %q, want the cluster CA %q", cm.Data["client-ca-file"], ca)
	}
}
