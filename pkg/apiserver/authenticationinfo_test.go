package apiserver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/controlplane/authenticationinfo"
)

// The server publishes the CA of the client certificates it accepts in
// kube-system/extension-apiserver-authentication, as kube-apiserver, for
// components that delegate authentication to it.
func TestAuthenticationInfoConfigMap(t *testing.T) {
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(testCtx(t), authenticationinfo.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(srvOpts.PKIDir(), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	// Other servers of the package's tests (TestAuditLog) share the etcd
	// and add their own CAs; this server's must be among them.
	if !strings.Contains(cm.Data["client-ca-file"], strings.TrimSpace(string(ca))) {
		t.Errorf("client-ca-file %q does not hold the cluster CA %q", cm.Data["client-ca-file"], ca)
	}
}
