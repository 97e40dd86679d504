package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	criclient "k8s.io/cri-client/pkg"
)

// Execer runs a command in a running container and waits for it, as
// CRI's ExecSync: containerID is the runtime's ID (without the
// "<runtime>://" prefix). A command that ran and exited is err == nil
// with its exitCode; err is a command that could not be run, or one that
// did not end within timeout (criclient.ErrCommandTimedOut or the
// context's deadline).
type Execer interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int, err error)
}

// execSlack is how long past its timeout an Execer that does not enforce
// it is waited for: the runtime times the command itself, this only bounds
// a runtime that hangs.
var execSlack = time.Second

// Exec runs cmd in the container: exit code 0 succeeds, another fails with
// the command's output (stdout then stderr, 10 KiB at most) as upstream's
// event shows it; not ending within timeout fails with "command timed
// out"; not running at all is an error.
func Exec(ctx context.Context, e Execer, containerID string, cmd []string, timeout time.Duration) (Result, string, error) {
	if e == nil {
		return Unknown, "", errors.New("exec probes are not supported by this node's runtime")
	}
	type answer struct {
		out  []byte
		code int
		err  error
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+execSlack)
	defer cancel()
	done := make(chan answer, 1)
	go func() {
		stdout, stderr, code, err := e.ExecSync(ctx, containerID, cmd, timeout)
		done <- answer{append(append([]byte{}, stdout...), stderr...), code, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	out := a.out
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	switch {
	case errors.Is(a.err, criclient.ErrCommandTimedOut):
		return Failure, a.err.Error(), nil
	case errors.Is(a.err, context.DeadlineExceeded):
		return Failure, timedOut(cmd, timeout), nil
	case a.err != nil:
		return Unknown, "", fmt.Errorf("running %q in container %s: %w", strings.Join(cmd, " "), containerID, a.err)
	case a.code != 0:
		return Failure, string(out), nil
	}
	return Success, string(out), nil
}

// timedOut is cri-client's message for an ExecSync past its timeout.
func timedOut(cmd []string, timeout time.Duration) string {
	return fmt.Sprintf("%v: %q timed out after %s", criclient.ErrCommandTimedOut, strings.Join(cmd, " "), timeout)
}
