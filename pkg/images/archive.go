package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Media types and annotations of the OCI image spec and containerd.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"

	// AnnotationRefName is the OCI reference name: the tag, as containerd's
	// export writes it.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationImageName is the full image name containerd's import uses.
	AnnotationImageName = "io.containerd.image.name"
)

// DefaultPath is the PATH of an image whose Env sets none, as Docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config is the runtime part of an image config (the OCI config's
// "config" object).
type Config struct {
	User       string
	Env        []string // PATH=DefaultPath is added when no entry sets PATH
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	Labels     map[string]string
	// ExposedPorts as "80/tcp".
	ExposedPorts []string
	StopSignal   string
}

// Image is a single-manifest image of one or more layers.
type Image struct {
	// Name is the full reference, e.g. "registry.k8s.io/pause:3.10.2".
	Name   string
	Config Config
	Layers []*Layer
	// Architecture and OS; empty: the running program's GOARCH and GOOS.
	Architecture, OS string
	// Created is the config's creation time and every file's mtime; zero:
	// the Unix epoch, so that the same inputs give the same digests.
	Created time.Time
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Platform of a manifest.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Written tells what WriteArchive wrote.
type Written struct {
	// Manifest is the manifest's descriptor (its digest is the image's
	// repo digest).
	Manifest Descriptor
	// ConfigDigest is the image ID that containerd's CRI reports.
	ConfigDigest string
	// DiffIDs are the layers' digests.
	DiffIDs []string
}

type configFile struct {
	Created      string        `json:"created"`
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       runtimeConfig `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
	History      []history     `json:"history"`
}

type runtimeConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type manifestFile struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

type indexFile struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// tagOf returns the tag of a reference ("registry.k8s.io/pause:3.10.2" →
// "3.10.2"), "latest" when it has none.
func tagOf(name string) string {
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	slash := strings.LastIndex(name, "/")
	if colon := strings.LastIndex(name, ":"); colon > slash {
		return name[colon+1:]
	}
	return "latest"
}

func validName(name string) error {
	if name == "" {
		return fmt.Errorf("image name is empty")
	}
	repo := name
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if colon := strings.LastIndex(repo, ":"); colon > strings.LastIndex(repo, "/") {
		repo = repo[:colon]
	}
	if repo == "" || strings.ContainsAny(name, " \t\n") || strings.ToLower(repo) != repo {
		return fmt.Errorf("image name %q is not a reference (repository names are lowercase)", name)
	}
	return nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// hashingFile counts and hashes what is written to a temp file.
type hashingFile struct {
	f    *os.File
	size int64
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (w *hashingFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	return n, err
}

// WriteArchive writes img as an OCI image layout in a tar to w. Layers are
// staged in tmpDir (empty: the system's temp dir) to learn their digests
// before they are copied out.
func WriteArchive(w io.Writer, img *Image, tmpDir string) (*Written, error) {
	if err := validName(img.Name); err != nil {
		return nil, err
	}
	created := img.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)
	arch, goos := img.Architecture, img.OS
	if arch == "" {
		arch = runtime.GOARCH
	}
	if goos == "" {
		goos = runtime.GOOS
	}

	var layerFiles []*os.File
	defer func() {
		for _, f := range layerFiles {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var layers []Descriptor
	var diffIDs []string
	for i, l := range img.Layers {
		f, err := os.CreateTemp(tmpDir, "layer-*.tar")
		if err != nil {
			return nil, fmt.Errorf("staging layer %d: %w", i, err)
		}
		layerFiles = append(layerFiles, f)
		hf := &hashingFile{f: f, h: sha256.New()}
		if err := l.write(hf, created); err != nil {
			return nil, fmt.Errorf("image %s, layer %d: %w", img.Name, i, err)
		}
		d := "sha256:" + hex.EncodeToString(hf.h.Sum(nil))
		layers = append(layers, Descriptor{MediaType: MediaTypeLayer, Digest: d, Size: hf.size})
		diffIDs = append(diffIDs, d)
	}

	env := append([]string(nil), img.Config.Env...)
	hasPath := false
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			hasPath = true
		}
	}
	if !hasPath {
		env = append([]string{"PATH=" + DefaultPath}, env...)
	}
	var ports map[string]struct{}
	if len(img.Config.ExposedPorts) > 0 {
		ports = map[string]struct{}{}
		for _, p := range img.Config.ExposedPorts {
			ports[p] = struct{}{}
		}
	}
	ts := created.Format(time.RFC3339)
	cfg := configFile{
		Created:      ts,
		Architecture: arch,
		OS:           goos,
		Config: runtimeConfig{
			User:         img.Config.User,
			ExposedPorts: ports,
			Env:          env,
			Entrypoint:   img.Config.Entrypoint,
			Cmd:          img.Config.Cmd,
			WorkingDir:   img.Config.WorkingDir,
			Labels:       img.Config.Labels,
			StopSignal:   img.Config.StopSignal,
		},
		RootFS: rootFS{Type: "layers", DiffIDs: diffIDs},
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []string{}
	}
	for range img.Layers {
		cfg.History = append(cfg.History, history{Created: ts, CreatedBy: "skiff pkg/images"})
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if layers == nil {
		layers = []Descriptor{}
	}
	mf := manifestFile{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        Descriptor{MediaType: MediaTypeConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))},
		Layers:        layers,
	}
	mfJSON, err := json.Marshal(mf)
	if err != nil {
		return nil, err
	}
	mfDesc := Descriptor{
		MediaType: MediaTypeManifest,
		Digest:    digestOf(mfJSON),
		Size:      int64(len(mfJSON)),
		Platform:  &Platform{Architecture: arch, OS: goos},
		Annotations: map[string]string{
			AnnotationImageName: img.Name,
			AnnotationRefName:   tagOf(img.Name),
		},
	}
	idxJSON, err := json.Marshal(indexFile{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{mfDesc}})
	if err != nil {
		return nil, err
	}

	tw := tar.NewWriter(w)
	put := func(name string, size int64, body io.Reader, dir bool) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if dir {
			hdr.Mode, hdr.Typeflag = 0o755, tar.TypeDir
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
		}
		return nil
	}
	putBytes := func(name string, b []byte) error {
		return put(name, int64(len(b)), strings.NewReader(string(b)), false)
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

	if err := putBytes("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return nil, err
	}
	if err := put("blobs/", 0, nil, true); err != nil {
		return nil, err
	}
	if err := put("blobs/sha256/", 0, nil, true); err != nil {
		return nil, err
	}
	// Two layers of the same content are one blob.
	seen := map[string]bool{}
	for i, d := range layers {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		f := layerFiles[i]
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if err := put(blob(d.Digest), d.Size, f, false); err != nil {
			return nil, err
		}
	}
	if err := putBytes(blob(mf.Config.Digest), cfgJSON); err != nil {
		return nil, err
	}
	if err := putBytes(blob(mfDesc.Digest), mfJSON); err != nil {
		return nil, err
	}
	if err := putBytes("index.json", idxJSON); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &Written{Manifest: mfDesc, ConfigDigest: mf.Config.Digest, DiffIDs: diffIDs}, nil
}

// WriteFile writes img's archive to file, replacing it only once it is
// complete, with layers staged beside it.
func WriteFile(file string, img *Image) (*Written, error) {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	written, err := WriteArchive(f, img, dir)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o644); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(f.Name(), file); err != nil {
		return nil, err
	}
	return written, nil
}

// ArchiveManifests returns the manifest descriptors of an OCI archive's
// index.json (names in their annotations).
func ArchiveManifests(file string) ([]Descriptor, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: no index.json (not an OCI archive)", file)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		if strings.TrimPrefix(hdr.Name, "./") != "index.json" {
			continue
		}
		var idx indexFile
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return nil, fmt.Errorf("%s: index.json: %w", file, err)
		}
		return idx.Manifests, nil
	}
}
