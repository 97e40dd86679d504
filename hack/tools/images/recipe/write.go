package recipe

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/pkg/images"
)

// KeySuffix names the file beside an archive that holds the Key it was
// written from.
const KeySuffix = ".inputs"

// UpToDate tells whether dir holds r's archive written from the same inputs.
func UpToDate(dir string, r Recipe) bool {
	file := filepath.Join(dir, r.File)
	if _, err := os.Stat(file); err != nil {
		return false
	}
	key, err := os.ReadFile(file + KeySuffix)
	return err == nil && string(bytes.TrimSpace(key)) == r.Key
}

// Write writes r's archive into dir unless it is up to date, and reports
// whether it wrote it. The key file is written after the archive, so an
// interrupted write is redone next time.
func Write(dir string, r Recipe) (bool, error) {
	if UpToDate(dir, r) {
		return false, nil
	}
	file := filepath.Join(dir, r.File)
	if err := os.Remove(file + KeySuffix); err != nil && !os.IsNotExist(err) {
		return false, err
	}
	if _, err := images.WriteFile(file, r.Image); err != nil {
		return false, fmt.Errorf("writing %s: %w", r.Image.Name, err)
	}
	if err := os.WriteFile(file+KeySuffix, []byte(r.Key+"\n"), 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// Select returns the recipes whose image name or file name is in names (all
// of them for none), or an error naming one that matches nothing.
func Select(all []Recipe, names []string) ([]Recipe, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []Recipe
	for _, n := range names {
		found := false
		for _, r := range all {
			if r.Image.Name == n || r.File == n || strings.TrimSuffix(r.File, ".tar") == n {
				out = append(out, r)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no image %q (known: %s)", n, strings.Join(Names(all), ", "))
		}
	}
	return out, nil
}

// Names are the recipes' image names.
func Names(rs []Recipe) []string {
	var ns []string
	for _, r := range rs {
		ns = append(ns, r.Image.Name)
	}
	return ns
}
