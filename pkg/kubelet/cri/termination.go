package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
)

// Upstream kubelet's termination message bounds.
const (
	maxTerminationMessage     = 4096
	maxTerminationLogBytes    = 2048
	maxTerminationLogLines    = 80
	maxTerminationLogReadBack = 1 << 20
)

// terminationMessage is what the exited container left in its
// termination-log file, or with FallbackToLogsOnError after a failure
// and an empty file, the end of its log.
func (r *Runtime) terminationMessage(_ context.Context, c *runtimeapi.ContainerStatus, t *container.Termination) string {
	path := c.Annotations[containerspec.ContainerTerminationMessagePathAnnotation]
	policy := corev1.TerminationMessagePolicy(c.Annotations[containerspec.ContainerTerminationMessagePolicyAnnotation])
	fallback := policy == corev1.TerminationMessageFallbackToLogsOnError && t.ExitCode != 0 && t.Reason != "ContainerCannotRun"
	msg, checkLogs := readTerminationLog(c, path, fallback)
	if checkLogs && c.LogPath != "" {
		return logTail(c.LogPath)
	}
	return msg
}

func readTerminationLog(c *runtimeapi.ContainerStatus, path string, fallback bool) (string, bool) {
	if path == "" {
		return "", fallback
	}
	for _, m := range c.Mounts {
		if m.ContainerPath != path {
			continue
		}
		data, err := readTail(m.HostPath, maxTerminationMessage)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fallback
		}
		if err != nil {
			return fmt.Sprintf("Error on reading termination log %s: %v", m.HostPath, err), false
		}
		return string(data), fallback && len(data) == 0
	}
	return "", fallback
}

// readTail is the last max bytes of the file.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if size := fi.Size(); size > max {
		if _, err := f.Seek(size-max, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// logTail is the content of the last lines of a CRI log file
// (<time> <stream> <P|F> <content>), at most maxTerminationLogBytes.
func logTail(path string) string {
	data, err := readTail(path, maxTerminationLogReadBack)
	if err != nil {
		return fmt.Sprintf("Error on reading termination message from logs: %v", err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) > 0 && int64(len(data)) == maxTerminationLogReadBack {
		// The first line read back is likely cut.
		lines = lines[1:]
	}
	// Count full lines (F) from the end, as upstream's tail of a CRI log.
	start, full := len(lines), 0
	for start > 0 {
		fields := bytes.SplitN(lines[start-1], []byte(" "), 4)
		if len(fields) >= 3 && string(fields[2]) == "F" {
			if full == maxTerminationLogLines {
				break
			}
			full++
		}
		start--
	}
	var out []byte
	for _, l := range lines[start:] {
		fields := bytes.SplitN(l, []byte(" "), 4)
		if len(fields) < 3 {
			continue
		}
		if len(fields) == 4 {
			out = append(out, fields[3]...)
		}
		if string(fields[2]) == "F" {
			out = append(out, '\n')
		}
	}
	if len(out) > maxTerminationLogBytes {
		out = out[len(out)-maxTerminationLogBytes:]
	}
	return string(out)
}
