package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"
)

// Image references the harness imports. PauseImageRef is the sandbox image containerd 2.4.2's
// CRI expects (pinned_images.sandbox); BusyboxImageRef is the workload image.
const (
	PauseImageRef   = "registry.k8s.io/pause:3.10.2"
	BusyboxImageRef = "docker.io/library/busybox:1.35.0"
)

// Media types of the OCI image spec (github.com/opencontainers/image-spec specs-go/v1).
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// File is one entry of an image's single layer.
type File struct {
	Path     string // absolute path inside the image, e.g. "/bin/busybox"
	HostPath string // copy a regular file from the host
	Data     []byte // or use these bytes (when HostPath is empty and Link, Dir are not set)
	Link     string // make a symlink to this target
	Dir      bool   // make a directory
	Mode     int64  // permission bits; defaults 0755 for directories and HostPath files, 0644 for Data
}

// ImageConfig is the part of the OCI image config the runtime reads.
type ImageConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// ImageSpec describes a one-layer linux/amd64 image.
type ImageSpec struct {
	Ref    string // full reference, stored as io.containerd.image.name in index.json
	Files  []File
	Config ImageConfig
}

// epoch gives every tar entry and the config the same time, so images are reproducible.
var epoch = time.Unix(0, 0).UTC()

// WriteImageLayout writes spec as an OCI image-layout tarball (oci-layout, index.json,
// blobs/sha256/...) that `ctr images import` loads. The output is byte-for-byte reproducible.
func WriteImageLayout(w io.Writer, spec ImageSpec) error {
	if spec.Ref == "" || !strings.Contains(spec.Ref, ":") {
		return fmt.Errorf("harness: image reference %q needs a tag", spec.Ref)
	}
	layer, err := buildLayer(spec.Files)
	if err != nil {
		return err
	}
	layerDesc := descriptor(mediaTypeLayer, layer)
	cfg, err := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config":       spec.Config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
		"history":      []map[string]any{{"created": epoch.Format(time.RFC3339), "created_by": "patchgate test/harness"}},
	})
	if err != nil {
		return err
	}
	cfgDesc := descriptor(mediaTypeConfig, cfg)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        cfgDesc,
		"layers":        []ociDescriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	mDesc := descriptor(mediaTypeManifest, manifest)
	tag := spec.Ref[strings.LastIndex(spec.Ref, ":")+1:]
	mDesc.Annotations = map[string]string{
		"io.containerd.image.name":          spec.Ref,
		"org.opencontainers.image.ref.name": tag,
	}
	mDesc.Platform = &ociPlatform{Architecture: "amd64", OS: "linux"}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeIndex,
		"manifests":     []ociDescriptor{mDesc},
	})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, e := range []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(layerDesc), layer},
		{blobPath(cfgDesc), cfg},
		{blobPath(mDesc), manifest},
	} {
		if err := add(e.name, e.data); err != nil {
			return fmt.Errorf("harness: writing image %s: %w", spec.Ref, err)
		}
	}
	return tw.Close()
}

type ociPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *ociPlatform      `json:"platform,omitempty"`
}

func descriptor(mediaType string, data []byte) ociDescriptor {
	sum := sha256.Sum256(data)
	return ociDescriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

func blobPath(d ociDescriptor) string {
	return "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:")
}

// buildLayer writes the files as an uncompressed layer tar. Parent directories are created
// as needed; entries are sorted so the digest only depends on the content.
func buildLayer(files []File) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(p) || p == "/" {
			return nil, fmt.Errorf("harness: image file path %q must be absolute and not /", f.Path)
		}
		rel := strings.TrimPrefix(p, "/")
		if _, dup := entries[rel]; dup {
			return nil, fmt.Errorf("harness: image file %q listed twice", f.Path)
		}
		entries[rel] = f
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = File{Path: "/" + d, Dir: true}
			}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		f := entries[name]
		hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX, Mode: f.Mode}
		var data []byte
		switch {
		case f.Dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
			if hdr.Mode == 0 {
				hdr.Mode = 0o755
			}
		case f.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Link, 0o777
		case f.HostPath != "":
			b, err := os.ReadFile(f.HostPath)
			if err != nil {
				return nil, fmt.Errorf("harness: image file %s: %w", f.Path, err)
			}
			data = b
			if hdr.Mode == 0 {
				hdr.Mode = 0o755
			}
		default:
			data = f.Data
			if hdr.Mode == 0 {
				hdr.Mode = 0o644
			}
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BusyboxImage is the workload image: Debian's static busybox at /bin/busybox, a symlink for
// every applet it lists, /etc/passwd and /etc/group with root, a uid 1000 user and nobody.
// Its default command is `sh`.
func BusyboxImage(ctx context.Context, busybox string) (ImageSpec, error) {
	if err := requireStatic(busybox); err != nil {
		return ImageSpec{}, err
	}
	out, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	if err != nil {
		return ImageSpec{}, fmt.Errorf("harness: %s --list-full: %w", busybox, err)
	}
	files := []File{
		{Path: "/bin/busybox", HostPath: busybox},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "/etc/group", Data: []byte("root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
		{Path: "/root", Dir: true, Mode: 0o700},
		{Path: "/home/user", Dir: true},
		{Path: "/proc", Dir: true},
		{Path: "/sys", Dir: true},
		{Path: "/dev", Dir: true},
	}
	seen := map[string]bool{"bin/busybox": true}
	for _, applet := range strings.Fields(string(out)) {
		// --list-full prints paths such as bin/sh and usr/bin/env.
		if seen[applet] || strings.Contains(applet, "..") {
			continue
		}
		seen[applet] = true
		files = append(files, File{Path: "/" + applet, Link: "/bin/busybox"})
	}
	return ImageSpec{
		Ref:   BusyboxImageRef,
		Files: files,
		Config: ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"sh"},
		},
	}, nil
}

// PauseImage is the sandbox image: the static pause binary as /pause.
func PauseImage(pause string) (ImageSpec, error) {
	if err := requireStatic(pause); err != nil {
		return ImageSpec{}, err
	}
	return ImageSpec{
		Ref:    PauseImageRef,
		Files:  []File{{Path: "/pause", HostPath: pause}},
		Config: ImageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535"},
	}, nil
}

// requireStatic refuses a dynamically linked binary: the images have no libc.
func requireStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("harness: %s: %w", p, err)
	}
	defer func() { _ = f.Close() }()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("harness: %s is dynamically linked; the image needs a static binary (Debian busybox-static): %w", p, ErrMissingPrerequisite)
		}
	}
	return nil
}
