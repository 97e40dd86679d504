package containerspec

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestParseEnvFile(t *testing.T) {
	content := "# comment\n\n  LEADING='spaces ok'\nA='one'\nMULTI='line1\nline2'\nCOMMENTED='v' # note\nEMPTY= 'ignored'\n"
	for _, tc := range []struct{ key, want, wantErr string }{
		{key: "A", want: "one"},
		{key: "LEADING", want: "spaces ok"},
		{key: "MULTI", want: "line1\nline2"},
		{key: "COMMENTED", want: "v"},
		{key: "EMPTY", want: ""},
		{key: "MISSING", want: ""},
	} {
		got, err := ParseEnvFile([]byte(content), tc.key)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: err = %v, want %q", tc.key, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ content, wantErr string }{
		{"NOEQUALS\n", "invalid environment variable format at line 1: missing '='"},
		{"='v'\n", "invalid environment variable format at line 1: empty variable name"},
		{"K ='v'\n", "invalid environment variable format at line 1: whitespace before '=' is not allowed"},
		{"A='x'\nK='it''s'\n", "invalid environment variable format at line 2: unexpected content after closing quote"},
		{"K=v\n", "invalid environment variable format at line 1: value must be enclosed in single quotes"},
		{"\nK='open\nstill\n", "invalid environment variable format starting at line 2: unclosed single quote"},
	} {
		if _, err := ParseEnvFile([]byte(tc.content), "K"); err == nil || err.Error() != tc.wantErr {
			t.Errorf("%q: err = %v, want %q", tc.content, err, tc.wantErr)
		}
	}
}

func TestEnvFileKeyRef(t *testing.T) {
	files := map[string]string{"/vol/config/app.env": "DB_HOST='db.local'\nEMPTY=''\n"}
	var read []string
	o := ContainerOptions{
		Volumes: map[string]Mount{"config": {HostPath: "/vol/config"}},
		ReadFile: func(path string) ([]byte, error) {
			read = append(read, path)
			if c, ok := files[path]; ok {
				return []byte(c), nil
			}
			return nil, errors.New("no such file")
		},
	}
	ref := func(path, key string, optional bool) corev1.EnvVar {
		return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "config", Path: path, Key: key, Optional: ptr.To(optional)}}}
	}
	for _, tc := range []struct {
		name, wantErr, want string
		env                 corev1.EnvVar
		unset               bool
	}{
		{name: "found", env: ref("app.env", "DB_HOST", false), want: "db.local"},
		{name: "path cannot leave the volume", env: ref("../config/app.env", "DB_HOST", false), wantErr: `failed to open environment variable file "/vol/config/config/app.env": no such file`},
		{name: "missing key", env: ref("app.env", "NOPE", false), wantErr: `environment variable key "NOPE" not found in file "/vol/config/app.env"`},
		{name: "missing key, optional", env: ref("app.env", "NOPE", true), unset: true},
		{name: "empty is missing", env: ref("app.env", "EMPTY", true), unset: true},
		{name: "unknown volume", env: corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "x", Path: "a", Key: "k"}}},
			wantErr: `cannot find the volume "x" referenced by FileKeyRef`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Env(context.Background(), testPod(), &corev1.Container{Env: []corev1.EnvVar{tc.env}}, nil, o)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, set := envMap(env)["V"]
			if set == tc.unset || v != tc.want {
				t.Errorf("V = %q (set %v)", v, set)
			}
		})
	}
	o.ReadFile = nil
	if _, err := Env(context.Background(), testPod(), &corev1.Container{Env: []corev1.EnvVar{ref("app.env", "DB_HOST", false)}}, nil, o); err == nil {
		t.Error("fileKeyRef without a reader is an error")
	}
}
