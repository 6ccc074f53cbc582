package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageArchive is where scripts/image.sh writes the image, in the dist
// directory.
const imageArchive = "patchgate-image.oci.tar"

// imageRepo is the image's name without the tag (scripts/image.sh IMAGE).
const imageRepo = "ghcr.io/patchgate/patchgate"

// imageBuildable says why scripts/image.sh cannot run here, or nil.
func imageBuildable() error {
	if _, err := exec.LookPath("podman"); err != nil {
		return errors.New("no podman")
	}
	if os.Geteuid() != 0 {
		return errors.New("not root: podman would need a rootless set-up")
	}
	return nil
}

// TestImage checks the archive make image writes against the binaries
// beside it: an index over exactly linux/amd64 and linux/arm64, each
// image holding exactly the two binaries of its architecture (0755, root's)
// and running patchgate.
func TestImage(t *testing.T) {
	dist := distDir(t)
	archive := filepath.Join(dist, imageArchive)
	if _, err := os.Stat(archive); err != nil {
		why := imageBuildable()
		switch {
		case os.Getenv("PATCHGATE_DIST") != "":
			t.Skipf("%s: no image (make release without make image)", archive)
		case why != nil && os.Getenv("CI") != "true":
			t.Skipf("image not built: %v", why)
		}
		t.Fatal(err)
	}
	version := distVersion(t, dist)
	for _, err := range checkImage(archive, dist, version) {
		t.Error(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if sum, got := sha256.Sum256(data), readSums(t, filepath.Join(dist, "sha256sums"))[imageArchive]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256sums has %q for %s, the file's sum is %x", got, imageArchive, sum)
	}
}

// A check that compares against the wrong binaries fails: the arm64 image
// judged against amd64 binaries (and the other way round) is refused.
func TestCheckImageRefusesOtherBinaries(t *testing.T) {
	dist := distDir(t)
	archive := filepath.Join(dist, imageArchive)
	if _, err := os.Stat(archive); err != nil {
		t.Skipf("no image to check: %v", err)
	}
	swapped := t.TempDir()
	for _, cmd := range []string{"patchgate", "patchgate-hook"} {
		for from, to := range map[string]string{"amd64": "arm64", "arm64": "amd64"} {
			if err := os.Symlink(filepath.Join(dist, cmd+"-linux-"+from), filepath.Join(swapped, cmd+"-linux-"+to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	errs := checkImage(archive, swapped, distVersion(t, dist))
	if len(errs) != 4 {
		t.Fatalf("checkImage against swapped binaries: %d errors, want 4 (one per binary): %v", len(errs), errs)
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), "sha256") {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if errs := checkImage(archive, dist, "v0.0.0-not-it"); len(errs) == 0 {
		t.Error("checkImage with another version found nothing wrong")
	}
}

// distVersion is what dist's patchgate for this machine says its version is.
func distVersion(t *testing.T, dist string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(dist, "patchgate-linux-"+runtime.GOARCH), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("patchgate version: %v", err)
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.Version == "" {
		t.Fatalf("patchgate version -o json: %q: %v", out, err)
	}
	return v.Version
}

// imageFiles are the regular files each image must hold, by path in the
// image, with the dist binary each must equal; imageDirs the only
// directories.
var (
	imageFiles = map[string]string{"usr/local/bin/patchgate": "patchgate", "usr/local/bin/patchgate-hook": "patchgate-hook"}
	imageDirs  = []string{"usr", "usr/local", "usr/local/bin"}
)

// checkImage reads the OCI image layout in archive (image-spec v1.1) and
// returns everything that differs from what make image must write.
func checkImage(archive, dist, version string) []error {
	blobs, err := readTar(archive)
	if err != nil {
		return []error{err}
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	var layout ocispec.ImageLayout
	if err := json.Unmarshal(blobs[ocispec.ImageLayoutFile], &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
		bad("%s: %q, want imageLayoutVersion %s (%v)", ocispec.ImageLayoutFile, blobs[ocispec.ImageLayoutFile], ocispec.ImageLayoutVersion, err)
	}
	var top ocispec.Index
	if err := json.Unmarshal(blobs[ocispec.ImageIndexFile], &top); err != nil {
		return append(errs, fmt.Errorf("%s: %v", ocispec.ImageIndexFile, err))
	}
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != ocispec.MediaTypeImageIndex {
		return append(errs, fmt.Errorf("%s: want exactly one image index, has %+v", ocispec.ImageIndexFile, top.Manifests))
	}
	if got, want := top.Manifests[0].Annotations[ocispec.AnnotationRefName], imageRepo+":"+version; got != want {
		bad("%s: the index is named %q, want %q", ocispec.ImageIndexFile, got, want)
	}
	var index ocispec.Index
	if err := blobJSON(blobs, top.Manifests[0], &index); err != nil {
		return append(errs, err)
	}
	var platforms []string
	for _, m := range index.Manifests {
		if m.Platform == nil || m.MediaType != ocispec.MediaTypeImageManifest {
			bad("image index: entry %s: media type %s, platform %v", m.Digest, m.MediaType, m.Platform)
			continue
		}
		p := m.Platform.OS + "/" + m.Platform.Architecture
		platforms = append(platforms, p)
		for _, err := range checkManifest(blobs, m, dist, version) {
			bad("%s: %v", p, err)
		}
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		bad("image index: platforms %v, want exactly %v", platforms, want)
	}
	return errs
}

// checkManifest checks one platform's image: its config, and that its
// layers together hold exactly the two binaries of that architecture.
func checkManifest(blobs map[string][]byte, d ocispec.Descriptor, dist, version string) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	var m ocispec.Manifest
	if err := blobJSON(blobs, d, &m); err != nil {
		return []error{err}
	}
	var cfg ocispec.Image
	if m.Config.MediaType != ocispec.MediaTypeImageConfig {
		bad("config media type %s", m.Config.MediaType)
	}
	if err := blobJSON(blobs, m.Config, &cfg); err != nil {
		return append(errs, err)
	}
	if cfg.OS != d.Platform.OS || cfg.Architecture != d.Platform.Architecture {
		bad("config says %s/%s", cfg.OS, cfg.Architecture)
	}
	if want := []string{"/usr/local/bin/patchgate"}; !slices.Equal(cfg.Config.Entrypoint, want) || len(cfg.Config.Cmd) != 0 {
		bad("entrypoint %q, cmd %q, want %q and no cmd", cfg.Config.Entrypoint, cfg.Config.Cmd, want)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.source":   "https://github.com/patchgate/patchgate",
		"org.opencontainers.image.licenses": "Apache-2.0",
	} {
		if got := cfg.Config.Labels[k]; got != want {
			bad("label %s = %q, want %q", k, got, want)
		}
	}
	if cfg.Config.Labels["org.opencontainers.image.revision"] == "" {
		bad("no label org.opencontainers.image.revision")
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		bad("%d diff_ids for %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
		return errs
	}
	files := map[string][]byte{}
	for i, l := range m.Layers {
		if err := readLayer(blobs, l, cfg.RootFS.DiffIDs[i], files); err != nil {
			bad("layer %s: %v", l.Digest, err)
		}
	}
	for p, cmd := range imageFiles {
		want, err := os.ReadFile(filepath.Join(dist, cmd+"-linux-"+cfg.Architecture))
		if err != nil {
			bad("%v", err)
			continue
		}
		got, ok := files[p]
		if !ok {
			bad("no /%s", p)
			continue
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			bad("/%s: sha256 %x, want that of %s-linux-%s, %x", p, sha256.Sum256(got), cmd, cfg.Architecture, sha256.Sum256(want))
		}
	}
	return errs
}

// readLayer adds the regular files of layer d (diff ID diffID) to files,
// and refuses anything but imageFiles (root's, 0755) and imageDirs (0755).
func readLayer(blobs map[string][]byte, d ocispec.Descriptor, diffID digest.Digest, files map[string][]byte) error {
	data, err := blob(blobs, d)
	if err != nil {
		return err
	}
	var r io.Reader = bytes.NewReader(data)
	switch d.MediaType {
	case ocispec.MediaTypeImageLayerGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		r = zr
	case ocispec.MediaTypeImageLayer:
	default:
		return fmt.Errorf("media type %s", d.MediaType)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if got := digest.FromBytes(raw); got != diffID {
		return fmt.Errorf("uncompressed digest %s, config's diff_id %s", got, diffID)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if h.Uid != 0 || h.Gid != 0 {
			return fmt.Errorf("/%s: owner %d:%d, want 0:0", name, h.Uid, h.Gid)
		}
		switch {
		case h.Typeflag == tar.TypeDir && slices.Contains(imageDirs, name):
			if h.Mode&0o7777 != 0o755 {
				return fmt.Errorf("/%s: mode %04o, want 0755", name, h.Mode&0o7777)
			}
		case h.Typeflag == tar.TypeReg && imageFiles[name] != "":
			if h.Mode&0o7777 != 0o755 {
				return fmt.Errorf("/%s: mode %04o, want 0755", name, h.Mode&0o7777)
			}
			if files[name], err = io.ReadAll(tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected entry /%s (type %q, mode %04o)", name, h.Typeflag, h.Mode)
		}
	}
}

// readTar reads every regular file of the archive, by name.
func readTar(archive string) (map[string][]byte, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if files[path.Clean(h.Name)], err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
	}
}

// blob is the content d names, checked against its digest and size.
func blob(blobs map[string][]byte, d ocispec.Descriptor) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("descriptor digest %q: %v", d.Digest, err)
	}
	data, ok := blobs["blobs/sha256/"+d.Digest.Encoded()]
	if !ok {
		return nil, fmt.Errorf("blob %s missing", d.Digest)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != d.Digest.Encoded() || int64(len(data)) != d.Size {
		return nil, fmt.Errorf("blob %s: sha256 %x, size %d, want size %d", d.Digest, sum, len(data), d.Size)
	}
	return data, nil
}

func blobJSON(blobs map[string][]byte, d ocispec.Descriptor, v any) error {
	data, err := blob(blobs, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("blob %s (%s): %v", d.Digest, d.MediaType, err)
	}
	return nil
}
