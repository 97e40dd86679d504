package atomicwriter

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func list(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func readVisible(t *testing.T, dir, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteLayoutUpdateAndRemoval(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 4, 10, 20, 30, 0, time.UTC)
	w := Writer{TargetDir: dir, Now: func() time.Time { return now }}

	changed, err := w.Write(map[string]FileProjection{
		"a":          {Data: []byte("one"), Mode: 0o644},
		"nested/b":   {Data: []byte("two"), Mode: 0o400},
		"nested/c/d": {Data: []byte("three"), Mode: 0o600},
	}, nil)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	names := list(t, dir)
	if len(names) != 4 || !strings.HasPrefix(names[0], "..2026_12_04_10_20_30.") || names[1] != "..data" || names[2] != "a" || names[3] != "nested" {
		t.Fatalf("layout: %v", names)
	}
	firstTs := names[0]
	if target, _ := os.Readlink(filepath.Join(dir, "..data")); target != firstTs {
		t.Fatalf("..data -> %q, want %q", target, firstTs)
	}
	for top, want := range map[string]string{"a": "..data/a", "nested": "..data/nested"} {
		if got, err := os.Readlink(filepath.Join(dir, top)); err != nil || got != want {
			t.Fatalf("%s -> %q (%v), want %q", top, got, err, want)
		}
	}
	if info, _ := os.Stat(filepath.Join(dir, firstTs)); info.Mode().Perm() != 0o755 {
		t.Fatalf("timestamped dir mode %v", info.Mode())
	}
	for p, mode := range map[string]fs.FileMode{"a": 0o644, "nested/b": 0o400, "nested/c/d": 0o600} {
		info, err := os.Stat(filepath.Join(dir, p))
		if err != nil || info.Mode().Perm() != mode {
			t.Fatalf("%s: mode %v (%v), want %v", p, info.Mode(), err, mode)
		}
	}
	if got := readVisible(t, dir, "nested/c/d"); got != "three" {
		t.Fatalf("nested/c/d = %q", got)
	}

	// The same payload again changes nothing.
	if changed, err := w.Write(map[string]FileProjection{
		"a": {Data: []byte("one"), Mode: 0o644}, "nested/b": {Data: []byte("two"), Mode: 0o400}, "nested/c/d": {Data: []byte("three"), Mode: 0o600},
	}, nil); err != nil || changed {
		t.Fatalf("rewrite: changed=%v err=%v", changed, err)
	}
	if list(t, dir)[0] != firstTs {
		t.Fatal("an unchanged payload made a new timestamped dir")
	}

	// An update: a changes, nested goes, e is new, mode of a changes.
	now = now.Add(time.Second)
	var permsRanOn string
	changed, err = w.Write(map[string]FileProjection{
		"a": {Data: []byte("uno"), Mode: 0o640},
		"e": {Data: []byte("new"), Mode: 0o644},
	}, func(ts string) error {
		permsRanOn = ts
		// The new files exist, ..data still shows the old ones.
		if got := readVisible(t, dir, "a"); got != "one" {
			t.Errorf("during setPerms a = %q, want the old content", got)
		}
		return nil
	})
	if err != nil || !changed {
		t.Fatalf("update: changed=%v err=%v", changed, err)
	}
	names = list(t, dir)
	if len(names) != 4 || !strings.HasPrefix(names[0], "..2026_12_04_10_20_31.") || names[0] != permsRanOn ||
		names[1] != "..data" || names[2] != "a" || names[3] != "e" {
		t.Fatalf("layout after update: %v (setPerms on %q)", names, permsRanOn)
	}
	if got := readVisible(t, dir, "a"); got != "uno" {
		t.Fatalf("a = %q", got)
	}
	if info, _ := os.Stat(filepath.Join(dir, "a")); info.Mode().Perm() != 0o640 {
		t.Fatalf("a mode %v", info.Mode())
	}
	if _, err := os.Lstat(filepath.Join(dir, firstTs)); !os.IsNotExist(err) {
		t.Fatalf("old timestamped dir still there: %v", err)
	}

	// Every key removed: only the layout stays.
	if _, err := w.Write(map[string]FileProjection{}, nil); err != nil {
		t.Fatal(err)
	}
	names = list(t, dir)
	if len(names) != 2 || names[1] != "..data" {
		t.Fatalf("layout after removing all keys: %v", names)
	}
}

func TestWriteRestoresDeletedLinkAndCleansLeftovers(t *testing.T) {
	dir := t.TempDir()
	w := Writer{TargetDir: dir}
	payload := map[string]FileProjection{"k": {Data: []byte("v"), Mode: 0o644}}
	if _, err := w.Write(payload, nil); err != nil {
		t.Fatal(err)
	}
	// An interrupted write's leftovers and a lost visible link.
	if err := os.Mkdir(filepath.Join(dir, "..2020_01_01_00_00_00.1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2020_01_01_00_00_00.1", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "k")); err != nil {
		t.Fatal(err)
	}
	changed, err := w.Write(payload, nil)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	names := list(t, dir)
	if len(names) != 3 || names[1] != "..data" || names[2] != "k" {
		t.Fatalf("layout: %v", names)
	}
}

func TestWriteRefusesBadPathsAndForeignDataLink(t *testing.T) {
	dir := t.TempDir()
	w := Writer{TargetDir: dir}
	for _, p := range []string{"", "/abs", "../x", "a/../../x", "..hidden", strings.Repeat("x", 256)} {
		if _, err := w.Write(map[string]FileProjection{p: {Data: []byte("x"), Mode: 0o644}}, nil); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(map[string]FileProjection{"k": {Data: []byte("v"), Mode: 0o644}}, nil); err == nil {
		t.Fatal("a ..data link pointing outside was followed")
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Fatalf("the directory outside was touched: %v", err)
	}
}
