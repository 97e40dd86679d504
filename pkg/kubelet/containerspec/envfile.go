package containerspec

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// fileKeyValue resolves env valueFrom.fileKeyRef: key in the env file at
// path inside the volume (an emptyDir an init container wrote), read with
// o.ReadFile. ok is false when the key is missing and optional.
func fileKeyValue(ref *corev1.FileKeySelector, o ContainerOptions) (value string, ok bool, err error) {
	vol, found := o.Volumes[ref.VolumeName]
	if !found {
		return "", false, fmt.Errorf("cannot find the volume %q referenced by FileKeyRef", ref.VolumeName)
	}
	if o.ReadFile == nil {
		return "", false, fmt.Errorf("env var source fileKeyRef (volume %q) is not supported by this kubelet", ref.VolumeName)
	}
	// Lexically inside the volume; the reader guards against symlinks.
	path := filepath.Join(vol.HostPath, filepath.Clean("/"+ref.Path))
	content, err := o.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("failed to open environment variable file %q: %w", path, err)
	}
	value, err = ParseEnvFile(content, ref.Key)
	if err != nil {
		return "", false, fmt.Errorf("couldn't parse env file")
	}
	if value == "" {
		// Upstream counts an empty value as missing.
		if ref.Optional != nil && *ref.Optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("environment variable key %q not found in file %q", ref.Key, path)
	}
	return value, true, nil
}

// ParseEnvFile is key's value in an env file of upstream's strict format:
// KEY='value' lines, values single-quoted and literal (they may span
// lines), blank lines and # comments ignored, a comment allowed after the
// closing quote, no space before '='; KEY= 'x' (space after '=') is an
// empty value. A missing key is "" without error.
func ParseEnvFile(content []byte, key string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(content))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimLeft(sc.Text(), " \t")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, rest, found := strings.Cut(text, "=")
		switch {
		case !found:
			return "", fmt.Errorf("invalid environment variable format at line %d: missing '='", line)
		case strings.TrimRight(name, " \t") == "":
			return "", fmt.Errorf("invalid environment variable format at line %d: empty variable name", line)
		case strings.TrimRight(name, " \t") != name:
			return "", fmt.Errorf("invalid environment variable format at line %d: whitespace before '=' is not allowed", line)
		}
		if trimmed := strings.TrimLeft(rest, " \t"); trimmed != rest {
			// As in a shell, KEY= 'v' assigns KEY the empty string.
			if name == key {
				return "", nil
			}
			continue
		}
		if !strings.HasPrefix(rest, "'") {
			return "", fmt.Errorf("invalid environment variable format at line %d: value must be enclosed in single quotes", line)
		}
		var value strings.Builder
		rest = rest[1:]
		start := line
		for {
			if end := strings.IndexByte(rest, '\''); end >= 0 {
				value.WriteString(rest[:end])
				after := strings.TrimLeft(rest[end+1:], " \t")
				if after != "" && !strings.HasPrefix(after, "#") {
					return "", fmt.Errorf("invalid environment variable format at line %d: unexpected content after closing quote", line)
				}
				break
			}
			value.WriteString(rest)
			value.WriteByte('\n')
			if !sc.Scan() {
				return "", fmt.Errorf("invalid environment variable format starting at line %d: unclosed single quote", start)
			}
			line++
			rest = sc.Text()
		}
		if name == key {
			return value.String(), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("error reading environment variable file: %w", err)
	}
	return "", nil
}
