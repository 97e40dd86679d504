package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// SkiffBinary returns the skiff binary to run: $SKIFF_BIN when set, else
// ./cmd/skiff of the enclosing module, built once per process into a
// temporary directory (removed by Cleanup).
func SkiffBinary() (string, error) {
	buildOnce.Do(func() {
		if bin := os.Getenv("SKIFF_BIN"); bin != "" {
			builtBin, buildErr = filepath.Abs(bin)
			return
		}
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "harness-bin-"); err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(buildDir, "skiff")
		// hack/build.sh: the build of the README, version stamp included.
		cmd := exec.Command("bash", "hack/build.sh", bin)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("hack/build.sh: %w\n%s", err, out)
			return
		}
		builtBin = bin
	})
	return builtBin, buildErr
}

// Cleanup removes the skiff binary SkiffBinary built, if any. Call it once,
// when no more servers will be started.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// StartSkiff runs `skiff server` (or opts.Command) on a loopback port and returns once it
// has printed its KUBECONFIG= line and /readyz answers 200.
func StartSkiff(ctx context.Context, opts Options) (*Server, error) {
	bin, err := SkiffBinary()
	if err != nil {
		return nil, err
	}
	dir, temporary, err := prepareDir(opts, "skiff")
	if err != nil {
		return nil, err
	}
	command := opts.Command
	if command == "" {
		command = "server"
	}
	var s *Server
	err = startWithRetry(opts.Port, func(port int) error {
		s = &Server{Name: "skiff", command: command, Dir: dir, removeDir: temporary, LogPath: filepath.Join(dir, "skiff.log"),
			URL: fmt.Sprintf("https://127.0.0.1:%d", port), Port: port}
		args := opts.Args
		if command == "server" {
			args = append(serverDisables(opts), args...)
		}
		return s.startSkiff(ctx, bin, port, args)
	})
	if err != nil {
		if temporary {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	return s, nil
}

func (s *Server) startSkiff(ctx context.Context, bin string, port int, extra []string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	announced := make(chan string, 1)
	args := append([]string{s.command, "--data-dir", s.Dir, "--secure-port", strconv.Itoa(port), "--bind-address", "127.0.0.1"}, extra...)
	err := s.launch(bin, args, func(line string) {
		if _, v, ok := strings.Cut(line, "KUBECONFIG="); ok {
			select {
			case announced <- strings.Trim(strings.Fields(v + " ")[0], `"'`):
			default:
			}
		}
	})
	if err != nil {
		return err
	}
	fail := func(err error) error {
		s.kill()
		return addrInUse(err, s.LogTail(40))
	}
	select {
	case s.Kubeconfig = <-announced:
	case <-s.exited:
		return addrInUse(fmt.Errorf("skiff exited before printing KUBECONFIG= (%v); log tail:\n%s", s.waitErr, s.LogTail(30)), s.LogTail(40))
	case <-ctx.Done():
		return fail(fmt.Errorf("skiff printed no KUBECONFIG= line within %s; log tail:\n%s", startTimeout, s.LogTail(30)))
	}
	if err := s.waitReady(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// kill sends SIGKILL and waits up to 10s for the process to exit: for a
// process that failed to start, and for Kill.
func (s *Server) kill() {
	if s.Cmd != nil && s.Cmd.Process != nil {
		_ = s.Cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
		}
	}
}

// UserKubeconfig runs `skiff kubeconfig` on a skiff server's Dir and returns
// the kubeconfig it prints: one for user, in groups, with a client
// certificate signed by the server's CA.
func (s *Server) UserKubeconfig(ctx context.Context, user string, groups ...string) ([]byte, error) {
	if s.Name != "skiff" {
		return nil, fmt.Errorf("UserKubeconfig: %s is not a skiff server", s.Name)
	}
	bin, err := SkiffBinary()
	if err != nil {
		return nil, err
	}
	args := []string{"kubeconfig", "--data-dir", s.Dir, "--user", user}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("skiff %s: %w\n--- stdout:\n%s\n--- stderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.Bytes(), nil
}

// serverDisables are the flags that keep a test's skiff server to the
// parts opts asks for.
func serverDisables(opts Options) []string {
	var flags []string
	if !opts.LocalNode {
		flags = append(flags, "--disable-agent")
	} else if !opts.NodeNetwork {
		flags = append(flags, "--disable-kube-proxy", "--disable-network-policy", "--pod-network-backend", "none")
	}
	if !opts.DNS {
		flags = append(flags, "--disable-dns")
	}
	return flags
}
