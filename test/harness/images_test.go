package harness

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
)

func readTar(t *testing.T, data []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = hdr
	}
}

func tarFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = b
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestWriteImageLayout(t *testing.T) {
	spec := ImageSpec{
		Ref: "example.test/app:v1",
		Files: []File{
			{Path: "/bin/tool", Data: []byte("#!x\n"), Mode: 0o755},
			{Path: "/bin/alias", Link: "/bin/tool"},
			{Path: "/etc/deep/conf", Data: []byte("a=b\n")},
			{Path: "/tmp", Dir: true, Mode: 0o1777},
		},
		Config: ImageConfig{Entrypoint: []string{"/bin/tool"}, User: "1000"},
	}
	var a, b bytes.Buffer
	if err := WriteImageLayout(&a, spec); err != nil {
		t.Fatal(err)
	}
	if err := WriteImageLayout(&b, spec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("image layout is not reproducible")
	}
	files := tarFiles(t, a.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", files["oci-layout"])
	}
	var index struct {
		SchemaVersion int             `json:"schemaVersion"`
		Manifests     []ociDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index = %+v", index)
	}
	md := index.Manifests[0]
	if md.Annotations["io.containerd.image.name"] != spec.Ref || md.Annotations["org.opencontainers.image.ref.name"] != "v1" {
		t.Fatalf("index annotations = %v", md.Annotations)
	}
	// Every descriptor names a blob with that digest and size.
	blob := func(d ociDescriptor) []byte {
		t.Helper()
		data, ok := files[blobPath(d)]
		if !ok || sha(data) != d.Digest || int64(len(data)) != d.Size {
			t.Fatalf("blob for %+v missing or wrong", d)
		}
		return data
	}
	var manifest struct {
		MediaType string          `json:"mediaType"`
		Config    ociDescriptor   `json:"config"`
		Layers    []ociDescriptor `json:"layers"`
	}
	if err := json.Unmarshal(blob(md), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.MediaType != mediaTypeManifest || len(manifest.Layers) != 1 {
		t.Fatalf("manifest = %+v", manifest)
	}
	var cfg struct {
		Config ImageConfig `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		OS string `json:"os"`
	}
	if err := json.Unmarshal(blob(manifest.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	layer := blob(manifest.Layers[0])
	if cfg.OS != "linux" || cfg.Config.User != "1000" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != sha(layer) {
		t.Fatalf("config = %+v", cfg)
	}
	hdrs := readTar(t, layer)
	for name, want := range map[string]byte{
		"bin/": tar.TypeDir, "bin/tool": tar.TypeReg, "bin/alias": tar.TypeSymlink,
		"etc/": tar.TypeDir, "etc/deep/": tar.TypeDir, "etc/deep/conf": tar.TypeReg, "tmp/": tar.TypeDir,
	} {
		if h, ok := hdrs[name]; !ok || h.Typeflag != want {
			t.Errorf("layer entry %q: %+v", name, h)
		}
	}
	if hdrs["tmp/"].Mode != 0o1777 || hdrs["bin/tool"].Mode != 0o755 || hdrs["etc/deep/conf"].Mode != 0o644 {
		t.Errorf("modes: tmp %o tool %o conf %o", hdrs["tmp/"].Mode, hdrs["bin/tool"].Mode, hdrs["etc/deep/conf"].Mode)
	}
}

func TestWriteImageLayoutRejects(t *testing.T) {
	for name, spec := range map[string]ImageSpec{
		"no tag":        {Ref: "example.test/app"},
		"relative path": {Ref: "a:b", Files: []File{{Path: "bin/x", Data: []byte{1}}}},
		"root":          {Ref: "a:b", Files: []File{{Path: "/", Dir: true}}},
		"duplicate":     {Ref: "a:b", Files: []File{{Path: "/x", Data: []byte{1}}, {Path: "/x/", Data: []byte{2}}}},
		"missing host":  {Ref: "a:b", Files: []File{{Path: "/x", HostPath: "/nonexistent/file"}}},
	} {
		if err := WriteImageLayout(io.Discard, spec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBusyboxImage(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		if InCI() {
			t.Fatal("busybox-static is not installed")
		}
		t.Skip("busybox-static is not installed")
	}
	spec, err := BusyboxImage(t.Context(), busybox)
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{}
	for _, f := range spec.Files {
		if f.Link != "" {
			links[f.Path] = f.Link
		}
	}
	for _, applet := range []string{"/bin/sh", "/bin/sleep", "/bin/cat", "/usr/bin/id"} {
		if links[applet] != "/bin/busybox" {
			t.Errorf("%s -> %q", applet, links[applet])
		}
	}
	if err := WriteImageLayout(io.Discard, spec); err != nil {
		t.Fatal(err)
	}
}

func TestRequireStaticRefusesDynamic(t *testing.T) {
	// The test binary itself is dynamically linked when cgo is on (go test -race); /bin/ls
	// always is on Debian.
	if _, err := os.Stat("/bin/ls"); err != nil {
		t.Skip("no /bin/ls")
	}
	if err := requireStatic("/bin/ls"); !errors.Is(err, ErrMissingPrerequisite) {
		t.Fatalf("requireStatic(/bin/ls) = %v", err)
	}
	if err := requireStatic("/nonexistent"); err == nil {
		t.Fatal("requireStatic of a missing file: no error")
	}
}
