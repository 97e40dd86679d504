package apiserver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/pkg/apiserver"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
)

// With --audit-policy-file and --audit-log-path, every request is logged as
// an audit.k8s.io/v1 Event JSON line, naming the user and the verb.
func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "audit.log")
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := options.NewOptions()
	opts.DataDir, opts.SecurePort, opts.BindAddress = filepath.Join(dir, "data"), port, "127.0.0.1"
	opts.EtcdServers = []string{etcdURL}
	opts.Audit.PolicyFile = policy
	opts.Audit.LogOptions.Path = logPath

	ctx, cancel := context.WithCancel(context.Background())
	loopbacks := make(chan *restclient.Config, 1)
	done := make(chan error, 1)
	go func() { done <- apiserver.Run(ctx, opts, func(c *restclient.Config) { loopbacks <- c }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var loopback *restclient.Config
	select {
	case loopback = <-loopbacks:
	case err := <-done:
		t.Fatalf("server stopped before ready: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("server not ready")
	}
	client := kubernetes.NewForConfigOrDie(loopback)
	if _, err := client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: "audited=yes"}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		data, _ := os.ReadFile(logPath)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, `"kind":"Event"`) && strings.Contains(line, `"verb":"list"`) &&
				strings.Contains(line, "audited%3Dyes") && strings.Contains(line, `"username":"system:apiserver"`) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		data, _ := os.ReadFile(logPath)
		t.Fatalf("no audit event for the list request; log:\n%.2000s", data)
	}
}
