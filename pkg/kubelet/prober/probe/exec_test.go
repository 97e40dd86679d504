package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	criclient "k8s.io/cri-client/pkg"
)

type fakeExec struct {
	stdout, stderr string
	code           int
	err            error
	hang           bool
	gotID          string
	gotCmd         []string
	gotTimeout     time.Duration
}

func (f *fakeExec) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, int, error) {
	f.gotID, f.gotCmd, f.gotTimeout = id, cmd, timeout
	if f.hang {
		<-ctx.Done()
		return nil, nil, 0, ctx.Err()
	}
	return []byte(f.stdout), []byte(f.stderr), f.code, f.err
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	f := &fakeExec{stdout: "out\n"}
	res, out, err := Exec(ctx, f, "abc", []string{"cat", "/tmp/healthy"}, 3*time.Second)
	if res != Success || out != "out\n" || err != nil {
		t.Errorf("exit 0: %s %q %v", res, out, err)
	}
	if f.gotID != "abc" || strings.Join(f.gotCmd, " ") != "cat /tmp/healthy" || f.gotTimeout != 3*time.Second {
		t.Errorf("ExecSync(%q, %q, %v)", f.gotID, f.gotCmd, f.gotTimeout)
	}

	res, out, err = Exec(ctx, &fakeExec{stdout: "o ", stderr: "cat: can't open '/tmp/healthy': No such file or directory\n", code: 1}, "abc", []string{"cat"}, time.Second)
	if res != Failure || out != "o cat: can't open '/tmp/healthy': No such file or directory\n" || err != nil {
		t.Errorf("exit 1: %s %q %v", res, out, err)
	}

	res, out, _ = Exec(ctx, &fakeExec{stdout: strings.Repeat("y", 20<<10), code: 2}, "abc", []string{"yes"}, time.Second)
	if res != Failure || len(out) != 10<<10 {
		t.Errorf("long output: %s, %d bytes kept", res, len(out))
	}

	timedOut := fmt.Errorf("%w: %q timed out after %s", criclient.ErrCommandTimedOut, "sleep 10", time.Second)
	res, out, err = Exec(ctx, &fakeExec{err: timedOut}, "abc", []string{"sleep", "10"}, time.Second)
	if res != Failure || out != `command timed out: "sleep 10" timed out after 1s` || err != nil {
		t.Errorf("runtime's timeout: %s %q %v", res, out, err)
	}

	res, out, err = Exec(ctx, &fakeExec{err: errors.New("container not running")}, "abc", []string{"true"}, time.Second)
	if res != Unknown || out != "" || err == nil || !strings.Contains(err.Error(), "container not running") {
		t.Errorf("exec error: %s %q %v", res, out, err)
	}

	if res, _, err := Exec(ctx, nil, "abc", []string{"true"}, time.Second); res != Unknown || err == nil {
		t.Errorf("no Execer: %s %v", res, err)
	}
}

func TestExecTimeoutEnforced(t *testing.T) {
	old := execSlack
	execSlack = 50 * time.Millisecond
	defer func() { execSlack = old }()
	begin := time.Now()
	res, out, err := Exec(context.Background(), &fakeExec{hang: true}, "abc", []string{"sleep", "100"}, 100*time.Millisecond)
	if res != Failure || out != `command timed out: "sleep 100" timed out after 100ms` || err != nil {
		t.Errorf("hanging runtime: %s %q %v", res, out, err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("100ms timeout took %v", d)
	}
}
