package pod_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// kubectls are stock kubectls of the Google Cloud SDK: 1.27 speaks SPDY,
// 1.30 WebSocket for exec, 1.33 WebSocket for port-forward too.
func kubectls() []string {
	var found []string
	for _, v := range []string{"1.27", "1.30", "1.33"} {
		p := "/usr/lib/google-cloud-sdk/bin/kubectl." + v
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			found = append(found, p)
		}
	}
	return found
}

func (c *cluster) testKubectl(t *testing.T) {
	bins := kubectls()
	if len(bins) == 0 {
		t.Skip("no kubectl in /usr/lib/google-cloud-sdk/bin (kubectl.1.27, 1.30, 1.33)")
	}
	for _, bin := range bins {
		t.Run(bin[strings.LastIndex(bin, ".1.")+1:], func(t *testing.T) {
			kubectl := func(stdin string, args ...string) (string, string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", c.kubeconfig, "-n", "default"}, args...)...)
				var out, errOut bytes.Buffer
				cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
				err := cmd.Run()
				return out.String(), errOut.String(), err
			}
			if out, errOut, err := kubectl("", "logs", "web", "--tail=3"); err != nil || out != "log of /containerLogs/default/web/c1\n" {
				t.Errorf("logs: %q %q %v", out, errOut, err)
			}
			if out, errOut, err := kubectl("hi", "exec", "-i", "web", "--", "sh", "-c", "cat"); err != nil || out != "/exec/default/web/c1|sh -c cat|hi" || errOut != "stderr" {
				t.Errorf("exec -i: %q %q %v", out, errOut, err)
			}
			var exitErr *exec.ExitError
			if _, errOut, err := kubectl("", "exec", "web", "--", "exit3"); !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
				t.Errorf("exec exit3: %v %q, want exit code 3", err, errOut)
			}
			c.kubectlPortForward(t, bin)
		})
	}
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

func (c *cluster) kubectlPortForward(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", c.kubeconfig, "-n", "default", "port-forward", "pod/web", ":8080")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var port string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if m := forwarding.FindStringSubmatch(lines.Text()); m != nil {
			port = m[1]
			break
		}
	}
	if port == "" {
		t.Fatalf("port-forward did not start: %s", errOut.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprint(conn, "ping")
	_ = conn.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "8080:ping" {
		t.Errorf("port-forward: %q %v; kubectl: %s", got, err, errOut.String())
	}
}
